// What the agent logs and counts about each command: when a deploy changed (or found already
// changed) its workload, and how every command ended, one line each with the command id and the
// target, so that the orchestrator's `deployment_finished` line and the agent's can be matched.
import type { Command } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import {
  deploymentStateToJSON,
  failureReasonToJSON,
  workloadKindToJSON,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import type { Job } from "../connection/command-tracker.js";
import type { Logger } from "../log.js";
import type { AgentMetrics } from "./metrics.js";

const short = (text: string, prefix: string) => text.replace(prefix, "").toLowerCase();

export function commandType(command: Command): string {
  switch (command.payload?.$case) {
    case "deploy":
      return "deploy";
    case "describeNamespaces":
    case "describeWorkloads":
      return "describe";
    case "updateAgent":
      return "update_agent";
    default:
      return "unknown";
  }
}

/** `job`, logging and counting what it did. */
export function observeJob(command: Command, job: Job, log: Logger, metrics?: AgentMetrics): Job {
  const type = commandType(command);
  const payload = command.payload;
  const target =
    payload?.$case === "deploy"
      ? {
          deploymentId: payload.value.deploymentId,
          namespace: payload.value.namespace,
          kind: short(workloadKindToJSON(payload.value.kind), "WORKLOAD_KIND_").replaceAll("_", ""),
          workload: payload.value.workload,
          image: payload.value.image,
        }
      : payload?.$case === "updateAgent"
        ? { image: payload.value.image }
        : {};
  return async (onProgress) => {
    const started = performance.now();
    let applied = false;
    const final = await job((progress) => {
      if (!applied && progress.appliedImages.length > 0) {
        applied = true;
        log.info(
          {
            event: "workload_changed",
            commandId: command.id,
            ...target,
            containers: progress.appliedImages.map((c) => c.container),
            previousImages: progress.previousImages.map((c) => `${c.container}=${c.image}`),
            message: progress.message,
          },
          "deploy applied to the workload",
        );
      }
      onProgress(progress);
    });
    const seconds = (performance.now() - started) / 1000;
    if (final.$case === "result") {
      const r = final.value;
      const state = short(deploymentStateToJSON(r.state), "DEPLOYMENT_STATE_");
      const reason = r.failure?.reason ? short(failureReasonToJSON(r.failure.reason), "FAILURE_REASON_") : undefined;
      metrics?.commands.inc({ type, state });
      if (type === "deploy") metrics?.deployDuration.observe({ state }, seconds);
      log.info(
        {
          event: "command_finished",
          commandId: command.id,
          type,
          ...target,
          state,
          reason,
          message: r.message,
          durationSeconds: Math.round(seconds * 1000) / 1000,
        },
        "command finished",
      );
    } else {
      const state = final.value.error ? "error" : "replied";
      metrics?.commands.inc({ type, state });
      log.info(
        {
          event: "command_finished",
          commandId: command.id,
          type,
          state,
          reason: final.value.error ? final.value.error.message : undefined,
          durationSeconds: Math.round(seconds * 1000) / 1000,
        },
        "command finished",
      );
    }
    return final;
  };
}
