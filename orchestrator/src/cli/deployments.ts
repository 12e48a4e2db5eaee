// `k8sdeploy deployments list` and `k8sdeploy deployments cancel`
import { Deployment, type DeploymentState, workloadKindToJSON } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import { type Command, Option } from "commander";
import {
  deploymentStateName,
  deploymentStateNames,
  formatTime,
  integerIn,
  parseDeploymentState,
  printJson,
  printTable,
  warn,
} from "./output.js";
import { withAdmin } from "./run.js";

export function registerDeploymentCommands(program: Command): void {
  const deployments = program.command("deployments").description("look at deployments (AdminService)");

  deployments
    .command("list")
    .description("list deployments, newest first")
    .option("--agent <id>", "only this agent's")
    .option("--namespace <ns>", "only this namespace")
    .addOption(
      new Option("--state <state>", `only this state (repeatable): ${deploymentStateNames.join(", ")}`)
        .argParser(parseDeploymentState)
        .default([], "any"),
    )
    .option("--limit <n>", "at most this many, 1..500", integerIn(1, 500), 50)
    .option("--json", "print a JSON array")
    .action((opts: { agent?: string; namespace?: string; state: DeploymentState[]; limit: number; json?: boolean }) =>
      withAdmin(async (admin) => {
        const res = await admin.listDeployments({
          agentId: opts.agent ?? "",
          namespace: opts.namespace ?? "",
          states: opts.state,
          pageSize: opts.limit,
          pageToken: "",
        });
        const list = res.deployments.slice(0, opts.limit);
        if (opts.json) {
          printJson(list.map((d) => Deployment.toJSON(d)));
          return;
        }
        printTable(
          ["ID", "AGENT", "NAMESPACE", "WORKLOAD", "IMAGE", "STATE", "CREATED"],
          list.map((d) => [
            d.id,
            d.agentId,
            d.namespace,
            `${workloadKindToJSON(d.kind)
              .replace(/^WORKLOAD_KIND_/, "")
              .replaceAll("_", "")
              .toLowerCase()}/${d.workload}`,
            d.image,
            deploymentStateName(d.state),
            formatTime(d.createdAt),
          ]),
        );
        if (res.nextPageToken) warn(`more deployments match; showing the newest ${list.length} (raise --limit)`);
      }),
    );

  deployments
    .command("cancel")
    .description("cancel a deployment that has not been sent to its agent yet (it is then never applied)")
    .argument("<id>", "deployment id (dep_…)")
    .option("--reason <text>", "recorded in the timeline", "")
    .option("--json", "print the deployment as JSON")
    .action((id: string, opts: { reason: string; json?: boolean }) =>
      withAdmin(async (admin) => {
        const { deployment } = await admin.cancelDeployment({ id, reason: opts.reason });
        if (!deployment) throw new Error("the orchestrator returned no deployment");
        if (opts.json) printJson(Deployment.toJSON(deployment));
        else process.stdout.write(`${deployment.id} ${deploymentStateName(deployment.state)}: ${deployment.message}\n`);
      }),
    );
}
