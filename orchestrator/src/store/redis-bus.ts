// The bus between replicas: Redis Pub/Sub on one channel (sharded Pub/Sub, SPUBLISH/SSUBSCRIBE, on
// a Redis Cluster, so messages cross every node through the channel's shard), JSON messages. Each
// Store instance has one subscriber connection (opened on the first subscribe) fanned out to its
// listeners; node-redis resubscribes by itself after a reconnect, and listeners then get a local
// `resync` (messages sent meanwhile are lost: Pub/Sub is at most once). A message is also handed to
// this instance's own listeners at once, without waiting for Redis to send it back (its echo is
// recognised by the origin field and dropped). Delivery is best effort by design.
import type { RedisConnection, StoreLog } from "./redis-client.js";
import { errorMessage } from "./redis-client.js";
import type { Bus, BusMessage, Subscription } from "./store.js";

type WireMessage = BusMessage & { o?: string };

export class RedisBus implements Bus {
  private readonly listeners = new Set<(message: BusMessage) => void>();
  private subscriber: RedisConnection | undefined;
  private starting: Promise<void> | undefined;
  private closed = false;
  private readonly origin = Math.random().toString(36).slice(2, 10);

  constructor(
    private readonly connection: RedisConnection,
    private readonly channel: string,
    private readonly log: StoreLog,
  ) {}

  async publish(message: BusMessage): Promise<void> {
    const sent = this.connection.publish(this.channel, JSON.stringify({ ...message, o: this.origin }));
    this.dispatch(message);
    await sent;
  }

  async subscribe(listener: (message: BusMessage) => void): Promise<Subscription> {
    if (this.closed) throw new Error("store is closed");
    await this.startSubscriber();
    const wrapped = (message: BusMessage) => listener(message);
    this.listeners.add(wrapped);
    return { close: () => this.listeners.delete(wrapped) };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    this.subscriber?.destroy();
    await this.starting?.catch(() => {});
  }

  private startSubscriber(): Promise<void> {
    if (!this.starting) {
      this.starting = (async () => {
        const subscriber = this.connection.duplicate("bus");
        this.subscriber = subscriber;
        try {
          await subscriber.connect();
          await subscriber.subscribe(this.channel, (raw) => this.receive(raw));
          subscriber.onReconnected(() => this.dispatch({ type: "resync" }));
          if (this.closed) throw new Error("store is closed");
        } catch (err) {
          subscriber.destroy();
          if (this.subscriber === subscriber) this.subscriber = undefined;
          throw err;
        }
      })();
      this.starting.catch(() => {
        this.starting = undefined;
      });
    }
    return this.starting;
  }

  private receive(raw: string): void {
    let message: WireMessage;
    try {
      message = JSON.parse(raw) as WireMessage;
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, "ignoring malformed bus message");
      return;
    }
    if (message.o === this.origin) return; // delivered locally when it was published
    delete message.o;
    this.dispatch(message);
  }

  private dispatch(message: BusMessage): void {
    for (const listener of this.listeners) {
      try {
        listener(message);
      } catch (err) {
        this.log.warn({ err: errorMessage(err), type: message.type }, "bus listener threw");
      }
    }
  }
}
