// Webhooks and their delivery queue in Redis. Every key shares the `{whk}` hash tag, so the
// scripts below touch one slot of a Redis Cluster (deliveries are few: a single slot is plenty).
//   <prefix>{whk}:hooks       hash  webhook id → JSON WebhookRecord
//   <prefix>{whk}:deliveries  hash  delivery id → JSON DeliveryRecord (without the body)
//   <prefix>{whk}:bodies      hash  delivery id → request body (dropped once final)
//   <prefix>{whk}:due         zset  pending delivery ids by due time (ms)
//   <prefix>{whk}:log         zset  every kept delivery id by creation time (ms)
//   <prefix>{whk}:claims      hash  delivery id → token of the claim that holds it
// A claim moves the delivery's due time to the end of its lease (so nobody else sees it due
// until then) and records its token; completing checks the token, so a sender whose lease ran out
// (and whose delivery another replica claimed) cannot overwrite the newer attempt's outcome.
import { randomBytes } from "node:crypto";
import type { RedisCommands } from "./redis-client.js";
import { decodeRecord, encodeRecord } from "./redis-codec.js";
import { LuaScript } from "./redis-script.js";
import {
  type ClaimedDelivery,
  DELIVERY_LOG_LIMIT,
  type DeliveryRecord,
  type WebhookRecord,
  type WebhookStore,
} from "./store.js";

/**
 * KEYS: deliveries, bodies, due, log, claims. ARGV: log limit, then per delivery: id, JSON, body,
 * due ms, created ms. Adds the ones not stored yet, then prunes the oldest finished beyond the limit.
 */
const enqueueScript = new LuaScript(`
for i = 2, #ARGV, 5 do
  local id = ARGV[i]
  if redis.call('HSETNX', KEYS[1], id, ARGV[i + 1]) == 1 then
    redis.call('HSET', KEYS[2], id, ARGV[i + 2])
    redis.call('ZADD', KEYS[3], ARGV[i + 3], id)
    redis.call('ZADD', KEYS[4], ARGV[i + 4], id)
  end
end
local excess = redis.call('ZCARD', KEYS[4]) - tonumber(ARGV[1])
if excess > 0 then
  local oldest = redis.call('ZRANGE', KEYS[4], 0, excess + 100)
  for _, id in ipairs(oldest) do
    if excess <= 0 then break end
    if not redis.call('ZSCORE', KEYS[3], id) then
      redis.call('HDEL', KEYS[1], id)
      redis.call('HDEL', KEYS[2], id)
      redis.call('HDEL', KEYS[5], id)
      redis.call('ZREM', KEYS[4], id)
      excess = excess - 1
    end
  end
end
return 1
`);

/**
 * KEYS: due, deliveries, bodies, claims. ARGV: now ms, limit, lease ms, claim token.
 * Returns {id, JSON, body} per claimed delivery.
 */
const claimScript = new LuaScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(ids) do
  local record = redis.call('HGET', KEYS[2], id)
  if record then
    redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[3]), id)
    redis.call('HSET', KEYS[4], id, ARGV[4])
    out[#out + 1] = {id, record, redis.call('HGET', KEYS[3], id) or ''}
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
`);

/**
 * KEYS: due, deliveries, bodies, claims. ARGV: id, claim token, JSON, next due ms ('' = final).
 * Returns 1 when stored, 0 when the claim is not the current one.
 */
const completeScript = new LuaScript(`
if redis.call('HGET', KEYS[4], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('HDEL', KEYS[4], ARGV[1])
if ARGV[4] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
end
return 1
`);

export class RedisWebhooks implements WebhookStore {
  private readonly hooks: string;
  private readonly deliveries: string;
  private readonly bodies: string;
  private readonly due: string;
  private readonly log: string;
  private readonly claims: string;

  constructor(
    private readonly client: RedisCommands,
    prefix: string,
  ) {
    const base = `${prefix}{whk}:`;
    this.hooks = `${base}hooks`;
    this.deliveries = `${base}deliveries`;
    this.bodies = `${base}bodies`;
    this.due = `${base}due`;
    this.log = `${base}log`;
    this.claims = `${base}claims`;
  }

  async createWebhook(webhook: WebhookRecord): Promise<void> {
    await this.client.hSet(this.hooks, webhook.id, encodeRecord(webhook));
  }

  async getWebhook(id: string): Promise<WebhookRecord | undefined> {
    const text = await this.client.hGet(this.hooks, id);
    return text ? decodeRecord<WebhookRecord>(text) : undefined;
  }

  async listWebhooks(agentId?: string): Promise<WebhookRecord[]> {
    const all = Object.values(await this.client.hGetAll(this.hooks)).map((t) => decodeRecord<WebhookRecord>(t));
    return all
      .filter((w) => !agentId || w.agentId === agentId)
      .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || (a.id < b.id ? -1 : 1));
  }

  async deleteWebhook(id: string): Promise<boolean> {
    return (await this.client.hDel(this.hooks, id)) === 1;
  }

  async enqueueDeliveries(items: { delivery: DeliveryRecord; body: string }[]): Promise<void> {
    if (items.length === 0) return;
    const args = [String(DELIVERY_LOG_LIMIT)];
    for (const { delivery, body } of items) {
      args.push(
        delivery.id,
        encodeRecord(delivery),
        body,
        String(delivery.nextAttemptAt?.getTime() ?? delivery.createdAt.getTime()),
        String(delivery.createdAt.getTime()),
      );
    }
    await enqueueScript.run(this.client, [this.deliveries, this.bodies, this.due, this.log, this.claims], args);
  }

  async claimDue(now: Date, limit: number, leaseMs: number): Promise<ClaimedDelivery[]> {
    const claim = randomBytes(9).toString("base64url");
    const reply = (await claimScript.run(
      this.client,
      [this.due, this.deliveries, this.bodies, this.claims],
      [String(now.getTime()), String(Math.max(1, Math.floor(limit))), String(Math.floor(leaseMs)), claim],
    )) as [string, string, string][];
    return reply.map(([, record, body]) => ({ delivery: decodeRecord<DeliveryRecord>(record), body, claim }));
  }

  async completeDelivery(claim: string, delivery: DeliveryRecord): Promise<boolean> {
    const next = delivery.state === "pending" ? String(delivery.nextAttemptAt?.getTime() ?? Date.now()) : "";
    const stored = await completeScript.run(
      this.client,
      [this.due, this.deliveries, this.bodies, this.claims],
      [delivery.id, claim, encodeRecord(delivery), next],
    );
    return stored === 1;
  }

  async getDelivery(id: string): Promise<DeliveryRecord | undefined> {
    const text = await this.client.hGet(this.deliveries, id);
    return text ? decodeRecord<DeliveryRecord>(text) : undefined;
  }

  async listDeliveries(filter: { webhookId?: string; deploymentId?: string }, limit: number) {
    const ids = await this.client.zRange(this.log, "+inf", "-inf", { BY: "SCORE", REV: true });
    const out: DeliveryRecord[] = [];
    // In pages, newest first, until `limit` match (the log holds at most ~DELIVERY_LOG_LIMIT ids).
    for (let i = 0; i < ids.length && out.length < limit; i += 200) {
      const page = ids.slice(i, i + 200);
      const texts = await this.client.hmGet(this.deliveries, page);
      for (const text of texts) {
        if (!text || out.length >= limit) continue;
        const d = decodeRecord<DeliveryRecord>(text);
        if (filter.webhookId && d.webhookId !== filter.webhookId) continue;
        if (filter.deploymentId && d.deploymentId !== filter.deploymentId) continue;
        out.push(d);
      }
    }
    return out;
  }

  async pendingDeliveries(): Promise<number> {
    return await this.client.zCard(this.due);
  }
}
