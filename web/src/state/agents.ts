// The agent list, polled. The Agents page polls fast (connection state changes must show within
// seconds); other pages only need names for labels and filters.
import type { Agent, AgentRelease } from "@k8sdeploy/proto/es/k8sdeploy/v1/admin_pb.js";
import { createSignal } from "solid-js";
import { admin } from "../api/clients.js";
import { createPolled, type Polled } from "./polled.js";

const [release, setRelease] = createSignal<AgentRelease | undefined>();
/** The orchestrator's current agent release (release channel), as of the last agent list. */
export const currentRelease = release;

export function createAgentsQuery(intervalMs: number, includeRevoked: () => boolean = () => false): Polled<Agent[]> {
  return createPolled(async (signal) => {
    const response = await admin.listAgents({ includeRevoked: includeRevoked() }, { signal });
    setRelease(response.currentRelease);
    return response.agents;
  }, intervalMs);
}

export function agentName(agents: Agent[] | undefined, id: string): string {
  return agents?.find((a) => a.id === id)?.name ?? id;
}
