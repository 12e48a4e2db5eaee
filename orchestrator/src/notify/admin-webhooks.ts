// Admin RPCs for webhooks: create (the signing secret shown once), list, delete, and the
// delivery log.
import {
  type CreateWebhookRequest,
  type CreateWebhookResponse,
  type DeleteWebhookRequest,
  type DeleteWebhookResponse,
  type ListWebhookDeliveriesRequest,
  type ListWebhookDeliveriesResponse,
  type ListWebhooksRequest,
  type ListWebhooksResponse,
  type Webhook,
  type WebhookDelivery,
  WebhookDeliveryState,
  WebhookFormat,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/admin.js";
import type { AdminAgents } from "../agents/admin-agents.js";
import { FINAL_STATES, stateName } from "../deploy/lifecycle.js";
import { newWebhookId } from "../ids.js";
import { failedPrecondition, invalidArgument, notFound } from "../rpc/rpc-error.js";
import type { DeliveryRecord, Store, WebhookFormatName, WebhookRecord } from "../store/store.js";
import type { Sealer } from "./sealed-secret.js";
import { newSigningSecret } from "./signature.js";
import { parseWebhookUrl, urlPreview } from "./webhook-url.js";

const MAX_WEBHOOKS_PER_AGENT = 20;
const DEFAULT_DELIVERIES = 50;
const MAX_DELIVERIES = 500;

const FORMAT_NAMES: Partial<Record<WebhookFormat, WebhookFormatName>> = {
  [WebhookFormat.WEBHOOK_FORMAT_UNSPECIFIED]: "generic",
  [WebhookFormat.WEBHOOK_FORMAT_GENERIC]: "generic",
  [WebhookFormat.WEBHOOK_FORMAT_SLACK]: "slack",
  [WebhookFormat.WEBHOOK_FORMAT_DISCORD]: "discord",
};
const FORMATS: Record<WebhookFormatName, WebhookFormat> = {
  generic: WebhookFormat.WEBHOOK_FORMAT_GENERIC,
  slack: WebhookFormat.WEBHOOK_FORMAT_SLACK,
  discord: WebhookFormat.WEBHOOK_FORMAT_DISCORD,
};
const DELIVERY_STATES: Record<DeliveryRecord["state"], WebhookDeliveryState> = {
  pending: WebhookDeliveryState.WEBHOOK_DELIVERY_STATE_PENDING,
  delivered: WebhookDeliveryState.WEBHOOK_DELIVERY_STATE_DELIVERED,
  failed: WebhookDeliveryState.WEBHOOK_DELIVERY_STATE_FAILED,
};

export function webhookView(w: WebhookRecord): Webhook {
  return {
    id: w.id,
    agentId: w.agentId,
    name: w.name,
    format: FORMATS[w.format],
    urlPreview: w.urlPreview,
    states: w.states,
    createdAt: w.createdAt,
    secretPrefix: w.secretPrefix,
  };
}

export function deliveryView(d: DeliveryRecord): WebhookDelivery {
  return {
    id: d.id,
    webhookId: d.webhookId,
    agentId: d.agentId,
    deploymentId: d.deploymentId,
    deploymentState: d.deploymentState,
    state: DELIVERY_STATES[d.state],
    attempts: d.attempts,
    createdAt: d.createdAt,
    lastAttemptAt: d.lastAttemptAt,
    nextAttemptAt: d.state === "pending" ? d.nextAttemptAt : undefined,
    deliveredAt: d.deliveredAt,
    lastHttpStatus: d.lastHttpStatus,
    lastError: d.lastError,
    format: FORMATS[d.format],
  };
}

export class AdminWebhooks {
  constructor(
    private readonly store: Store,
    private readonly agents: AdminAgents,
    private readonly sealer: Sealer,
    private readonly allowLoopback: boolean,
  ) {}

  createWebhook = async (request: CreateWebhookRequest): Promise<CreateWebhookResponse> => {
    const problems: string[] = [];
    let url: URL | undefined;
    try {
      url = parseWebhookUrl(request.url, this.allowLoopback);
    } catch (err) {
      problems.push((err as Error).message);
    }
    const format = FORMAT_NAMES[request.format];
    if (!format) problems.push(`format: ${request.format} is not a WebhookFormat (GENERIC, SLACK or DISCORD)`);
    const name = request.name.trim();
    if (name.length > 63) problems.push("name: at most 63 characters");
    const states = [...new Set(request.states)];
    for (const s of states) {
      if (!FINAL_STATES.has(s)) {
        problems.push(
          `states: ${stateName(s) || s} is not a final state (use ${[...FINAL_STATES].map(stateName).join(", ")})`,
        );
      }
    }
    if (problems.length > 0 || !url || !format) throw invalidArgument(`invalid webhook: ${problems.join("; ")}`);
    const agent = await this.agents.active(request.agentId);
    const existing = await this.store.webhooks.listWebhooks(agent.id);
    if (existing.length >= MAX_WEBHOOKS_PER_AGENT) {
      throw failedPrecondition(
        `agent ${agent.id} has ${existing.length} webhooks already (at most ${MAX_WEBHOOKS_PER_AGENT})`,
      );
    }
    const id = newWebhookId();
    const secret = format === "generic" ? newSigningSecret() : "";
    const record: WebhookRecord = {
      id,
      agentId: agent.id,
      name: name || `${format} webhook for ${agent.name}`,
      format,
      sealedUrl: this.sealer.seal(url.toString(), `${id}:url`),
      urlPreview: urlPreview(url),
      sealedSecret: secret ? this.sealer.seal(secret, `${id}:secret`) : "",
      secretPrefix: secret ? secret.slice(0, 12) : "",
      states: states.sort((a, b) => a - b),
      createdAt: new Date(),
    };
    await this.store.webhooks.createWebhook(record);
    return { webhook: webhookView(record), secret };
  };

  listWebhooks = async (request: ListWebhooksRequest): Promise<ListWebhooksResponse> => {
    return { webhooks: (await this.store.webhooks.listWebhooks(request.agentId || undefined)).map(webhookView) };
  };

  deleteWebhook = async (request: DeleteWebhookRequest): Promise<DeleteWebhookResponse> => {
    if (request.id === "") throw invalidArgument("id: required (a webhook id, whk_…)");
    const webhook = await this.store.webhooks.getWebhook(request.id);
    if (!webhook || !(await this.store.webhooks.deleteWebhook(request.id))) {
      throw notFound(`webhook ${request.id} not found`);
    }
    return { webhook: webhookView(webhook) };
  };

  listWebhookDeliveries = async (request: ListWebhookDeliveriesRequest): Promise<ListWebhookDeliveriesResponse> => {
    if (request.limit > MAX_DELIVERIES) throw invalidArgument(`limit: at most ${MAX_DELIVERIES}`);
    const deliveries = await this.store.webhooks.listDeliveries(
      { webhookId: request.webhookId || undefined, deploymentId: request.deploymentId || undefined },
      request.limit || DEFAULT_DELIVERIES,
    );
    return { deliveries: deliveries.map(deliveryView) };
  };
}
