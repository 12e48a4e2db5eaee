// `k8sdeploy agent create|list|revoke|rotate|update`
import { Agent } from "@k8sdeploy/proto/node/k8sdeploy/v1/admin.js";
import { Deployment } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import type { Command } from "commander";
import { wantsJson } from "./globals.js";
import { connectionStateName, formatTime, integerIn, printFields, printJson, printTable, warn } from "./output.js";
import { withAdmin } from "./run.js";

const TOKEN_ONCE = "the token is shown only this once: store it now (e.g. as the agent's Secret)";

export function agentState(agent: Agent): string {
  return agent.revokedAt ? "revoked" : connectionStateName(agent.connectionState);
}

export function registerAgentCommands(program: Command): void {
  const agent = program.command("agent").description("manage agents (AdminService)");

  agent
    .command("create")
    .description("register an agent and print its token (shown once)")
    .requiredOption("--name <name>", "display name, 1..63 characters")
    .option("--json", "print {id, token} as JSON")
    .action((opts: { name: string; json?: boolean }) =>
      withAdmin(async (admin) => {
        const res = await admin.createAgent({ name: opts.name });
        const id = res.agent?.id ?? "";
        if (wantsJson(opts)) {
          printJson({ id, token: res.token });
          return;
        }
        printFields([
          ["ID", id],
          ["NAME", res.agent?.name ?? opts.name],
          ["TOKEN", res.token],
        ]);
        warn(TOKEN_ONCE);
      }),
    );

  agent
    .command("list")
    .description("list agents with their connection state")
    .option("--include-revoked", "also list revoked agents")
    .option("--json", "print a JSON array")
    .action((opts: { includeRevoked?: boolean; json?: boolean }) =>
      withAdmin(async (admin) => {
        const res = await admin.listAgents({ includeRevoked: opts.includeRevoked ?? false });
        if (wantsJson(opts)) {
          printJson(res.agents.map((a) => Agent.toJSON(a)));
          return;
        }
        printTable(
          ["ID", "NAME", "STATE", "LAST SEEN", "VERSION", "UPDATE", "REPLICA"],
          res.agents.map((a) => [
            a.id,
            a.name,
            agentState(a),
            formatTime(a.lastSeenAt),
            a.version || "-",
            updateColumn(a),
            a.replicaId || "-",
          ]),
        );
        const release = res.currentRelease;
        process.stdout.write(
          release
            ? `\ncurrent agent release: ${release.version} (${release.image})\n`
            : "\nno agent release channel configured (K8SDEPLOY_AGENT_RELEASE_*)\n",
        );
      }),
    );

  agent
    .command("revoke")
    .description("revoke an agent: its tokens and deploy keys stop working, its stream is closed")
    .argument("<id>", "agent id (agt_…)")
    .option("--json", "print the agent as JSON")
    .action((id: string, opts: { json?: boolean }) =>
      withAdmin(async (admin) => {
        const res = await admin.revokeAgent({ id });
        if (wantsJson(opts)) printJson(res.agent ? Agent.toJSON(res.agent) : { id });
        else process.stdout.write(`revoked agent ${res.agent?.id ?? id}\n`);
      }),
    );

  agent
    .command("rotate")
    .description("issue a new agent token (shown once); the old one keeps working for --grace seconds")
    .argument("<id>", "agent id (agt_…)")
    .option("--grace <seconds>", "how long the previous token keeps working, 0..86400", integerIn(0, 86400), 0)
    .option("--json", "print {id, token} as JSON")
    .action((id: string, opts: { grace: number; json?: boolean }) =>
      withAdmin(async (admin) => {
        const res = await admin.rotateAgentToken({ id, previousTokenGraceSeconds: opts.grace });
        if (wantsJson(opts)) {
          printJson({ id: res.agent?.id ?? id, token: res.token });
          return;
        }
        printFields([
          ["ID", res.agent?.id ?? id],
          ["TOKEN", res.token],
          ["OLD TOKEN", opts.grace > 0 ? `valid for ${opts.grace} more seconds` : "revoked"],
        ]);
        warn(TOKEN_ONCE);
      }),
    );

  agent
    .command("update")
    .description(
      "update an agent that opted in to the current release (or --image); it rolls back by itself if the new pod never gets Ready",
    )
    .argument("<id>", "agent id (agt_…)")
    .option("--image <image>", "agent image instead of the current release's")
    .option("--json", "print the agent-update record (a Deployment) as JSON")
    .action((id: string, opts: { image?: string; json?: boolean }) =>
      withAdmin(async (admin) => {
        const res = await admin.updateAgent({ id, image: opts.image ?? "" });
        const d = res.deployment;
        if (opts.json) {
          printJson(d ? Deployment.toJSON(d) : { id: res.commandId });
          return;
        }
        process.stdout.write(
          `queued agent update ${res.commandId} for ${id}: ${d?.agentVersion ? `${d.agentVersion} (${d.image})` : (d?.image ?? "")}\n` +
            `follow it with: k8sdeploy deployments list --agent ${id}\n`,
        );
      }),
    );
}

/** `→ 0.2.0` when the agent is behind the release (`→ 0.2.0 (auto)` when it opted in), else `-`. */
function updateColumn(a: Agent): string {
  if (!a.availableUpdate) return "-";
  return `→ ${a.availableUpdate.version}${a.autoUpdateEnabled ? " (auto)" : ""}`;
}
