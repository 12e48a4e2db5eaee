// Shared by both stores: deployment list filtering and opaque page tokens.
// Deployment ids sort by creation time, so "the id of the last item" is a stable cursor.
import type { Deployment } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import type { DeploymentFilter } from "./store.js";

export function matchesFilter(d: Deployment, filter: DeploymentFilter): boolean {
  if (filter.agentId && d.agentId !== filter.agentId) return false;
  if (filter.namespace && d.namespace !== filter.namespace) return false;
  if (filter.states && filter.states.length > 0 && !filter.states.includes(d.state)) return false;
  return true;
}

export function encodePageToken(lastId: string): string {
  return Buffer.from(lastId, "utf8").toString("base64url");
}

/** Undefined for the first page; throws on a malformed token. */
export function decodePageToken(token: string): string | undefined {
  if (token === "") return undefined;
  const id = Buffer.from(token, "base64url").toString("utf8");
  if (!/^dep_[0-9a-z]+$/.test(id)) throw new InvalidPageTokenError();
  return id;
}

export class InvalidPageTokenError extends Error {
  constructor() {
    super("page_token is not one returned by ListDeployments; omit it to start from the first page");
  }
}
