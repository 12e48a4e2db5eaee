// Runs the bundled GitHub Action (action/dist/index.js) the way a runner does: `node dist/index.js` with the
// inputs as INPUT_<NAME> variables (upper case, dashes kept) and GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files.
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = resolve(fileURLToPath(new URL("../..", import.meta.url)));
export const actionDir = join(repoRoot, "action");
export const bundlePath = join(actionDir, "dist", "index.js");

export interface RunActionOptions {
  /** Inputs by their action.yml names (`rollback-on-failure`, …). Unset inputs are simply absent, as outside GitHub. */
  inputs: Record<string, string>;
  /** More environment (GITHUB_REPOSITORY, GITHUB_RUN_ID, …). The caller's GITHUB_*, RUNNER_*, ACTIONS_* and INPUT_* are not passed on. */
  env?: Record<string, string>;
  /** Kill the action after this long (default 60 s). */
  timeoutMs?: number;
  /** Script to run instead of the committed bundle. */
  script?: string;
  /** Node binary to run it with (default: the one running the tests). */
  node?: string;
}

export interface RunActionResult {
  /** Exit code (null if killed by a signal). */
  code: number | null;
  stdout: string;
  stderr: string;
  /** Outputs written to GITHUB_OUTPUT. */
  outputs: Record<string, string>;
  /** Contents of GITHUB_STEP_SUMMARY. */
  summary: string;
}

/** `INPUT_ROLLBACK-ON-FAILURE` for `rollback-on-failure`, as the runner names it. */
export function inputVariable(name: string): string {
  return `INPUT_${name.replace(/ /g, "_").toUpperCase()}`;
}

/** Parses a GITHUB_OUTPUT / GITHUB_ENV file: `name=value` lines and `name<<DELIMITER` … `DELIMITER` blocks. */
export function parseCommandFile(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === "") continue;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const [, name, delimiter] = heredoc;
      const body: string[] = [];
      for (i++; i < lines.length && lines[i] !== delimiter; i++) body.push(lines[i]!);
      values[name!] = body.join("\n");
      continue;
    }
    const eq = line.indexOf("=");
    if (eq > 0) values[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return values;
}

function baseEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^(GITHUB_|RUNNER_|ACTIONS_|INPUT_)/.test(name) || name === "NODE_OPTIONS") continue;
    env[name] = value;
  }
  return env;
}

export async function runBundledAction(options: RunActionOptions): Promise<RunActionResult> {
  const dir = await mkdtemp(join(tmpdir(), "k8sdeploy-action-"));
  try {
    const outputFile = join(dir, "output");
    const summaryFile = join(dir, "step_summary");
    await writeFile(outputFile, "");
    await writeFile(summaryFile, "");
    const env: NodeJS.ProcessEnv = {
      ...baseEnvironment(),
      GITHUB_OUTPUT: outputFile,
      GITHUB_STEP_SUMMARY: summaryFile,
      ...options.env,
    };
    for (const [name, value] of Object.entries(options.inputs)) env[inputVariable(name)] = value;

    const child = spawn(options.node ?? process.execPath, [options.script ?? bundlePath], {
      cwd: dir,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const timeoutMs = options.timeoutMs ?? 60_000;
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    const code = await new Promise<number | null>((resolveExit, reject) => {
      child.on("error", reject);
      child.on("close", (exitCode) => resolveExit(exitCode));
    }).finally(() => clearTimeout(timer));

    return {
      code,
      stdout,
      stderr,
      outputs: parseCommandFile(await readFile(outputFile, "utf8")),
      summary: await readFile(summaryFile, "utf8"),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
