// Shared steps of the end-to-end suites.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import type { DeploymentState } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import { repoRoot } from "./action.js";
import type { deployClient } from "./clients.js";
import { waitFor } from "./kube.js";
import type { Stack } from "./stack.js";

/** Node 24 as GitHub's runner uses for `runs.using: node24` (official build from the npm registry). */
export function node24(arch: "x64" | "arm64" = "x64"): string {
  return execFileSync("bash", [join(repoRoot, "scripts", "node24.sh"), arch], { encoding: "utf8" }).trim();
}

export const githubEnv = (run: string) => ({
  GITHUB_REPOSITORY: "acme/web",
  GITHUB_SHA: "0123456789abcdef0123456789abcdef01234567",
  GITHUB_REF: "refs/heads/main",
  GITHUB_ACTOR: "octocat",
  GITHUB_SERVER_URL: "https://github.com",
  GITHUB_RUN_ID: run,
  GITHUB_RUN_ATTEMPT: "1",
  GITHUB_JOB: "deploy",
  GITHUB_WORKFLOW: "Deploy",
});

interface AgentJson {
  id: string;
  connectionState?: string;
  replicaId?: string;
}

export async function agentInfo(stack: Stack, id: string): Promise<AgentJson | undefined> {
  const out = JSON.parse(await stack.cli(["agent", "list", "--json"])) as AgentJson[] | { agents: AgentJson[] };
  const agents = Array.isArray(out) ? out : out.agents;
  return agents.find((a) => a.id === id);
}

export async function waitConnected(stack: Stack, id: string, replicaId?: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    async () => {
      const a = await agentInfo(stack, id);
      return (
        a?.connectionState === "CONNECTION_STATE_CONNECTED" && (replicaId === undefined || a.replicaId === replicaId)
      );
    },
    `agent ${id} to connect${replicaId ? ` to ${replicaId}` : ""}`,
    timeoutMs,
  );
}

/** Polls GetDeployment until the deployment is in one of `states`; returns it. */
export async function waitState(
  client: ReturnType<typeof deployClient>,
  id: string,
  states: DeploymentState[],
  timeoutMs = 90_000,
) {
  let last: DeploymentState | undefined;
  await waitFor(
    async () => {
      last = (await client.get(id)).deployment?.state;
      return last !== undefined && states.includes(last);
    },
    `deployment ${id} to reach ${states.join("/")} (last ${last})`,
    timeoutMs,
  );
  return (await client.get(id)).deployment!;
}
