// Deployments in Redis. A deployment is a JSON record plus a list of its events (element i has
// seq i+1), both under the `{deploymentId}` hash tag so one script can change them together;
// a lexicographic sorted set of ids serves listing (ids sort by creation time); idempotency
// scopes are strings pointing at the deployment they created; every change is also appended to
// the feed.
//
// Corners that are not atomic (the keys live in different slots):
// - createDeployment claims the idempotency scope (SET NX) before writing the deployment. A
//   concurrent create with the same scope that finds the claim but not yet the deployment waits
//   for it (up to ~2 s); if the claimant died (or stalled longer) in between, the scope is taken
//   over (compare-and-set) and a new deployment is created.
// - The index entry, the record and the feed entry are sent together, in that order: on one Redis a
//   crash in between leaves an index entry without record (listing skips it) or a change missing
//   from the feed (the record and events, the source of truth, are complete; a failed feed append
//   is logged, not thrown, so that callers do not retry and store the event twice). On a cluster
//   they go to three nodes, so a crash can also leave a record without index entry (readable by
//   id, not listed).
// - The feed is trimmed to about 10 000 entries: a follower resuming from an older cursor gets
//   what is left after it, silently.
// - appendEvent serializes writers of one deployment within this process; writers on several
//   replicas are ordered by the compare-and-set, but their feed entries may then interleave
//   (a feed consumer can see seq n+1 before seq n of one deployment; listEvents has the order).
import { Deployment, DeploymentEvent, DeploymentState } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import { KeyedMutex } from "./keyed-mutex.js";
import { decodePageToken, encodePageToken, matchesFilter } from "./pagination.js";
import type { RedisCommands, StoreLog } from "./redis-client.js";
import { errorMessage, sleep } from "./redis-client.js";
import { decodeDeployment, decodeEvent, encodeDeployment, encodeEvent } from "./redis-codec.js";
import type { RedisFeed } from "./redis-feed.js";
import type { RedisKeys } from "./redis-keys.js";
import { compareAndSet, LuaScript } from "./redis-script.js";
import type {
  DeploymentFilter,
  DeploymentPage,
  DeploymentStore,
  DeploymentUpdate,
  FeedEntry,
  Subscription,
} from "./store.js";

const MAX_APPEND_ATTEMPTS = 50;
/** Index entries examined per listDeployments call at most (filters are applied in JS). */
const MAX_LIST_SCAN = 5000;
const IDEMPOTENCY_WAIT_ATTEMPTS = 40;
const IDEMPOTENCY_WAIT_MS = 50;

/**
 * KEYS: record, events. ARGV: expected record, expected event count, new record, new event, TTL
 * in seconds once finished (0: keep). Writes only if neither the record nor the event count changed
 * since they were read.
 */
const appendScript = new LuaScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('LLEN', KEYS[2]) ~= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('RPUSH', KEYS[2], ARGV[4])
local ttl = tonumber(ARGV[5])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
end
return 1
`);

/** Final states (SUCCEEDED … EXPIRED come last in the enum): the record then expires after the retention. */
const isFinished = (d: Deployment) => d.state >= DeploymentState.DEPLOYMENT_STATE_SUCCEEDED;

/** A deployment ends at most this long after it was created (queue timeout ≤ 7 days, plus its rollout). */
const MAX_LIFETIME_SECONDS = 8 * 86_400;
const INDEX_TRIM_INTERVAL_MS = 3_600_000;

/** KEYS: record, events. ARGV: record, first event. */
const createScript = new LuaScript(`
redis.call('SET', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
redis.call('RPUSH', KEYS[2], ARGV[2])
return 1
`);

/** Deployments whose last write this process remembers (see `lastWritten`). */
const LAST_WRITTEN_MAX = 10_000;

export class RedisDeployments implements DeploymentStore {
  private readonly writers = new KeyedMutex();
  /**
   * Record text and event count of what this process last wrote for an unfinished deployment. An
   * append starts from it instead of reading both back (a round trip and two commands, twice per
   * delivered command: the agent's ack and its result); the compare-and-set still checks them, so
   * after a write elsewhere the append only fails once and continues from a fresh read.
   */
  private readonly lastWritten = new Map<string, { text: string; count: number }>();
  private lastIndexTrim = 0;

  constructor(
    private readonly client: RedisCommands,
    private readonly keys: RedisKeys,
    private readonly feed: RedisFeed,
    private readonly log: StoreLog,
    /** Finished deployments (record, events) expire this long after they ended; idempotency keys too. */
    private readonly retentionSeconds: number,
  ) {}

  async createDeployment(
    deployment: Deployment,
    firstEvent: DeploymentEvent,
    idempotencyScope?: string,
  ): Promise<{ deployment: Deployment; created: boolean }> {
    if (idempotencyScope) {
      const existing = await this.claimScope(idempotencyScope, deployment.id);
      if (existing) return { deployment: existing, created: false };
    }
    const event: DeploymentEvent = { ...firstEvent, seq: 1 };
    const recordText = encodeDeployment(deployment);
    const eventText = encodeEvent(event);
    this.trimIndex();
    await this.writers.run(deployment.id, async () => {
      // One round trip: the three are sent together, in this order (on one Redis they are applied in
      // that order; on a cluster they go to different nodes, see the corners above).
      await Promise.all([
        this.client.zAdd(this.keys.deploymentIndex, { score: 0, value: deployment.id }),
        createScript.run(
          this.client,
          [this.keys.deployment(deployment.id), this.keys.deploymentEvents(deployment.id)],
          [recordText, eventText],
        ),
        this.publish(deployment.id, event.seq, recordText, eventText),
      ]);
      this.remember(deployment.id, recordText, 1);
    });
    return { deployment: Deployment.fromPartial(deployment), created: true };
  }

  async getDeployment(id: string): Promise<Deployment | undefined> {
    const text = await this.client.get(this.keys.deployment(id));
    return text === null ? undefined : decodeDeployment(text);
  }

  /**
   * Optimistic: read record and event count, run `update`, compare-and-set. On a conflict with
   * another replica `update` runs again on the newer record, so it must not have side effects.
   */
  appendEvent(
    id: string,
    update: DeploymentUpdate,
  ): Promise<{ deployment: Deployment; event: DeploymentEvent } | undefined> {
    return this.writers.run(id, () => this.appendOptimistically(id, update));
  }

  async listEvents(id: string, afterSeq: number): Promise<DeploymentEvent[]> {
    const from = Math.max(0, Math.floor(afterSeq));
    const texts = await this.client.lRange(this.keys.deploymentEvents(id), from, -1);
    return texts.map(decodeEvent);
  }

  /**
   * Walks the index newest first, filtering in JS. Examines at most MAX_LIST_SCAN ids per call:
   * with a very selective filter a page can then be short (even empty) while the token is not.
   */
  async listDeployments(filter: DeploymentFilter, pageSize: number, pageToken: string): Promise<DeploymentPage> {
    const after = decodePageToken(pageToken);
    if (!(pageSize > 0)) return { deployments: [], nextPageToken: "" };
    const batch = Math.min(Math.max(pageSize + 1, 20), 500);
    const matches: Deployment[] = [];
    let max = after === undefined ? "+" : `(${after}`;
    let scanned = 0;
    for (;;) {
      const ids = await this.client.zRange(this.keys.deploymentIndex, max, "-", {
        BY: "LEX",
        REV: true,
        LIMIT: { offset: 0, count: batch },
      });
      const texts = await Promise.all(ids.map((id) => this.client.get(this.keys.deployment(id))));
      const gone = ids.filter((_, i) => texts[i] === null);
      // Expired after the retention (or never written): drop them from the index as they are met.
      if (gone.length > 0) void this.client.zRem(this.keys.deploymentIndex, gone).catch(() => {});
      for (const text of texts) {
        if (text === null) continue;
        const deployment = decodeDeployment(text);
        if (matchesFilter(deployment, filter)) matches.push(deployment);
        if (matches.length > pageSize) break;
      }
      const last = ids.at(-1);
      if (matches.length > pageSize || ids.length < batch || !last) break;
      scanned += ids.length;
      if (scanned >= MAX_LIST_SCAN) {
        // Bounded work per call: return what matched so far and continue after the last id seen.
        return { deployments: matches, nextPageToken: encodePageToken(last) };
      }
      max = `(${last}`;
    }
    const page = matches.slice(0, pageSize);
    const lastOfPage = page.at(-1);
    return {
      deployments: page,
      nextPageToken: matches.length > pageSize && lastOfPage ? encodePageToken(lastOfPage.id) : "",
    };
  }

  followFeed(afterCursor: string | undefined, listener: (entry: FeedEntry) => void): Promise<Subscription> {
    return this.feed.follow(afterCursor, listener);
  }

  private remember(id: string, text: string, count: number): void {
    this.lastWritten.delete(id);
    this.lastWritten.set(id, { text, count });
    if (this.lastWritten.size > LAST_WRITTEN_MAX) {
      const oldest = this.lastWritten.keys().next().value;
      if (oldest !== undefined) this.lastWritten.delete(oldest);
    }
  }

  /**
   * Once an hour per process: drops index entries of deployments created so long ago that they have
   * certainly expired (ids start with the creation time, so that is one lexicographic range).
   */
  private trimIndex(): void {
    const now = Date.now();
    if (now - this.lastIndexTrim < INDEX_TRIM_INTERVAL_MS) return;
    this.lastIndexTrim = now;
    const cutoff = now - (this.retentionSeconds + MAX_LIFETIME_SECONDS) * 1000;
    if (cutoff <= 0) return;
    const bound = `(dep_${cutoff.toString(36).padStart(9, "0")}`;
    void this.client.zRemRangeByLex(this.keys.deploymentIndex, "-", bound).catch(() => {});
  }

  /**
   * Appends the change to the feed. The change is already stored: a failure here is logged, not
   * thrown, since a caller retrying would store the event twice.
   */
  private async publish(deploymentId: string, seq: number, recordText: string, eventText: string): Promise<void> {
    try {
      await this.feed.append(recordText, eventText);
    } catch (err) {
      this.log.warn(
        { deploymentId, seq, err: errorMessage(err) },
        "stored a deployment change but could not append it to the feed",
      );
    }
  }

  /**
   * Claims the scope for `id`. Returns the deployment created earlier under the scope, or
   * undefined when the caller now owns the scope and must create its deployment.
   */
  private async claimScope(scope: string, id: string): Promise<Deployment | undefined> {
    const key = this.keys.idempotency(scope);
    for (let attempt = 1; ; attempt++) {
      // Kept as long as the deployment it names can exist.
      const ttl = { expiration: { type: "EX" as const, value: this.retentionSeconds + MAX_LIFETIME_SECONDS } };
      if ((await this.client.set(key, id, { condition: "NX", ...ttl })) === "OK") return undefined;
      const owner = await this.client.get(key);
      if (owner === null) continue; // released meanwhile: claim again
      if (owner === id) return undefined;
      const existing = await this.getDeployment(owner);
      if (existing) return existing;
      if (attempt < IDEMPOTENCY_WAIT_ATTEMPTS) {
        await sleep(IDEMPOTENCY_WAIT_MS);
        continue;
      }
      // The claimant never wrote its deployment (it died in between): take the scope over.
      if ((await compareAndSet.run(this.client, [key], [owner, id])) === 1) return undefined;
    }
  }

  private async appendOptimistically(
    id: string,
    update: DeploymentUpdate,
  ): Promise<{ deployment: Deployment; event: DeploymentEvent } | undefined> {
    const recordKey = this.keys.deployment(id);
    const eventsKey = this.keys.deploymentEvents(id);
    for (let attempt = 1; attempt <= MAX_APPEND_ATTEMPTS; attempt++) {
      const known = attempt === 1 ? this.lastWritten.get(id) : undefined;
      this.lastWritten.delete(id);
      // Two plain commands (pipelined), not MULTI: node-redis applies no command timeout to MULTI,
      // so a stalled Redis would hold the caller forever. Consistency comes from the compare-and-set.
      const [text, count] = known
        ? [known.text, known.count]
        : await Promise.all([this.client.get(recordKey), this.client.lLen(eventsKey)]);
      if (text === null) return undefined;
      const next = update(decodeDeployment(text), count);
      if (!next) {
        if (known) this.remember(id, known.text, known.count); // nothing written: still the latest known
        return undefined;
      }
      const event: DeploymentEvent = { ...next.event, seq: count + 1 };
      const nextText = encodeDeployment(next.deployment);
      const eventText = encodeEvent(event);
      const written = await appendScript.run(
        this.client,
        [recordKey, eventsKey],
        [text, String(count), nextText, eventText, String(isFinished(next.deployment) ? this.retentionSeconds : 0)],
      );
      if (written === 1) {
        if (!isFinished(next.deployment)) this.remember(id, nextText, event.seq);
        // Not awaited: the feed entry is sent on the same connection before anything this process
        // sends later, so readers see changes in order; a failure is logged (see publish).
        void this.publish(id, event.seq, nextText, eventText);
        return { deployment: Deployment.fromPartial(next.deployment), event: DeploymentEvent.fromPartial(event) };
      }
      // What this process wrote last was not the latest: read it, no backoff.
      if (known) continue;
      // Another replica wrote in between: back off a little (jittered, growing) and retry.
      await sleep(Math.random() * Math.min(2 * attempt, 25));
    }
    throw new Error(`appendEvent(${id}) kept conflicting with concurrent writers`);
  }
}
