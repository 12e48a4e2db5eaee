// The bus between replicas: Redis Pub/Sub on one channel, JSON messages. Each Store instance
// has one subscriber connection (opened on the first subscribe) fanned out to its listeners;
// node-redis resubscribes by itself after a reconnect. Delivery is best effort by design.
import type { RedisClient, StoreLog } from "./redis-client.js";
import { duplicateClient, errorMessage } from "./redis-client.js";
import type { Bus, BusMessage, Subscription } from "./store.js";

export class RedisBus implements Bus {
  private readonly listeners = new Set<(message: BusMessage) => void>();
  private subscriber: RedisClient | undefined;
  private starting: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly client: RedisClient,
    private readonly channel: string,
    private readonly log: StoreLog,
  ) {}

  async publish(message: BusMessage): Promise<void> {
    await this.client.publish(this.channel, JSON.stringify(message));
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
    if (this.subscriber?.isOpen) this.subscriber.destroy();
    await this.starting?.catch(() => {});
  }

  private startSubscriber(): Promise<void> {
    if (!this.starting) {
      this.starting = (async () => {
        const subscriber = duplicateClient(this.client, this.log, "bus");
        this.subscriber = subscriber;
        try {
          await subscriber.connect();
          await subscriber.subscribe(this.channel, (raw) => this.dispatch(raw));
          if (this.closed) throw new Error("store is closed");
        } catch (err) {
          if (subscriber.isOpen) subscriber.destroy();
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

  private dispatch(raw: string): void {
    let message: BusMessage;
    try {
      message = JSON.parse(raw) as BusMessage;
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, "ignoring malformed bus message");
      return;
    }
    for (const listener of this.listeners) {
      try {
        listener(message);
      } catch (err) {
        this.log.warn({ err: errorMessage(err), type: message.type }, "bus listener threw");
      }
    }
  }
}
