// Key naming of the Redis store. Every key starts with the prefix (default "k8sd:"). Keys that
// are written together by one script or transaction share a hash tag (`{…}`) so that they land
// in one slot of a Redis Cluster: an agent's queue and its in-flight map use `{<agentId>}`, a
// deployment's record and events use `{<deploymentId>}`.

export const DEFAULT_KEY_PREFIX = "k8sd:";

/** Consumer group of every agent queue: all replicas read through the same group. */
export const QUEUE_GROUP = "k8sd";

export interface RedisKeys {
  readonly prefix: string;
  /** JSON AgentRecord. */
  agent(id: string): string;
  /** Sorted set of agent ids, score = createdAt (ms). */
  readonly agentIndex: string;
  /** JSON KeyRecord. */
  key(id: string): string;
  /** Sorted set of key ids, score = createdAt (ms). */
  readonly keyIndex: string;
  /** JSON Deployment (proto JSON). */
  deployment(id: string): string;
  /** List of JSON DeploymentEvents; element i has seq i+1. */
  deploymentEvents(id: string): string;
  /** Sorted set of deployment ids, all with score 0: lexicographic order = creation order. */
  readonly deploymentIndex: string;
  /** String: id of the deployment created under this idempotency scope. */
  idempotency(scope: string): string;
  /** Stream of feed entries (fields d = deployment JSON, e = event JSON). */
  readonly feed: string;
  /** Stream of the agent's commands (fields id = command id, cmd = base64 Command). */
  queue(agentId: string): string;
  /** Hash command id → stream entry id of the agent's unacknowledged commands. */
  inflight(agentId: string): string;
  /** Pub/Sub channel of the bus. */
  readonly busChannel: string;
  /** String: holder of a replica-wide lease, with a TTL. */
  lease(name: string): string;
  /** Sorted set of `<agentId> <commandId>` by the command's expiresAt (ms): the expiry sweep's index. */
  readonly deadlines: string;
  /** JSON TrustPolicyRecord (GitHub OIDC trust). */
  trustPolicy(id: string): string;
  /** Sorted set of trust policy ids, score = createdAt (ms). */
  readonly trustPolicyIndex: string;
  /** One-time marker (e.g. an ID token's issuer and jti), with a TTL. */
  once(id: string): string;
}

export function redisKeys(prefix: string = DEFAULT_KEY_PREFIX): RedisKeys {
  return {
    prefix,
    agent: (id) => `${prefix}agent:${id}`,
    agentIndex: `${prefix}agents`,
    key: (id) => `${prefix}key:${id}`,
    keyIndex: `${prefix}keys`,
    deployment: (id) => `${prefix}dep:{${id}}`,
    deploymentEvents: (id) => `${prefix}dep:{${id}}:events`,
    deploymentIndex: `${prefix}deps`,
    idempotency: (scope) => `${prefix}idem:${scope}`,
    feed: `${prefix}feed`,
    queue: (agentId) => `${prefix}{${agentId}}:queue`,
    inflight: (agentId) => `${prefix}{${agentId}}:inflight`,
    busChannel: `${prefix}bus`,
    lease: (name) => `${prefix}lease:${name}`,
    deadlines: `${prefix}deadlines`,
    trustPolicy: (id) => `${prefix}trust:${id}`,
    trustPolicyIndex: `${prefix}trusts`,
    once: (id) => `${prefix}once:${id}`,
  };
}
