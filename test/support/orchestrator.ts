// Test helper: run the built orchestrator (`node orchestrator/dist/cli.js serve`) as a child
// process on free loopback ports and find its addresses from the "listening" log line.
// Needs `npm run build` first. Every child is stopped by pid; leftovers are SIGKILLed when the
// test process exits.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { type RunOptions, type RunResult, repoRoot, run, tempDir } from "./tools.js";

/** The built CLI. */
export const cliPath = path.join(repoRoot, "orchestrator", "dist", "cli.js");

export interface StartOrchestratorOptions {
  /**
   * Variables set over the defaults (K8SDEPLOY_GRPC_LISTEN and K8SDEPLOY_HTTP_LISTEN
   * 127.0.0.1:0, K8SDEPLOY_DATA_DIR a fresh temporary directory). `undefined` removes one.
   * K8SDEPLOY_* variables of the test process itself are not passed on.
   */
  env?: Record<string, string | undefined>;
  /** Wait this long for the "listening" line (default 30 s). */
  timeoutMs?: number;
  /** Node options before the script (e.g. `--cpu-prof`), for the benchmarks. */
  nodeArgs?: string[];
  /** Node binary (default: the one running the tests), e.g. Node 24 as in the image. */
  node?: string;
  /** Script to run instead of the built CLI (e.g. a single-file bundle); it gets `serve`. */
  script?: string;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Orchestrator {
  /** `127.0.0.1:PORT` of the gRPC server. */
  grpcAddress: string;
  /** `127.0.0.1:PORT` of the HTTP server. */
  httpAddress: string;
  /** `http://127.0.0.1:PORT` (for fetch), `https://…` when K8SDEPLOY_HTTP_TLS_CERT_FILE is set. */
  httpUrl: string;
  dataDir: string;
  /** The admin token (from the env given, else the generated `<dataDir>/admin-token`). */
  adminToken: string;
  /** The environment the child was started with. */
  env: NodeJS.ProcessEnv;
  process: ChildProcess;
  /** Everything the child wrote to stderr so far (its JSON log lines). */
  logs(): string;
  /** The log lines parsed (lines that are not JSON are skipped). */
  logEntries(): Record<string, unknown>[];
  /** Resolves when the child has exited and its output is read. */
  exited: Promise<ExitStatus>;
  /**
   * Sends signal (default SIGTERM) and waits for the exit; SIGKILLs after timeoutMs (default
   * 15 s). Resolves immediately with the status when the child already exited.
   */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<ExitStatus>;
  /** Environment for running the admin CLI against this orchestrator (see runCli). */
  cliEnv(extra?: Record<string, string | undefined>): NodeJS.ProcessEnv;
}

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

function assertBuilt(): void {
  if (!existsSync(cliPath)) throw new Error(`${cliPath} does not exist: run \`npm run build\` first`);
}

/** This process's environment without K8SDEPLOY_* variables, plus overrides (undefined deletes). */
export function cleanEnv(overrides: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("K8SDEPLOY_")) env[k] = v;
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export async function startOrchestrator(options: StartOrchestratorOptions = {}): Promise<Orchestrator> {
  assertBuilt();
  const env = cleanEnv({
    K8SDEPLOY_GRPC_LISTEN: "127.0.0.1:0",
    K8SDEPLOY_HTTP_LISTEN: "127.0.0.1:0",
    K8SDEPLOY_DATA_DIR: await tempDir("k8sd-orch-"),
    ...options.env,
  });
  const child = spawn(
    options.node ?? process.execPath,
    [...(options.nodeArgs ?? []), options.script ?? cliPath, "serve"],
    {
      cwd: repoRoot,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  live.add(child);
  let stderr = "";
  let stdout = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => {
    stdout += d;
  });
  const exited = new Promise<ExitStatus>((resolve) => {
    // "close", not "exit": by then stderr is fully read, so logs() is complete.
    child.on("close", (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
  });
  const parse = () =>
    stderr
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      });

  const timeoutMs = options.timeoutMs ?? 30_000;
  const listening = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const fail = (why: string) => {
      cleanup();
      child.kill("SIGKILL");
      reject(new Error(`orchestrator ${why}\n--- stderr ---\n${stderr}--- stdout ---\n${stdout}`));
    };
    const onData = (d: string) => {
      stderr += d;
      const entry = parse().find((e) => e.msg === "listening");
      if (entry) {
        cleanup();
        resolve(entry);
      }
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      fail(`exited (code ${code}, signal ${signal}) before listening`);
    const timer = setTimeout(() => fail(`did not log "listening" within ${timeoutMs} ms`), timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      child.stderr?.off("data", onData);
      child.off("exit", onExit);
      child.stderr?.on("data", (more: string) => {
        stderr += more;
      });
    };
    child.stderr?.setEncoding("utf8").on("data", onData);
    child.on("exit", onExit);
  });

  const dataDir = env.K8SDEPLOY_DATA_DIR ?? path.join(repoRoot, ".k8sdeploy");
  const adminToken =
    env.K8SDEPLOY_ADMIN_TOKEN?.trim() || readFileSync(path.join(dataDir, "admin-token"), "utf8").trim();
  const grpcAddress = String(listening.grpc);
  const httpAddress = String(listening.http);
  const tls = Boolean(env.K8SDEPLOY_TLS_CERT_FILE);

  const stop = async (signal: NodeJS.Signals = "SIGTERM", stopTimeoutMs = 15_000): Promise<ExitStatus> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), stopTimeoutMs);
      const status = await exited;
      clearTimeout(timer);
      return status;
    }
    return exited;
  };

  return {
    grpcAddress,
    httpAddress,
    httpUrl: `${env.K8SDEPLOY_HTTP_TLS_CERT_FILE ? "https" : "http"}://${httpAddress}`,
    dataDir,
    adminToken,
    env,
    process: child,
    logs: () => stderr,
    logEntries: parse,
    exited,
    stop,
    cliEnv: (extra = {}) =>
      cleanEnv({
        K8SDEPLOY_SERVER: `${tls ? "https" : "http"}://${grpcAddress}`,
        K8SDEPLOY_DATA_DIR: dataDir,
        ...(tls ? { K8SDEPLOY_CA_FILE: env.K8SDEPLOY_TLS_CERT_FILE } : {}),
        ...(env.K8SDEPLOY_ADMIN_TOKEN ? { K8SDEPLOY_ADMIN_TOKEN: env.K8SDEPLOY_ADMIN_TOKEN } : {}),
        ...extra,
      }),
  };
}

/** Runs `node orchestrator/dist/cli.js ...args` (e.g. with env: orchestrator.cliEnv()). */
export function runCli(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  assertBuilt();
  return run(process.execPath, [cliPath, ...args], { env: cleanEnv(), ...options });
}
