// `k8sdeploy trust create|list|delete`: GitHub OIDC trust policies (deploy without a stored key).
import { TrustPolicy } from "@k8sdeploy/proto/node/k8sdeploy/v1/admin.js";
import { type Command, Option } from "commander";
import { wantsJson } from "./globals.js";
import { collect, formatTime, printFields, printJson, printTable, warn } from "./output.js";
import { withAdmin } from "./run.js";

const scope = (values: string[]) => (values.length ? values.join(",") : "*");
const any = (value: string) => value || "*";

interface CreateOptions {
  agent: string;
  repository: string;
  repositoryId?: string;
  ref?: string;
  environment?: string;
  workflowRef?: string;
  audience?: string;
  namespace: string[];
  workload: string[];
  name?: string;
  json?: boolean;
}

export function registerTrustCommands(program: Command): void {
  const trust = program
    .command("trust")
    .description("manage GitHub OIDC trust policies: deploy from GitHub Actions without a stored deploy key");

  trust
    .command("create")
    .description("trust the ID tokens of a repository's workflows to deploy through one agent")
    .requiredOption("--agent <id>", "agent the tokens deploy through")
    .requiredOption("--repository <owner/name>", "the repository whose workflows may deploy")
    .option("--ref <ref>", "only this ref, e.g. refs/heads/main, or a prefix ending in * (refs/tags/v*)")
    .option("--environment <name>", "only jobs running in this GitHub environment (with its protection rules)")
    .option("--workflow-ref <ref>", "only this workflow, e.g. owner/name/.github/workflows/deploy.yml@refs/heads/main")
    .option("--repository-id <id>", "only this numeric repository id (survives renames)")
    .option("--audience <aud>", "required token audience (the action's `audience` input)", "k8sdeploy")
    .addOption(new Option("--namespace <ns>", "allowed namespace (repeatable)").argParser(collect).default([], "any"))
    .addOption(
      new Option("--workload <name>", "allowed workload name (repeatable)").argParser(collect).default([], "any"),
    )
    .option("--name <name>", "display name, 0..63 characters")
    .option("--json", "print the policy as JSON")
    .action((opts: CreateOptions) =>
      withAdmin(async (admin) => {
        const { trustPolicy } = await admin.createTrustPolicy({
          agentId: opts.agent,
          name: opts.name ?? "",
          repository: opts.repository,
          repositoryId: opts.repositoryId ?? "",
          ref: opts.ref ?? "",
          environment: opts.environment ?? "",
          workflowRef: opts.workflowRef ?? "",
          audience: opts.audience ?? "",
          namespaces: opts.namespace,
          workloads: opts.workload,
        });
        if (!trustPolicy) throw new Error("the orchestrator returned no trust policy");
        if (wantsJson(opts)) {
          printJson(TrustPolicy.toJSON(trustPolicy));
          return;
        }
        printFields([
          ["ID", trustPolicy.id],
          ["AGENT", trustPolicy.agentId],
          ["REPOSITORY", trustPolicy.repository],
          ["REF", any(trustPolicy.ref)],
          ["ENVIRONMENT", any(trustPolicy.environment)],
          ["WORKFLOW", any(trustPolicy.workflowRef)],
          ["AUDIENCE", trustPolicy.audience],
          ["ISSUER", trustPolicy.issuer],
          ["NAMESPACES", scope(trustPolicy.namespaces)],
          ["WORKLOADS", scope(trustPolicy.workloads)],
        ]);
        if (!trustPolicy.ref && !trustPolicy.environment && !trustPolicy.workflowRef) {
          warn("any branch, tag and workflow of the repository may deploy: consider --ref or --environment");
        }
      }),
    );

  trust
    .command("list")
    .description("list trust policies")
    .option("--agent <id>", "only policies of this agent")
    .option("--include-deleted", "also list deleted policies")
    .option("--json", "print a JSON array")
    .action((opts: { agent?: string; includeDeleted?: boolean; json?: boolean }) =>
      withAdmin(async (admin) => {
        const res = await admin.listTrustPolicies({
          agentId: opts.agent ?? "",
          includeDeleted: opts.includeDeleted ?? false,
        });
        if (wantsJson(opts)) {
          printJson(res.trustPolicies.map((p) => TrustPolicy.toJSON(p)));
          return;
        }
        printTable(
          ["ID", "AGENT", "REPOSITORY", "REF", "ENVIRONMENT", "NAMESPACES", "WORKLOADS", "LAST USED", "STATE"],
          res.trustPolicies.map((p) => [
            p.id,
            p.agentId,
            p.repository,
            any(p.ref),
            any(p.environment),
            scope(p.namespaces),
            scope(p.workloads),
            formatTime(p.lastUsedAt),
            p.deletedAt ? "deleted" : "active",
          ]),
        );
      }),
    );

  trust
    .command("delete")
    .description("delete a trust policy: its tokens stop working at once")
    .argument("<id>", "policy id (tp_…)")
    .option("--json", "print the policy as JSON")
    .action((id: string, opts: { json?: boolean }) =>
      withAdmin(async (admin) => {
        const res = await admin.deleteTrustPolicy({ id });
        if (wantsJson(opts)) printJson(res.trustPolicy ? TrustPolicy.toJSON(res.trustPolicy) : { id });
        else process.stdout.write(`deleted trust policy ${res.trustPolicy?.id ?? id}\n`);
      }),
    );
}
