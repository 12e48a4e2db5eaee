// Agents and deploy keys in Redis: one JSON string per record plus a sorted set (score =
// createdAt) for listing oldest first. Updates are read-merge-compare-and-set, retried on a
// concurrent change, so concurrent patches of one record never lose each other's fields.
import type { RedisClient } from "./redis-client.js";
import { sleep } from "./redis-client.js";
import { decodeRecord, encodeRecord } from "./redis-codec.js";
import type { RedisKeys } from "./redis-keys.js";
import { compareAndSet } from "./redis-script.js";
import type { AgentRecord, AgentStore, KeyRecord, KeyStore } from "./store.js";

const MAX_UPDATE_ATTEMPTS = 50;

export class RecordTable<T extends { id: string; createdAt: Date }> {
  constructor(
    private readonly client: RedisClient,
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

  async update(id: string, patch: Partial<Omit<T, "id">>): Promise<T | undefined> {
    const key = this.keyOf(id);
    for (let attempt = 1; attempt <= MAX_UPDATE_ATTEMPTS; attempt++) {
      const text = await this.client.get(key);
      if (text === null) return undefined;
      const current = decodeRecord<T>(text);
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

export function redisAgentStore(client: RedisClient, keys: RedisKeys): AgentStore {
  const table = new RecordTable<AgentRecord>(client, keys.agent, keys.agentIndex);
  return {
    createAgent: (agent) => table.create(agent),
    getAgent: (id) => table.get(id),
    listAgents: () => table.list(),
    updateAgent: (id, patch) => table.update(id, patch),
  };
}

export function redisKeyStore(client: RedisClient, keys: RedisKeys): KeyStore {
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
