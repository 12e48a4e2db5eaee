// AgentRecord (stored) → Agent (API). Never includes token hashes.
import { type Agent, type AgentRelease, ConnectionState } from "@k8sdeploy/proto/node/k8sdeploy/v1/admin.js";
import type { AgentRecord } from "../store/store.js";
import { isConnected } from "./connection-state.js";

/** `availableUpdate`: the release this agent is behind, if any (see ReleaseChannel.newerThan). */
export function agentView(record: AgentRecord, now = Date.now(), availableUpdate?: AgentRelease): Agent {
  const connected = isConnected(record, now);
  return {
    id: record.id,
    name: record.name,
    createdAt: record.createdAt,
    connectionState: connected
      ? ConnectionState.CONNECTION_STATE_CONNECTED
      : record.lastSeenAt
        ? ConnectionState.CONNECTION_STATE_DISCONNECTED
        : ConnectionState.CONNECTION_STATE_NEVER_CONNECTED,
    lastSeenAt: record.lastSeenAt,
    connectedSince: record.connectedSince,
    version: record.hello?.version ?? "",
    arch: record.hello?.arch ?? "",
    kubernetesVersion: record.hello?.kubernetesVersion ?? "",
    autoUpdateEnabled: record.hello?.autoUpdateEnabled ?? false,
    replicaId: connected ? (record.replicaId ?? "") : "",
    revokedAt: record.revokedAt,
    tokenPrefix: record.tokens[0]?.prefix ?? "",
    availableUpdate: record.revokedAt ? undefined : availableUpdate,
    lastUpdateId: record.lastUpdateId ?? "",
  };
}
