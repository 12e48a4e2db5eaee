// `k8sdeploy webhook create|list|delete|deliveries`
import {
  Webhook,
  WebhookDelivery,
  WebhookFormat,
  webhookDeliveryStateToJSON,
  webhookFormatToJSON,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/admin.js";
import { DeploymentState } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import { type Command, InvalidArgumentError, Option } from "commander";
import { wantsJson } from "./globals.js";
import {
  deploymentStateName,
  formatTime,
  integerIn,
  parseDeploymentState,
  printFields,
  printJson,
  printTable,
  warn,
} from "./output.js";
import { withAdmin } from "./run.js";

const FORMATS: Record<string, WebhookFormat> = {
  generic: WebhookFormat.WEBHOOK_FORMAT_GENERIC,
  slack: WebhookFormat.WEBHOOK_FORMAT_SLACK,
  discord: WebhookFormat.WEBHOOK_FORMAT_DISCORD,
};

const FINAL = [
  DeploymentState.DEPLOYMENT_STATE_SUCCEEDED,
  DeploymentState.DEPLOYMENT_STATE_FAILED,
  DeploymentState.DEPLOYMENT_STATE_ROLLED_BACK,
  DeploymentState.DEPLOYMENT_STATE_TIMED_OUT,
  DeploymentState.DEPLOYMENT_STATE_CANCELLED,
  DeploymentState.DEPLOYMENT_STATE_SUPERSEDED,
  DeploymentState.DEPLOYMENT_STATE_EXPIRED,
].map(deploymentStateName);

const lower = (name: string, prefix: string) => name.replace(prefix, "").toLowerCase();
const formatName = (f: WebhookFormat) => lower(webhookFormatToJSON(f), "WEBHOOK_FORMAT_");

/** `--on failed,rolled_back` (repeatable too) → DeploymentStates. */
function parseStates(value: string, previous: DeploymentState[] = []): DeploymentState[] {
  let out = previous;
  for (const part of value.split(",").filter((p) => p.trim() !== "")) out = parseDeploymentState(part, out);
  return out;
}

export function registerWebhookCommands(program: Command): void {
  const webhook = program
    .command("webhook")
    .description("notify a URL (generic JSON signed with HMAC, Slack or Discord) when an agent's deployments end");

  webhook
    .command("create")
    .description("add a webhook for one agent's deployments; prints the signing secret once (generic format)")
    .requiredOption("--agent <id>", "agent whose deployments it reports")
    .requiredOption("--url <url>", "https://… (or http://… on a private network); Slack/Discord: the webhook URL")
    .addOption(new Option("--format <format>", "request format").choices(Object.keys(FORMATS)).default("generic"))
    .addOption(
      new Option("--on <states>", `final states to report, comma-separated or repeated: ${FINAL.join(", ")}`)
        .argParser(parseStates)
        .default([], "every final state"),
    )
    .option("--name <name>", "display name, 0..63 characters")
    .option("--json", "print {id, secret} as JSON")
    .action(
      (opts: { agent: string; url: string; format: string; on: DeploymentState[]; name?: string; json?: boolean }) =>
        withAdmin(async (admin) => {
          const format = FORMATS[opts.format];
          if (format === undefined)
            throw new InvalidArgumentError(`--format: one of ${Object.keys(FORMATS).join(", ")}`);
          const res = await admin.createWebhook({
            agentId: opts.agent,
            url: opts.url,
            format,
            states: opts.on,
            name: opts.name ?? "",
          });
          const id = res.webhook?.id ?? "";
          if (wantsJson(opts)) {
            printJson({ id, secret: res.secret });
            return;
          }
          printFields([
            ["ID", id],
            ["AGENT", res.webhook?.agentId ?? opts.agent],
            ["FORMAT", opts.format],
            ["URL", res.webhook?.urlPreview ?? ""],
            ["ON", opts.on.length ? opts.on.map(deploymentStateName).join(",") : "every final state"],
            ...(res.secret ? ([["SECRET", res.secret]] as [string, string][]) : []),
          ]);
          if (res.secret) {
            warn(
              "the signing secret is shown only this once: give it to the receiver (it verifies the webhook-signature header)",
            );
          }
        }),
    );

  webhook
    .command("list")
    .description("list webhooks (never their secrets or full URLs)")
    .option("--agent <id>", "only this agent's")
    .option("--json", "print a JSON array")
    .action((opts: { agent?: string; json?: boolean }) =>
      withAdmin(async (admin) => {
        const res = await admin.listWebhooks({ agentId: opts.agent ?? "" });
        if (wantsJson(opts)) {
          printJson(res.webhooks.map((w) => Webhook.toJSON(w)));
          return;
        }
        printTable(
          ["ID", "NAME", "AGENT", "FORMAT", "URL", "ON", "CREATED"],
          res.webhooks.map((w) => [
            w.id,
            w.name,
            w.agentId,
            formatName(w.format),
            w.urlPreview,
            w.states.length ? w.states.map(deploymentStateName).join(",") : "*",
            formatTime(w.createdAt),
          ]),
        );
      }),
    );

  webhook
    .command("delete")
    .description("delete a webhook; its pending deliveries are given up")
    .argument("<id>", "webhook id (whk_…)")
    .option("--json", "print the webhook as JSON")
    .action((id: string, opts: { json?: boolean }) =>
      withAdmin(async (admin) => {
        const res = await admin.deleteWebhook({ id });
        if (wantsJson(opts)) printJson(res.webhook ? Webhook.toJSON(res.webhook) : { id });
        else process.stdout.write(`deleted webhook ${res.webhook?.id ?? id}\n`);
      }),
    );

  webhook
    .command("deliveries")
    .description("the delivery log, newest first: state, attempts, last HTTP status or error")
    .option("--webhook <id>", "only this webhook's")
    .option("--deployment <id>", "only this deployment's")
    .option("--limit <n>", "at most this many, 1..500", integerIn(1, 500), 50)
    .option("--json", "print a JSON array")
    .action((opts: { webhook?: string; deployment?: string; limit: number; json?: boolean }) =>
      withAdmin(async (admin) => {
        const res = await admin.listWebhookDeliveries({
          webhookId: opts.webhook ?? "",
          deploymentId: opts.deployment ?? "",
          limit: opts.limit,
        });
        if (wantsJson(opts)) {
          printJson(res.deliveries.map((d) => WebhookDelivery.toJSON(d)));
          return;
        }
        printTable(
          ["ID", "WEBHOOK", "DEPLOYMENT", "EVENT", "STATE", "ATTEMPTS", "LAST", "NEXT", "ERROR"],
          res.deliveries.map((d) => [
            d.id,
            d.webhookId,
            d.deploymentId,
            deploymentStateName(d.deploymentState),
            lower(webhookDeliveryStateToJSON(d.state), "WEBHOOK_DELIVERY_STATE_"),
            String(d.attempts),
            d.lastHttpStatus ? `${formatTime(d.lastAttemptAt)} (${d.lastHttpStatus})` : formatTime(d.lastAttemptAt),
            formatTime(d.nextAttemptAt),
            d.lastError || "-",
          ]),
        );
      }),
    );
}
