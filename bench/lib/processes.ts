// Child processes of the benchmarks: TypeScript helpers run through tsx (the fleet, the callers,
// the bare floor server), each stopped by its own pid when the run ends or fails.
import { type ChildProcess, execFileSync, fork, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as esbuild from "esbuild";
import { repoRoot } from "../../test/support/tools.js";

export const benchDir = join(repoRoot, "bench");

let node24: string | undefined;

/**
 * The Node that the orchestrator under test and the floor servers run on: Node 24, the images'
 * runtime (scripts/node24.sh fetches it once). The bench's own clients run on the Node that runs it.
 */
export function sutNode(): string {
  node24 ??= execFileSync("bash", [join(repoRoot, "scripts", "node24.sh"), "x64"], { encoding: "utf8" }).trim();
  return node24;
}

const children = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

/** Forks a bench TypeScript module with an IPC channel (on `execPath`, default this Node). */
export function forkTs(file: string, args: string[] = [], nodeArgs: string[] = [], execPath?: string): ChildProcess {
  const child = fork(join(benchDir, file), args, {
    cwd: repoRoot,
    execPath,
    execArgv: ["--import", "tsx", ...nodeArgs],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  return track(child);
}

/** Resolves with the first JSON line a child prints on stdout. */
export function firstJsonLine<T>(child: ChildProcess, timeoutMs = 30_000): Promise<T> {
  return new Promise((resolve, reject) => {
    let buffer = "";
    const timer = setTimeout(() => reject(new Error("child printed no JSON line in time")), timeoutMs);
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      buffer += d;
      const line = buffer.split("\n").find((l) => l.startsWith("{"));
      if (line) {
        clearTimeout(timer);
        resolve(JSON.parse(line) as T);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`child exited (${code}) before printing a JSON line`));
    });
  });
}

export interface BareServer {
  port: number;
  pid: number;
  child: ChildProcess;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

let bareBundle: Promise<string> | undefined;

/**
 * floors/bare-server.ts bundled into one plain-JS file (esbuild, like the agent), so that it runs on
 * the same Node as the orchestrator under test, without a TypeScript loader.
 */
export function bareServerBundle(): Promise<string> {
  bareBundle ??= (async () => {
    const outfile = join(mkdtempSync(join(tmpdir(), "k8sd-bench-bare-")), "bare-server.mjs");
    await esbuild.build({
      entryPoints: [join(benchDir, "floors", "bare-server.ts")],
      outfile,
      bundle: true,
      format: "esm",
      platform: "node",
      target: "node20",
      banner: { js: "import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);" },
      logLevel: "warning",
    });
    return outfile;
  })();
  return bareBundle;
}

/** The floor server (floors/bare-server.ts) on `port` (0: any), on the Node the orchestrator runs on. */
export async function startBareServer(port = 0): Promise<BareServer> {
  const child = track(
    spawn(sutNode(), [await bareServerBundle(), String(port)], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "inherit"],
    }),
  );
  const { port: bound } = await firstJsonLine<{ port: number }>(child);
  return { port: bound, pid: child.pid ?? -1, child, stop: (signal = "SIGKILL") => stopChild(child, signal) };
}

export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      const port = typeof address === "object" && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `condition` every `everyMs` until it holds; throws after `timeoutMs`. */
export async function until(condition: () => boolean, what: string, timeoutMs: number, everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
