// The commands npm links for the workspaces (`npx k8sdeploy`, `npx k8sdeploy-agent`) run.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import test from "ava";
import { repoRoot } from "./support/action.js";

const run = promisify(execFile);

test("npx k8sdeploy --help lists the commands", async (t) => {
  const { stdout } = await run("npx", ["--no-install", "k8sdeploy", "--help"], { cwd: repoRoot });
  for (const command of ["serve", "agent", "key", "deployments"]) t.regex(stdout, new RegExp(`\\b${command}\\b`));
});

test("npx k8sdeploy-agent --version prints the agent version", async (t) => {
  const { stdout } = await run("npx", ["--no-install", "k8sdeploy-agent", "--version"], { cwd: repoRoot });
  t.regex(stdout, /\d+\.\d+\.\d+/);
});
