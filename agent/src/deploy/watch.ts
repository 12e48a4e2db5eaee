// A watch that keeps itself established until stopped: it resumes from the last resource version
// it saw (bookmarks included) when the server ends the stream, starts over with a fresh state
// when that version has expired (410 Gone), backs off on errors, and gives up on errors that
// retrying cannot fix (401, 403, 404).
import { type KubeConfig, Watch } from "@kubernetes/client-node";
import { apiErrorInfo } from "../kube.js";

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED";

interface K8sObject {
  metadata?: { resourceVersion?: string };
}

export interface WatchLoopOptions<T> {
  kc: KubeConfig;
  /** Collection path, e.g. `/api/v1/namespaces/default/pods`. */
  path: string;
  /** labelSelector / fieldSelector. */
  query?: Record<string, string>;
  onEvent(type: WatchEventType, obj: T): void;
  /** A fresh watch (no resource version) begins: forget what was known; ADDED events rebuild it. */
  onReset(): void;
  /** The loop stopped for good: the API refused the watch. */
  onFatal(err: unknown): void;
  /** Server-side timeout of each watch request (the loop re-establishes it). Default 240. */
  watchTimeoutSeconds?: number;
  /** Backoff after errors, ms. Default 500 → 5000. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

const FATAL = new Set([401, 403, 404]);

export class WatchLoop<T extends K8sObject> {
  private stopped = false;
  private controller: AbortController | undefined;
  private resourceVersion: string | undefined;
  private wake: (() => void) | undefined;
  /** Number of watch requests made (1 + re-establishments). */
  requests = 0;

  constructor(private readonly opts: WatchLoopOptions<T>) {}

  start(): void {
    void this.run();
  }

  stop(): void {
    this.stopped = true;
    this.controller?.abort();
    this.wake?.();
  }

  private async run(): Promise<void> {
    const minBackoff = this.opts.minBackoffMs ?? 500;
    const maxBackoff = this.opts.maxBackoffMs ?? 5000;
    let backoff = minBackoff;
    while (!this.stopped) {
      if (!this.resourceVersion) this.opts.onReset();
      let expired = false;
      let streamError: unknown;
      const startedAt = Date.now();
      this.requests++;
      const ended = new Promise<unknown>((resolve) => {
        const query: Record<string, string | number | boolean | undefined> = {
          ...this.opts.query,
          allowWatchBookmarks: true,
          timeoutSeconds: this.opts.watchTimeoutSeconds ?? 240,
          resourceVersion: this.resourceVersion,
        };
        new Watch(this.opts.kc)
          .watch(
            this.opts.path,
            query,
            (type, obj: unknown) => {
              if (this.stopped) return;
              if (type === "ERROR") {
                // A Status object; 410 (Expired/Gone): the resource version is too old.
                const status = obj as { code?: number; message?: string };
                if (status?.code === 410) expired = true;
                else
                  streamError = Object.assign(new Error(status?.message ?? "watch error"), {
                    statusCode: status?.code,
                  });
                return;
              }
              const rv = (obj as K8sObject)?.metadata?.resourceVersion;
              if (rv) this.resourceVersion = rv;
              if (type === "ADDED" || type === "MODIFIED" || type === "DELETED") this.opts.onEvent(type, obj as T);
            },
            (err) => resolve(err ?? streamError),
          )
          .then((controller) => {
            this.controller = controller;
            if (this.stopped) controller.abort();
          }, resolve);
      });
      const err = await ended;
      this.controller = undefined;
      if (this.stopped) return;
      const code = err ? apiErrorInfo(err).code : undefined;
      if (expired || code === 410) {
        this.resourceVersion = undefined;
        continue;
      }
      if (err && code !== undefined && FATAL.has(code)) {
        this.stopped = true;
        this.opts.onFatal(err);
        return;
      }
      if (err) {
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, maxBackoff);
        continue;
      }
      backoff = minBackoff;
      // The server closed the stream normally (its timeout): re-establish, but never spin.
      if (Date.now() - startedAt < 1000) await this.sleep(1000);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }
}
