// Agents and deploy keys in Redis: one JSON string per record plus a sorted set (score =
// createdAt) for listing oldest first. Updates are read-merge-compare-and-set, retried on a
// concurrent change, so concurrent patches of one record never lose each other's fields.
import type { RedisCommands } from "./redis-client.js";
import { sleep } from "./redis-client.js";
import { decodeRecord, encodeRecord } from "./redis-codec.js";
import type { RedisKeys } from "./redis-keys.js";
import { compareAndSet, LuaScript } from "./redis-script.js";
import type { AgentRecord, AgentStore, KeyRecord, KeyStore } from "./store.js";

const MAX_UPDATE_ATTEMPTS = 50;

export class RecordTable<T extends { id: string; createdAt: Date }> {
  constructor(
    private readonly client: RedisCommands,
    private readonly keyOf: (id: string) => string,
    private readonly indexKey: string,
  ) {}

  async create(record: T): Promise<void> {
    // Two keys in different slots, so no transaction: the record goes first so the index never
    // names a record that was not written (list() would skip it anyway).
    await this.client.set(this.keyOf(record.id), encodeRecord(record));
    await this.client.zAdd(this.indexKey, { score: record.createdAt.getTime(), value: record.id });
  }

  async get(id: string): Promise<T | undefined> {
    const text = await this.client.get(this.keyOf(id));
    return text === null ? undefined : decodeRecord<T>(text);
  }

  /** Oldest first (ties by id). */
  async list(): Promise<T[]> {
    const ids = await this.client.zRange(this.indexKey, 0, -1);
    const records = await Promise.all(ids.map((id) => this.get(id)));
    return records.filter((r): r is Awaited<T> => r !== undefined);
  }

  /** With `when`, the patch applies only to a record it accepts (checked again on every retry). */
  async update(id: string, patch: Partial<Omit<T, "id">>, when?: (current: T) => boolean): Promise<T | undefined> {
    const key = this.keyOf(id);
    for (let attempt = 1; attempt <= MAX_UPDATE_ATTEMPTS; attempt++) {
      const text = await this.client.get(key);
      if (text === null) return undefined;
      const current = decodeRecord<T>(text);
      if (when && !when(current)) return undefined;
      const next = { ...current, ...patch, id: current.id } as T;
      const nextText = encodeRecord(next);
      if ((await compareAndSet.run(this.client, [key], [text, nextText])) === 1) {
        if (next.createdAt.getTime() !== current.createdAt.getTime()) {
          await this.client.zAdd(this.indexKey, { score: next.createdAt.getTime(), value: id });
        }
        return decodeRecord<T>(nextText);
      }
      await sleep(Math.random() * Math.min(2 * attempt, 20));
    }
    throw new Error(`update of ${id} kept conflicting with concurrent updates`);
  }
}

/**
 * KEYS: agent record. ARGV: `"connectionId":"<id>"`, `"lastSeenAt":{"$date":"<ISO>"}` as
 * encodeRecord writes them. Replaces the lastSeenAt field in place when the record names that
 * connection: one command instead of read-merge-compare-and-set, for the most frequent write of an
 * idle fleet. Both are found as plain text; a user-supplied field (name, hello) cannot fake them,
 * because JSON escapes its quotes. Returns 1 done, 0 not this connection (or no record), -1 no
 * lastSeenAt field yet (the caller then patches the record).
 */
const touchScript = new LuaScript(`
local text = redis.call('GET', KEYS[1])
if not text then return 0 end
if not string.find(text, ARGV[1], 1, true) then return 0 end
local replaced, n = string.gsub(text, '"lastSeenAt":{"%$date":"[^"]*"}', function() return ARGV[2] end, 1)
if n == 0 then return -1 end
redis.call('SET', KEYS[1], replaced, 'KEEPTTL')
return 1
`);

export function redisAgentStore(client: RedisCommands, keys: RedisKeys): AgentStore {
  const table = new RecordTable<AgentRecord>(client, keys.agent, keys.agentIndex);
  return {
    createAgent: (agent) => table.create(agent),
    getAgent: (id) => table.get(id),
    listAgents: () => table.list(),
    updateAgent: (id, patch) => table.update(id, patch),
    touchAgent: async (id, connectionId, lastSeenAt) => {
      const done = await touchScript.run(
        client,
        [keys.agent(id)],
        [`"connectionId":${JSON.stringify(connectionId)}`, `"lastSeenAt":{"$date":"${lastSeenAt.toISOString()}"}`],
      );
      if (done !== -1) return done === 1;
      const held = (a: AgentRecord) => a.connectionId === connectionId;
      return (await table.update(id, { lastSeenAt }, held)) !== undefined;
    },
    releaseAgent: async (id, connectionId, lastSeenAt) => {
      const held = (a: AgentRecord) => a.connectionId === connectionId;
      const patch = { connectionId: undefined, replicaId: undefined, lastSeenAt };
      return (await table.update(id, patch, held)) !== undefined;
    },
  };
}

export function redisKeyStore(client: RedisCommands, keys: RedisKeys): KeyStore {
  const table = new RecordTable<KeyRecord>(client, keys.key, keys.keyIndex);
  return {
    createKey: (key) => table.create(key),
    getKey: (id) => table.get(id),
    listKeys: async (agentId) => {
      const all = await table.list();
      return agentId ? all.filter((k) => k.agentId === agentId) : all;
    },
    updateKey: (id, patch) => table.update(id, patch),
  };
}
