// `k8sdeploy key create|list|revoke`
import { DeployKey } from "@k8sdeploy/proto/node/k8sdeploy/v1/admin.js";
import { type Command, Option } from "commander";
import { wantsJson } from "./globals.js";
import { collect, formatTime, printFields, printJson, printTable, warn } from "./output.js";
import { withAdmin } from "./run.js";

const scope = (values: string[]) => (values.length ? values.join(",") : "*");

export function registerKeyCommands(program: Command): void {
  const key = program.command("key").description("manage deploy keys (AdminService)");

  key
    .command("create")
    .description("create a deploy key bound to one agent and print it (shown once)")
    .requiredOption("--agent <id>", "agent the key deploys through")
    .addOption(new Option("--namespace <ns>", "allowed namespace (repeatable)").argParser(collect).default([], "any"))
    .addOption(
      new Option("--workload <name>", "allowed workload name (repeatable)").argParser(collect).default([], "any"),
    )
    .option("--name <name>", "display name, 0..63 characters")
    .option("--json", "print {id, key} as JSON")
    .action((opts: { agent: string; namespace: string[]; workload: string[]; name?: string; json?: boolean }) =>
      withAdmin(async (admin) => {
        const res = await admin.createDeployKey({
          agentId: opts.agent,
          name: opts.name ?? "",
          namespaces: opts.namespace,
          workloads: opts.workload,
        });
        const id = res.deployKey?.id ?? "";
        if (wantsJson(opts)) {
          printJson({ id, key: res.key });
          return;
        }
        printFields([
          ["ID", id],
          ["AGENT", res.deployKey?.agentId ?? opts.agent],
          ["NAMESPACES", scope(res.deployKey?.namespaces ?? opts.namespace)],
          ["WORKLOADS", scope(res.deployKey?.workloads ?? opts.workload)],
          ["KEY", res.key],
        ]);
        warn("the key is shown only this once: store it now (e.g. as a GitHub Actions secret)");
      }),
    );

  key
    .command("list")
    .description("list deploy keys")
    .option("--agent <id>", "only keys of this agent")
    .option("--include-revoked", "also list revoked keys")
    .option("--json", "print a JSON array")
    .action((opts: { agent?: string; includeRevoked?: boolean; json?: boolean }) =>
      withAdmin(async (admin) => {
        const res = await admin.listDeployKeys({
          agentId: opts.agent ?? "",
          includeRevoked: opts.includeRevoked ?? false,
        });
        if (wantsJson(opts)) {
          printJson(res.deployKeys.map((k) => DeployKey.toJSON(k)));
          return;
        }
        printTable(
          ["ID", "NAME", "AGENT", "NAMESPACES", "WORKLOADS", "LAST USED", "STATE"],
          res.deployKeys.map((k) => [
            k.id,
            k.name || "-",
            k.agentId,
            scope(k.namespaces),
            scope(k.workloads),
            formatTime(k.lastUsedAt),
            k.revokedAt ? "revoked" : "active",
          ]),
        );
      }),
    );

  key
    .command("revoke")
    .description("revoke a deploy key")
    .argument("<id>", "key id (key_…)")
    .option("--json", "print the key as JSON")
    .action((id: string, opts: { json?: boolean }) =>
      withAdmin(async (admin) => {
        const res = await admin.revokeDeployKey({ id });
        if (wantsJson(opts)) printJson(res.deployKey ? DeployKey.toJSON(res.deployKey) : { id });
        else process.stdout.write(`revoked deploy key ${res.deployKey?.id ?? id}\n`);
      }),
    );
}
