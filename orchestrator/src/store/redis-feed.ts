// The deployment feed: one global stream, trimmed to about FEED_MAX_LENGTH entries; a cursor
// is a stream entry id. Each Store instance has ONE blocking reader connection (XREAD BLOCK in
// a loop, finite timeout) whose entries are fanned out in memory to every follower. A follower
// that starts from a cursor is registered first (live entries are buffered), then replays the
// stream after its cursor with XRANGE, then drains its buffer: entries are delivered in stream
// order, each once (a follower only takes entries after the last one it got).
import { Deployment, DeploymentEvent } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import type { RedisCommands, RedisConnection, StoreLog } from "./redis-client.js";
import { errorMessage, sleep } from "./redis-client.js";
import { decodeDeployment, decodeEvent } from "./redis-codec.js";
import type { FeedEntry, Subscription } from "./store.js";

export const FEED_MAX_LENGTH = 10_000;
const READ_BLOCK_MS = 1000;
const READ_COUNT = 500;
const REPLAY_PAGE = 500;
const STREAM_ID = /^\d+-\d+$/;

interface StreamMessage {
  id: string;
  message: Record<string, string>;
}

interface Follower {
  /** Cursor of the last entry delivered (or the starting cursor). */
  after: string;
  /** Live entries received while the follower replays; undefined once it is live. */
  buffer: FeedEntry[] | undefined;
  listener: (entry: FeedEntry) => void;
  closed: boolean;
}

/** Orders stream ids ("ms-seq") numerically. */
export function compareStreamIds(a: string, b: string): number {
  const [am = "0", as = "0"] = a.split("-");
  const [bm = "0", bs = "0"] = b.split("-");
  const ms = BigInt(am) - BigInt(bm);
  if (ms !== 0n) return ms < 0n ? -1 : 1;
  const seq = BigInt(as) - BigInt(bs);
  return seq === 0n ? 0 : seq < 0n ? -1 : 1;
}

export class InvalidFeedCursorError extends Error {
  constructor() {
    super("feed cursor is not one returned by the feed");
  }
}

export class RedisFeed {
  private readonly followers = new Set<Follower>();
  private reader: RedisConnection | undefined;
  private starting: Promise<void> | undefined;
  private loop: Promise<void> | undefined;
  private lastId = "0-0";
  private lastWarnAt = 0;
  private closed = false;

  private readonly client: RedisCommands;

  constructor(
    private readonly connection: RedisConnection,
    private readonly key: string,
    private readonly log: StoreLog,
  ) {
    this.client = connection.commands;
  }

  /** Appends an entry (the deployment and event as the store encodes them); returns its cursor. */
  async append(recordText: string, eventText: string): Promise<string> {
    return await this.client.xAdd(
      this.key,
      "*",
      { d: recordText, e: eventText },
      { TRIM: { strategy: "MAXLEN", strategyModifier: "~", threshold: FEED_MAX_LENGTH } },
    );
  }

  async follow(afterCursor: string | undefined, listener: (entry: FeedEntry) => void): Promise<Subscription> {
    if (this.closed) throw new Error("store is closed");
    if (afterCursor !== undefined && !STREAM_ID.test(afterCursor)) throw new InvalidFeedCursorError();
    const follower: Follower = { after: afterCursor ?? "0-0", buffer: [], listener, closed: false };
    const subscription = {
      close: () => {
        follower.closed = true;
        this.followers.delete(follower);
      },
    };
    this.followers.add(follower);
    try {
      await this.startReader();
      follower.after = afterCursor ?? (await this.tailId());
      let start = follower.after;
      for (;;) {
        const page = (await this.client.xRange(this.key, `(${start}`, "+", { COUNT: REPLAY_PAGE })) as StreamMessage[];
        for (const message of page) this.deliver(follower, message);
        const last = page.at(-1);
        if (page.length < REPLAY_PAGE || !last) break;
        start = last.id;
      }
      const buffered = follower.buffer ?? [];
      follower.buffer = undefined;
      for (const entry of buffered) this.deliverEntry(follower, entry);
      return subscription;
    } catch (err) {
      subscription.close();
      throw err;
    }
  }

  /** Stops the reader. Does not wait for Redis: the blocking connection is destroyed. */
  async close(): Promise<void> {
    this.closed = true;
    for (const follower of this.followers) follower.closed = true;
    this.followers.clear();
    this.reader?.destroy();
    await this.loop;
  }

  private async tailId(): Promise<string> {
    const last = (await this.client.xRevRange(this.key, "+", "-", { COUNT: 1 })) as StreamMessage[];
    return last[0]?.id ?? "0-0";
  }

  private startReader(): Promise<void> {
    if (!this.starting) {
      this.starting = (async () => {
        // Its own connection (its own node connections, on a cluster): a blocking XREAD holds the
        // connection it is sent on.
        const reader = this.connection.duplicate("feed");
        this.reader = reader;
        try {
          await reader.connect();
          this.lastId = await this.tailId();
          if (this.closed) throw new Error("store is closed");
        } catch (err) {
          reader.destroy();
          if (this.reader === reader) this.reader = undefined;
          throw err;
        }
        this.loop = this.readLoop(reader);
      })();
      this.starting.catch(() => {
        this.starting = undefined;
      });
    }
    return this.starting;
  }

  private async readLoop(reader: RedisConnection): Promise<void> {
    while (!this.closed) {
      try {
        const reply = (await reader.commands.xRead(
          { key: this.key, id: this.lastId },
          { BLOCK: READ_BLOCK_MS, COUNT: READ_COUNT },
        )) as { name: string; messages: StreamMessage[] }[] | null;
        for (const message of reply?.[0]?.messages ?? []) {
          this.lastId = message.id;
          const entry = this.decode(message);
          if (!entry) continue;
          for (const follower of this.followers) {
            if (follower.buffer) follower.buffer.push(entry);
            else this.deliverEntry(follower, entry);
          }
        }
      } catch (err) {
        if (this.closed) return;
        // While Redis is down this fails every time at once (no offline queue): log it once in a while.
        const now = Date.now();
        if (now - this.lastWarnAt > 10_000) {
          this.lastWarnAt = now;
          this.log.warn({ err: errorMessage(err) }, "feed read failed; retrying");
        }
        await sleep(250);
      }
    }
  }

  private deliver(follower: Follower, message: StreamMessage): void {
    const entry = this.decode(message);
    if (entry) this.deliverEntry(follower, entry);
  }

  private deliverEntry(follower: Follower, entry: FeedEntry): void {
    if (follower.closed || compareStreamIds(entry.cursor, follower.after) <= 0) return;
    follower.after = entry.cursor;
    try {
      follower.listener({
        cursor: entry.cursor,
        deployment: Deployment.fromPartial(entry.deployment),
        event: DeploymentEvent.fromPartial(entry.event),
      });
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, "feed listener threw");
    }
  }

  private decode(message: StreamMessage): FeedEntry | undefined {
    const { d, e } = message.message;
    try {
      if (d === undefined || e === undefined) throw new Error("missing fields");
      return { cursor: message.id, deployment: decodeDeployment(d), event: decodeEvent(e) };
    } catch (err) {
      this.log.warn({ cursor: message.id, err: errorMessage(err) }, "skipping malformed feed entry");
      return undefined;
    }
  }
}
