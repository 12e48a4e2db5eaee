// `k8sdeploy deployments list|get|watch|rollback|cancel`
import { GetDeploymentResponse, WatchDeploymentResponse } from "@k8sdeploy/proto/node/k8sdeploy/v1/deploy.js";
import { Deployment, DeploymentState, workloadKindToJSON } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import { type Command, Option } from "commander";
import type { AdminApi } from "./admin-client.js";
import { eventLine, printDeployment } from "./deployment-view.js";
import { wantsJson } from "./globals.js";
import {
  deploymentStateName,
  deploymentStateNames,
  formatTime,
  integerIn,
  parseDeploymentState,
  printJson,
  printTable,
  warn,
} from "./output.js";
import { withAdmin } from "./run.js";

export function registerDeploymentCommands(program: Command): void {
  const deployments = program.command("deployments").description("look at deployments (AdminService)");

  deployments
    .command("list")
    .description("list deployments, newest first")
    .option("--agent <id>", "only this agent's")
    .option("--namespace <ns>", "only this namespace")
    .addOption(
      new Option("--state <state>", `only this state (repeatable): ${deploymentStateNames.join(", ")}`)
        .argParser(parseDeploymentState)
        .default([], "any"),
    )
    .option("--limit <n>", "at most this many, 1..500", integerIn(1, 500), 50)
    .option("--json", "print a JSON array")
    .action((opts: { agent?: string; namespace?: string; state: DeploymentState[]; limit: number; json?: boolean }) =>
      withAdmin(async (admin) => {
        const res = await admin.listDeployments({
          agentId: opts.agent ?? "",
          namespace: opts.namespace ?? "",
          states: opts.state,
          pageSize: opts.limit,
          pageToken: "",
        });
        const list = res.deployments.slice(0, opts.limit);
        if (wantsJson(opts)) {
          printJson(list.map((d) => Deployment.toJSON(d)));
          return;
        }
        printTable(
          ["ID", "AGENT", "NAMESPACE", "WORKLOAD", "IMAGE", "STATE", "CREATED"],
          list.map((d) => [
            d.id,
            d.agentId,
            d.namespace,
            `${workloadKindToJSON(d.kind)
              .replace(/^WORKLOAD_KIND_/, "")
              .replaceAll("_", "")
              .toLowerCase()}/${d.workload}`,
            d.image,
            deploymentStateName(d.state),
            formatTime(d.createdAt),
          ]),
        );
        if (res.nextPageToken) warn(`more deployments match; showing the newest ${list.length} (raise --limit)`);
      }),
    );

  deployments
    .command("get")
    .description("show a deployment with its timeline and audit trail")
    .argument("<id>", "deployment id (dep_…)")
    .option("--json", "print {deployment, events} as JSON")
    .action((id: string, opts: { json?: boolean }) =>
      withAdmin(async (admin) => {
        const res = await admin.getDeployment(id);
        if (!res.deployment) throw new Error("the orchestrator returned no deployment");
        if (wantsJson(opts)) printJson(GetDeploymentResponse.toJSON(res));
        else printDeployment(res.deployment, res.events);
      }),
    );

  deployments
    .command("watch")
    .description("follow a deployment until its final state (exit 0 only when it succeeded)")
    .argument("<id>", "deployment id (dep_…)")
    .option("--json", "print one JSON object per event (NDJSON)")
    .action((id: string, opts: { json?: boolean }) =>
      withAdmin(async (admin) => {
        process.exitCode = await follow(admin, id, wantsJson(opts));
      }),
    );

  deployments
    .command("rollback")
    .description("deploy the previous images of a finished deployment again (a new deployment)")
    .argument("<id>", "the deployment to undo (dep_…)")
    .option("--watch", "then follow the new deployment until its final state")
    .option("--json", "print the new deployment as JSON")
    .action((id: string, opts: { watch?: boolean; json?: boolean }) =>
      withAdmin(async (admin) => {
        const { deployment } = await admin.rollbackDeployment({ id });
        if (!deployment) throw new Error("the orchestrator returned no deployment");
        if (wantsJson(opts) && !opts.watch) printJson(Deployment.toJSON(deployment));
        else if (!wantsJson(opts)) {
          process.stdout.write(`${deployment.id} ${deploymentStateName(deployment.state)}: rollback of ${id}\n`);
        }
        if (opts.watch) process.exitCode = await follow(admin, deployment.id, wantsJson(opts));
      }),
    );

  deployments
    .command("cancel")
    .description("cancel a deployment that has not been sent to its agent yet (it is then never applied)")
    .argument("<id>", "deployment id (dep_…)")
    .option("--reason <text>", "recorded in the timeline", "")
    .option("--json", "print the deployment as JSON")
    .action((id: string, opts: { reason: string; json?: boolean }) =>
      withAdmin(async (admin) => {
        const { deployment } = await admin.cancelDeployment({ id, reason: opts.reason });
        if (!deployment) throw new Error("the orchestrator returned no deployment");
        if (wantsJson(opts)) printJson(Deployment.toJSON(deployment));
        else process.stdout.write(`${deployment.id} ${deploymentStateName(deployment.state)}: ${deployment.message}\n`);
      }),
    );
}

/** Prints every event until the final one; the exit code: 0 when it succeeded, 1 otherwise. */
async function follow(admin: AdminApi, id: string, json: boolean): Promise<number> {
  let last: Deployment | undefined;
  for await (const { event, deployment } of admin.watchDeployment(id)) {
    if (!event) continue;
    last = deployment ?? last;
    if (json) {
      process.stdout.write(`${JSON.stringify(WatchDeploymentResponse.toJSON({ event, deployment }))}\n`);
    } else process.stdout.write(`${eventLine(event)}\n`);
  }
  if (!last) throw new Error(`the watch of ${id} ended without an event`);
  if (last.state === DeploymentState.DEPLOYMENT_STATE_SUCCEEDED) return 0;
  if (!json) {
    const failure = last.failure ? `: ${last.failure.message || last.message}` : "";
    process.stderr.write(`error: deployment ${last.id} ended ${deploymentStateName(last.state)}${failure}\n`);
  }
  return 1;
}
