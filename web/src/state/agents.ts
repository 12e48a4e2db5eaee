// The agent list, polled. The Agents page polls fast (connection state changes must show within
// seconds); other pages only need names for labels and filters.
import type { Agent } from "@k8sdeploy/proto/es/k8sdeploy/v1/admin_pb.js";
import { admin } from "../api/clients.js";
import { createPolled, type Polled } from "./polled.js";

export function createAgentsQuery(intervalMs: number, includeRevoked: () => boolean = () => false): Polled<Agent[]> {
  return createPolled(
    async (signal) => (await admin.listAgents({ includeRevoked: includeRevoked() }, { signal })).agents,
    intervalMs,
  );
}

export function agentName(agents: Agent[] | undefined, id: string): string {
  return agents?.find((a) => a.id === id)?.name ?? id;
}
