// The request bodies of the three webhook formats, rendered once when a delivery is queued.
//  - generic: `{type: "deployment.finished", timestamp, data: {deployment, agent}}` with the
//    deployment in the contract's JSON form (the same as the API returns), signed.
//  - slack: an incoming-webhook message: `text` (notifications, fallback) and `blocks`.
//  - discord: an execute-webhook message with one embed, mentions disabled.
// Agent-reported text (messages) is escaped for each format so it cannot ping people or forge
// links; links point only to the configured GitHub server.
import { Deployment, DeploymentState } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import { stateName } from "../deploy/lifecycle.js";
import { failureReasonName, kindName } from "../deploy/outcome.js";
import type { WebhookFormatName } from "../store/store.js";

export const EVENT_TYPE = "deployment.finished";

export interface RenderContext {
  agent: { id: string; name: string };
  /** Origin of the GitHub server (K8SDEPLOY_GITHUB_SERVER_URL): run links elsewhere are not linked. */
  githubServerUrl: string;
  now: Date;
}

const ICON: Partial<Record<DeploymentState, string>> = {
  [DeploymentState.DEPLOYMENT_STATE_SUCCEEDED]: "✅",
  [DeploymentState.DEPLOYMENT_STATE_FAILED]: "❌",
  [DeploymentState.DEPLOYMENT_STATE_ROLLED_BACK]: "↩️",
  [DeploymentState.DEPLOYMENT_STATE_TIMED_OUT]: "⏱️",
  [DeploymentState.DEPLOYMENT_STATE_CANCELLED]: "⊘",
  [DeploymentState.DEPLOYMENT_STATE_SUPERSEDED]: "⏭️",
  [DeploymentState.DEPLOYMENT_STATE_EXPIRED]: "⌛",
};

/** Discord embed colours (decimal RGB). */
const COLOUR_OK = 0x2e9e5b;
const COLOUR_BAD = 0xd64545;
const COLOUR_NEUTRAL = 0x8a8f98;

function colour(state: DeploymentState): number {
  if (state === DeploymentState.DEPLOYMENT_STATE_SUCCEEDED) return COLOUR_OK;
  if (
    state === DeploymentState.DEPLOYMENT_STATE_FAILED ||
    state === DeploymentState.DEPLOYMENT_STATE_ROLLED_BACK ||
    state === DeploymentState.DEPLOYMENT_STATE_TIMED_OUT
  ) {
    return COLOUR_BAD;
  }
  return COLOUR_NEUTRAL;
}

const clip = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);

function durationText(d: Deployment): string {
  if (!d.createdAt || !d.updatedAt) return "";
  const s = Math.max(0, Math.round((d.updatedAt.getTime() - d.createdAt.getTime()) / 1000));
  return s < 120 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

function runUrl(d: Deployment, githubServerUrl: string): string | undefined {
  const url = d.origin?.runUrl ?? "";
  return url.startsWith(`${githubServerUrl}/`) && !/[\s<>|]/.test(url) ? url : undefined;
}

function summary(d: Deployment): { title: string; target: string } {
  const state = stateName(d.state).replace("_", " ");
  return {
    title: `${ICON[d.state] ?? "•"} Deployment ${state}`,
    target: `${d.namespace}/${kindName(d)}/${d.workload}`,
  };
}

/** The deployment's outcome in a sentence (failure reason and message when it did not succeed). */
function outcomeText(d: Deployment): string {
  const reason = failureReasonName(d);
  return reason ? `${reason}: ${d.failure?.message || d.message}` : d.message;
}

export function renderGeneric(d: Deployment, ctx: RenderContext): string {
  return JSON.stringify({
    type: EVENT_TYPE,
    timestamp: ctx.now.toISOString(),
    data: { deployment: Deployment.toJSON(d), agent: ctx.agent },
  });
}

/** Slack mrkdwn: &, < and > must be escaped (they start links and mentions). */
const slackEscape = (text: string) => text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");

export function renderSlack(d: Deployment, ctx: RenderContext): string {
  const { title, target } = summary(d);
  const origin = d.origin?.repository
    ? `${d.origin.repository}${d.origin.sha ? `@${d.origin.sha.slice(0, 7)}` : ""}`
    : "";
  const run = runUrl(d, ctx.githubServerUrl);
  const context = [
    `\`${d.id}\``,
    `agent ${slackEscape(ctx.agent.name)}`,
    durationText(d),
    origin && (run ? `<${run}|${slackEscape(origin)}>` : slackEscape(origin)),
  ].filter(Boolean);
  return JSON.stringify({
    text: clip(`${title}: ${target} → ${d.image} (agent ${ctx.agent.name})`, 3000)
      .replaceAll("<", "‹")
      .replaceAll(">", "›"),
    blocks: [
      {
        type: "section",
        text: {
          type: "mrkdwn",
          text: clip(
            `*${title}*\n\`${slackEscape(target)}\` → \`${slackEscape(d.image)}\`\n${slackEscape(outcomeText(d))}`,
            3000,
          ),
        },
      },
      { type: "context", elements: [{ type: "mrkdwn", text: clip(context.join(" · "), 3000) }] },
    ],
  });
}

/** Discord markdown: neutralise mentions and markdown links in agent-reported text. */
const discordEscape = (text: string) => text.replaceAll("@", "@\u200b").replace(/([[\]()])/g, "\\$1");

export function renderDiscord(d: Deployment, ctx: RenderContext): string {
  const { title, target } = summary(d);
  const run = runUrl(d, ctx.githubServerUrl);
  const fields = [
    { name: "Workload", value: clip(`\`${target}\``, 1024), inline: false },
    { name: "Image", value: clip(`\`${d.image}\``, 1024), inline: false },
    { name: "Agent", value: clip(discordEscape(ctx.agent.name), 1024), inline: true },
    { name: "Deployment", value: `\`${d.id}\``, inline: true },
  ];
  const duration = durationText(d);
  if (duration) fields.push({ name: "Duration", value: duration, inline: true });
  if (d.origin?.repository) {
    const origin = `${d.origin.repository}${d.origin.sha ? `@${d.origin.sha.slice(0, 7)}` : ""}`;
    fields.push({ name: "Origin", value: clip(discordEscape(origin), 1024), inline: true });
  }
  return JSON.stringify({
    username: "K8sDeploy",
    allowed_mentions: { parse: [] },
    embeds: [
      {
        title: clip(`${title}: ${d.workload}`, 256),
        description: clip(discordEscape(outcomeText(d)), 4096),
        color: colour(d.state),
        ...(run ? { url: run } : {}),
        fields,
        timestamp: (d.updatedAt ?? ctx.now).toISOString(),
        footer: { text: "K8sDeploy" },
      },
    ],
  });
}

export function renderBody(format: WebhookFormatName, d: Deployment, ctx: RenderContext): string {
  switch (format) {
    case "slack":
      return renderSlack(d, ctx);
    case "discord":
      return renderDiscord(d, ctx);
    default:
      return renderGeneric(d, ctx);
  }
}
