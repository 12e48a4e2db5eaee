// One deployment with its timeline: GetDeployment, then WatchDeployment from the last seq seen
// until the deployment reaches a final state, reconnecting (from that seq) after drops.
import { Code } from "@connectrpc/connect";
import type { Deployment, DeploymentEvent } from "@k8sdeploy/proto/es/k8sdeploy/v1/types_pb.js";
import { createSignal, onCleanup } from "solid-js";
import { deploy } from "../api/clients.js";
import { errorMessage, isCode } from "../api/errors.js";
import { isFinalState } from "../lib/format.js";
import { defaultBackoff, type FollowStatus } from "./follow-deployments.js";

export function createDeploymentDetail(id: string) {
  const [deployment, setDeployment] = createSignal<Deployment>();
  const [events, setEvents] = createSignal<DeploymentEvent[]>([]);
  const [error, setError] = createSignal("");
  const [notFound, setNotFound] = createSignal(false);
  const [status, setStatus] = createSignal<FollowStatus>({ kind: "connecting" });
  const ctl = new AbortController();
  onCleanup(() => ctl.abort());

  const addEvent = (event: DeploymentEvent) => {
    const list = events();
    if (list.some((e) => e.seq === event.seq)) return;
    setEvents([...list, event].sort((a, b) => a.seq - b.seq));
  };
  const lastSeq = () => events().reduce((max, e) => Math.max(max, e.seq), 0);

  const run = async () => {
    try {
      const response = await deploy.getDeployment({ id }, { signal: ctl.signal });
      setDeployment(response.deployment);
      setEvents(response.events);
    } catch (err) {
      if (ctl.signal.aborted) return;
      if (isCode(err, Code.NotFound)) setNotFound(true);
      else setError(errorMessage(err));
      return;
    }
    let failures = 0;
    while (!ctl.signal.aborted && !isFinalState(deployment()?.state ?? 0)) {
      setStatus({ kind: "live" });
      try {
        for await (const message of deploy.watchDeployment({ id, afterSeq: lastSeq() }, { signal: ctl.signal })) {
          failures = 0;
          if (message.event) addEvent(message.event);
          if (message.deployment) setDeployment(message.deployment);
        }
        if (isFinalState(deployment()?.state ?? 0)) break;
      } catch (err) {
        if (ctl.signal.aborted || isCode(err, Code.Unauthenticated)) return;
        failures += 1;
        const delay = defaultBackoff(failures);
        setStatus({ kind: "reconnecting", error: errorMessage(err), retryAt: Date.now() + delay });
        await new Promise((r) => setTimeout(r, delay));
        continue;
      }
      // The stream ended without a final state (server restart): reopen after a short pause.
      failures += 1;
      await new Promise((r) => setTimeout(r, defaultBackoff(failures)));
    }
    setStatus({ kind: "stopped", error: "" });
  };
  void run();

  return { deployment, events, error, notFound, status, setDeployment };
}
