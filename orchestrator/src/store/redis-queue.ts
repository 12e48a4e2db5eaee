// Durable per-agent command queues: one Redis Stream per agent read through one consumer group
// shared by all replicas, plus a hash command id → stream entry id of the unacknowledged
// commands (deduplicates enqueues, lets ack find the entry). Both keys of an agent share the
// `{agentId}` hash tag so the scripts below touch a single slot.
import type { Command } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import type { RedisCommands, StoreLog } from "./redis-client.js";
import { errorMessage } from "./redis-client.js";
import { decodeCommand, encodeCommand } from "./redis-codec.js";
import { QUEUE_GROUP, type RedisKeys } from "./redis-keys.js";
import { LuaScript } from "./redis-script.js";
import type { CommandQueue, QueueEntry, QueueStats, WithdrawOutcome } from "./store.js";

/** KEYS: queue, inflight. ARGV: command id, base64 command. Returns 1 if added, 0 if already queued. */
const enqueueScript = new LuaScript(`
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
local entry = redis.call('XADD', KEYS[1], '*', 'id', ARGV[1], 'cmd', ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], entry)
return 1
`);

/**
 * KEYS: queue. ARGV: group, consumer, includePending (1/0), count, createGroup (1/0).
 * With createGroup, first creates the consumer group (and the stream) unless it exists — once per
 * queue and process, so that taking never costs a separate XGROUP round trip. With includePending,
 * first claims every pending entry (any consumer, min idle 0), then reads new entries (never
 * blocking). Returns {entry id, fields, delivery count} per entry.
 */
const takeScript = new LuaScript(`
local group, consumer, count = ARGV[1], ARGV[2], tonumber(ARGV[4])
if ARGV[5] == '1' then
  -- Start at 0: entries added before the group existed are delivered too.
  redis.pcall('XGROUP', 'CREATE', KEYS[1], group, '0', 'MKSTREAM')
end
local result = {}
if ARGV[3] == '1' then
  local start = '0-0'
  local claimed_all = {}
  repeat
    local claimed = redis.call('XAUTOCLAIM', KEYS[1], group, consumer, 0, start, 'COUNT', count - #claimed_all)
    for _, entry in ipairs(claimed[2]) do
      if entry then claimed_all[#claimed_all + 1] = entry end
    end
    start = claimed[1]
  until start == '0-0' or #claimed_all >= count
  for _, entry in ipairs(claimed_all) do
    local pending = redis.call('XPENDING', KEYS[1], group, entry[1], entry[1], 1)
    local deliveries = 1
    if pending[1] then deliveries = pending[1][4] end
    result[#result + 1] = {entry[1], entry[2], deliveries}
  end
end
if #result < count then
  local read = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count - #result, 'STREAMS', KEYS[1], '>')
  if read then
    -- Read for the first time: delivered once, now.
    for _, entry in ipairs(read[1][2]) do result[#result + 1] = {entry[1], entry[2], 1} end
  end
end
return result
`);

/**
 * KEYS: queue, inflight. ARGV: group, command id. Removes the command only if no consumer was
 * ever handed it: an entry that was read is in the group's pending list until ack (which XACKs and
 * deletes it together). Returns 1 withdrawn, 2 handed out, 0 unknown.
 */
const withdrawScript = new LuaScript(`
local entry = redis.call('HGET', KEYS[2], ARGV[2])
if not entry then return 0 end
local ok, pending = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1], entry, entry, 1)
if ok and pending[1] then return 2 end
redis.call('XDEL', KEYS[1], entry)
redis.call('HDEL', KEYS[2], ARGV[2])
return 1
`);

/** KEYS: deadlines. ARGV: now (ms), limit. Removes and returns the due members. */
const takeDueScript = new LuaScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
return due
`);

/** KEYS: queue, inflight. ARGV: group, command id. Returns 1 if removed, 0 if unknown. */
const ackScript = new LuaScript(`
local entry = redis.call('HGET', KEYS[2], ARGV[2])
if not entry then return 0 end
redis.pcall('XACK', KEYS[1], ARGV[1], entry)
redis.call('XDEL', KEYS[1], entry)
redis.call('HDEL', KEYS[2], ARGV[2])
return 1
`);

/**
 * KEYS: queue. ARGV: group. Returns {waiting, in flight, id of the oldest waiting entry or ''}.
 * Entries leave the stream when acknowledged or withdrawn, so what is left is either pending in
 * the group (in flight) or after the group's last-delivered-id (waiting, oldest first). XINFO's
 * `lag` is not used: Redis cannot compute it once entries were deleted.
 */
const statsScript = new LuaScript(`
local len = redis.call('XLEN', KEYS[1])
if len == 0 then return {0, 0, ''} end
local pending, last = 0, nil
local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])
if ok then
  for _, g in ipairs(groups) do
    local name, p, l
    for i = 1, #g, 2 do
      if g[i] == 'name' then name = g[i + 1]
      elseif g[i] == 'pending' then p = g[i + 1]
      elseif g[i] == 'last-delivered-id' then l = g[i + 1] end
    end
    if name == ARGV[1] then pending, last = p, l end
  end
end
local first
if last then
  first = redis.call('XRANGE', KEYS[1], '(' .. last, '+', 'COUNT', 1)[1]
else
  first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
end
return {len - pending, pending, first and first[1] or ''}
`);

type TakenEntry = [entryId: string, fields: string[], deliveryCount: number];

export class RedisQueue implements CommandQueue {
  /** Queues whose consumer group this instance created or found (the take script creates it once). */
  private readonly groups = new Set<string>();

  constructor(
    private readonly client: RedisCommands,
    private readonly keys: RedisKeys,
    private readonly log: StoreLog,
  ) {}

  async enqueue(agentId: string, command: Command): Promise<void> {
    // Sent together (one round trip). The deadline entry lives in another slot than the queue
    // (Redis Cluster), so it is not in the script; adding it again for a command already queued is
    // harmless (same member and score). A crash in between leaves a command without deadline entry,
    // which delivery still expires (it checks expiresAt).
    const added = enqueueScript.run(
      this.client,
      [this.keys.queue(agentId), this.keys.inflight(agentId)],
      [command.id, encodeCommand(command)],
    );
    const deadline = command.expiresAt
      ? this.client.zAdd(this.keys.deadlines, {
          score: command.expiresAt.getTime(),
          value: deadlineMember(agentId, command.id),
        })
      : undefined;
    await Promise.all([added, deadline]);
  }

  async take(agentId: string, consumer: string, options: { includePending: boolean; count: number }) {
    const count = Math.floor(options.count);
    if (!(count > 0)) return [];
    const queue = this.keys.queue(agentId);
    const args = (create: boolean) => [
      QUEUE_GROUP,
      consumer,
      options.includePending ? "1" : "0",
      String(count),
      create ? "1" : "0",
    ];
    let reply: unknown;
    try {
      reply = await takeScript.run(this.client, [queue], args(!this.groups.has(queue)));
    } catch (err) {
      // The group vanished (stream deleted, Redis restarted without persistence): recreate once.
      if (!errorMessage(err).includes("NOGROUP")) throw err;
      reply = await takeScript.run(this.client, [queue], args(true));
    }
    this.groups.add(queue);
    const out: QueueEntry[] = [];
    for (const [entryId, fields, deliveryCount] of reply as TakenEntry[]) {
      let command: Command;
      try {
        const payload = fieldValue(fields, "cmd");
        if (payload === undefined) throw new Error("entry has no cmd field");
        command = decodeCommand(payload);
      } catch (err) {
        // Left pending: visible to an operator, never handed to the agent.
        this.log.warn({ agentId, entryId, err: errorMessage(err) }, "skipping undecodable queue entry");
        continue;
      }
      out.push({ command, deliveries: Math.max(0, Number(deliveryCount) - 1) });
    }
    return out;
  }

  async ack(agentId: string, commandId: string): Promise<boolean> {
    // One round trip: removing a deadline entry that is not there is harmless.
    const [removed] = await Promise.all([
      ackScript.run(this.client, [this.keys.queue(agentId), this.keys.inflight(agentId)], [QUEUE_GROUP, commandId]),
      this.client.zRem(this.keys.deadlines, deadlineMember(agentId, commandId)),
    ]);
    return removed === 1;
  }

  async withdraw(agentId: string, commandId: string): Promise<WithdrawOutcome> {
    const outcome = await withdrawScript.run(
      this.client,
      [this.keys.queue(agentId), this.keys.inflight(agentId)],
      [QUEUE_GROUP, commandId],
    );
    if (outcome === 1) await this.client.zRem(this.keys.deadlines, deadlineMember(agentId, commandId));
    return outcome === 1 ? "withdrawn" : outcome === 2 ? "sent" : "unknown";
  }

  async list(agentId: string, limit: number): Promise<Command[]> {
    const entries = (await this.client.xRange(this.keys.queue(agentId), "-", "+", {
      COUNT: Math.max(1, Math.floor(limit)),
    })) as { id: string; message: Record<string, string> }[];
    const out: Command[] = [];
    for (const entry of entries) {
      const payload = entry.message.cmd;
      if (payload === undefined) continue;
      try {
        out.push(decodeCommand(payload));
      } catch {
        // undecodable entries are reported by take()
      }
    }
    return out;
  }

  async takeDue(now: Date, limit: number): Promise<{ agentId: string; commandId: string }[]> {
    const members = (await takeDueScript.run(
      this.client,
      [this.keys.deadlines],
      [String(now.getTime()), String(Math.max(1, Math.floor(limit)))],
    )) as string[];
    return members.flatMap((m) => {
      const [agentId, commandId] = m.split(" ");
      return agentId && commandId ? [{ agentId, commandId }] : [];
    });
  }

  async pendingCount(agentId: string): Promise<number> {
    return await this.client.hLen(this.keys.inflight(agentId));
  }

  async stats(agentIds: readonly string[]): Promise<QueueStats[]> {
    // Issued together: node-redis writes them in one batch (one round trip for all agents).
    const replies = await Promise.all(
      agentIds.map(
        (agentId) =>
          statsScript.run(this.client, [this.keys.queue(agentId)], [QUEUE_GROUP]) as Promise<[number, number, string]>,
      ),
    );
    return replies.map(([waiting, inFlight, oldest], i) => ({
      agentId: agentIds[i] ?? "",
      waiting: Number(waiting),
      inFlight: Number(inFlight),
      // A stream entry id starts with the Redis server's time in ms: when the command was queued.
      oldestWaitingSince: oldest ? new Date(Number(oldest.split("-")[0])) : undefined,
    }));
  }
}

function deadlineMember(agentId: string, commandId: string): string {
  return `${agentId} ${commandId}`;
}

function fieldValue(fields: string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}
