// Webhook deliveries: queued when a deployment ends (Outcomes tells us, on the replica that
// stored the final state), then sent by whichever replica claims them first. The queue lives in
// the store (durable with Redis: a restart loses nothing queued), each delivery is claimed
// atomically for a lease, so replicas never send one at the same time; a replica that dies
// mid-attempt leaves it to be claimed again when the lease ends (receivers deduplicate by the
// `webhook-id` header, which stays the same on every attempt).
//
// Retries: network errors, timeouts, 408, 425, 429 and 5xx are retried with exponential backoff
// (K8SDEPLOY_WEBHOOK_BACKOFF_SECONDS × 3^n, at most an hour, ±20 % jitter; a longer Retry-After is
// honoured up to an hour) until K8SDEPLOY_WEBHOOK_MAX_ATTEMPTS; redirects, other 4xx answers and
// refused addresses end the delivery at once (retrying cannot fix them).
import type { Deployment } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import type { Logger } from "pino";
import { stateName } from "../deploy/lifecycle.js";
import type { OutcomeListener } from "../deploy/outcome.js";
import { newDeliveryId } from "../ids.js";
import type { Metrics } from "../metrics.js";
import type { ClaimedDelivery, DeliveryRecord, Store, WebhookRecord } from "../store/store.js";
import { renderBody } from "./formats.js";
import { PostError, postWebhook } from "./http-post.js";
import type { Sealer } from "./sealed-secret.js";
import { signatureHeaders } from "./signature.js";
import { parseWebhookUrl } from "./webhook-url.js";

export interface WebhookOptions {
  maxAttempts: number;
  backoffSeconds: number;
  timeoutSeconds: number;
  allowLoopback: boolean;
  githubServerUrl: string;
  /** How often each replica looks for due deliveries (default 2000 ms). */
  pollMs?: number;
}

export interface DispatcherDeps {
  store: Store;
  log: Logger;
  metrics: Metrics;
  sealer: Sealer;
  options: WebhookOptions;
  userAgent: string;
}

const BATCH = 10;
const MAX_DELAY_SECONDS = 3600;
/** Longer than one attempt can take (timeout ≤ 60 s) plus slack. */
const LEASE_MS = 120_000;

const RETRYABLE_STATUS = new Set([408, 425, 429]);

/** Delay before attempt `attempts + 1` (attempts already made ≥ 1). */
export function backoffSeconds(base: number, attempts: number, random = Math.random): number {
  const raw = Math.min(base * 3 ** Math.max(0, attempts - 1), MAX_DELAY_SECONDS);
  return Math.round(raw * (0.8 + 0.4 * random()) * 1000) / 1000;
}

/** Seconds from a Retry-After header (seconds or an HTTP date), at most an hour. */
export function retryAfterSeconds(header: string | undefined, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const seconds = /^\d+$/.test(header.trim()) ? Number(header.trim()) : (Date.parse(header) - now) / 1000;
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, MAX_DELAY_SECONDS) : undefined;
}

/** Error text from a receiver's answer, on one line and bounded. */
function answerText(status: number, snippet: string): string {
  const text = snippet.replace(/\s+/g, " ").trim().slice(0, 200);
  return `HTTP ${status}${text ? `: ${text}` : ""}`;
}

export class WebhookDispatcher implements OutcomeListener {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(private readonly deps: DispatcherDeps) {}

  start(): void {
    this.timer = setInterval(() => this.kick(), this.deps.options.pollMs ?? 2000);
    this.timer.unref();
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
  }

  /** Looks for due deliveries now (folded into the pass that runs, if any). */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.pass();
      } while (this.again && !this.stopped);
    })()
      .catch((err: unknown) => this.deps.log.warn({ err }, "sending webhook deliveries failed; will retry"))
      .finally(() => {
        this.running = undefined;
      });
  }

  deploymentFinished(deployment: Deployment): void {
    this.enqueue(deployment).then(
      (queued) => {
        if (queued > 0) this.kick();
      },
      (err: unknown) =>
        this.deps.log.warn(
          { err, deploymentId: deployment.id },
          "queueing webhook deliveries failed: this deployment's notifications are lost",
        ),
    );
  }

  /** Queues one delivery per webhook of the agent that wants this final state. Returns how many. */
  async enqueue(deployment: Deployment): Promise<number> {
    const { store } = this.deps;
    const hooks = (await store.webhooks.listWebhooks(deployment.agentId)).filter(
      (w) => w.states.length === 0 || w.states.includes(deployment.state),
    );
    if (hooks.length === 0) return 0;
    const agent = await store.agents.getAgent(deployment.agentId);
    const now = new Date();
    const context = {
      agent: { id: deployment.agentId, name: agent?.name ?? deployment.agentId },
      githubServerUrl: this.deps.options.githubServerUrl,
      now,
    };
    const items = hooks.map((hook) => ({
      delivery: {
        id: newDeliveryId(),
        webhookId: hook.id,
        agentId: deployment.agentId,
        deploymentId: deployment.id,
        deploymentState: deployment.state,
        format: hook.format,
        state: "pending",
        attempts: 0,
        createdAt: now,
        nextAttemptAt: now,
        lastHttpStatus: 0,
        lastError: "",
      } satisfies DeliveryRecord,
      body: renderBody(hook.format, deployment, context),
    }));
    await store.webhooks.enqueueDeliveries(items);
    this.deps.log.debug(
      { deploymentId: deployment.id, deliveries: items.map((i) => i.delivery.id) },
      "webhook deliveries queued",
    );
    return items.length;
  }

  private async pass(): Promise<void> {
    for (;;) {
      if (this.stopped) return;
      const claimed = await this.deps.store.webhooks.claimDue(new Date(), BATCH, LEASE_MS);
      await Promise.all(claimed.map((c) => this.attempt(c)));
      if (claimed.length < BATCH) return;
    }
  }

  private async attempt(claimed: ClaimedDelivery): Promise<void> {
    const { store, log, metrics } = this.deps;
    const delivery = claimed.delivery;
    const hook = await store.webhooks.getWebhook(delivery.webhookId);
    const now = new Date();
    const attempts = delivery.attempts + 1;
    let next: DeliveryRecord;
    if (!hook) {
      next = { ...delivery, state: "failed", nextAttemptAt: undefined, lastError: "the webhook was deleted" };
    } else {
      const result = await this.send(hook, delivery, claimed.body);
      metrics.webhookAttempts.inc({ format: delivery.format, result: result.kind });
      const base = {
        ...delivery,
        attempts,
        lastAttemptAt: now,
        lastHttpStatus: result.status,
        lastError: result.error,
      };
      if (result.kind === "delivered") {
        next = { ...base, state: "delivered", deliveredAt: new Date(), nextAttemptAt: undefined, lastError: "" };
      } else if (result.retryable && attempts < this.deps.options.maxAttempts) {
        const delay = Math.max(
          backoffSeconds(this.deps.options.backoffSeconds, attempts),
          result.retryAfterSeconds ?? 0,
        );
        next = { ...base, state: "pending", nextAttemptAt: new Date(Date.now() + delay * 1000) };
      } else {
        const why = result.retryable ? `gave up after ${attempts} attempts` : "not retried";
        next = { ...base, state: "failed", nextAttemptAt: undefined, lastError: `${result.error} (${why})` };
      }
    }
    if (!(await store.webhooks.completeDelivery(claimed.claim, next))) {
      log.warn(
        { deliveryId: delivery.id },
        "a webhook delivery's lease ran out during the attempt; another replica took it",
      );
      return;
    }
    const fields = {
      deliveryId: delivery.id,
      webhookId: delivery.webhookId,
      deploymentId: delivery.deploymentId,
      deploymentState: stateName(delivery.deploymentState),
      format: delivery.format,
      attempts: next.attempts,
      status: next.lastHttpStatus || undefined,
      url: hook?.urlPreview,
    };
    if (next.state === "delivered") {
      metrics.webhookDeliveries.inc({ format: delivery.format, outcome: "delivered" });
      log.info(fields, "webhook delivered");
    } else if (next.state === "failed") {
      metrics.webhookDeliveries.inc({ format: delivery.format, outcome: "failed" });
      log.warn({ ...fields, error: next.lastError }, "webhook delivery failed for good");
    } else {
      log.info(
        { ...fields, error: next.lastError, nextAttemptAt: next.nextAttemptAt },
        "webhook attempt failed; will retry",
      );
    }
  }

  private async send(
    hook: WebhookRecord,
    delivery: DeliveryRecord,
    body: string,
  ): Promise<{
    kind: "delivered" | "http_error" | "timeout" | "network_error" | "refused";
    status: number;
    error: string;
    retryable: boolean;
    retryAfterSeconds?: number | undefined;
  }> {
    const { sealer, options } = this.deps;
    let url: URL;
    let secret = "";
    try {
      url = parseWebhookUrl(sealer.open(hook.sealedUrl, `${hook.id}:url`), options.allowLoopback);
      if (hook.sealedSecret) secret = sealer.open(hook.sealedSecret, `${hook.id}:secret`);
    } catch (err) {
      return {
        kind: "refused",
        status: 0,
        error: `cannot use the webhook: ${(err as Error).message}`,
        retryable: false,
      };
    }
    const headers: Record<string, string> = { "user-agent": this.deps.userAgent };
    if (secret) Object.assign(headers, signatureHeaders(secret, delivery.id, Math.floor(Date.now() / 1000), body));
    try {
      const answer = await postWebhook(url, body, headers, {
        timeoutMs: options.timeoutSeconds * 1000,
        allowLoopback: options.allowLoopback,
      });
      if (answer.status >= 200 && answer.status < 300) {
        return { kind: "delivered", status: answer.status, error: "", retryable: false };
      }
      if (answer.status >= 300 && answer.status < 400) {
        return {
          kind: "http_error",
          status: answer.status,
          error: `HTTP ${answer.status}: redirects are not followed; use the final URL`,
          retryable: false,
        };
      }
      return {
        kind: "http_error",
        status: answer.status,
        error: answerText(answer.status, answer.snippet),
        retryable: answer.status >= 500 || RETRYABLE_STATUS.has(answer.status),
        retryAfterSeconds: retryAfterSeconds(answer.retryAfter),
      };
    } catch (err) {
      if (err instanceof PostError) {
        return { kind: err.kind, status: 0, error: err.message, retryable: err.kind !== "refused" };
      }
      return { kind: "network_error", status: 0, error: (err as Error).message, retryable: true };
    }
  }
}
