// Test helpers for external tools: run a command, find grpcurl, pick a free port, make certs.
import { type SpawnOptions, spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { createServer } from "node:net";
import { homedir, tmpdir } from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export const GRPCURL_VERSION = "v1.9.3";

export interface RunResult {
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Environment of the child (default: this process's). */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Written to stdin, which is then closed. */
  input?: string;
  /** SIGKILL the child after this long (default 60 s); the result then has signal SIGKILL. */
  timeoutMs?: number;
}

/** Runs a command to completion and collects its output. Never rejects on a non-zero exit. */
export function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const spawnOptions: SpawnOptions = { env: options.env ?? process.env, cwd: options.cwd ?? repoRoot };
    const child = spawn(command, [...args], { ...spawnOptions, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    // A child that exits without reading its stdin makes this write fail with EPIPE: not an error.
    child.stdin?.on("error", () => {});
    child.stdin?.end(options.input ?? "");
  });
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The grpcurl binary: from PATH, else the test bed's build
 * (`${K8SDEPLOY_TESTBED_CACHE:-~/.cache/k8sdeploy-testbed}/grpcurl-v1.9.3/bin/grpcurl`).
 * Throws (so the test fails, never skips) when neither exists.
 */
export function findGrpcurl(): string {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (dir && isExecutable(path.join(dir, "grpcurl"))) return path.join(dir, "grpcurl");
  }
  const cache = process.env.K8SDEPLOY_TESTBED_CACHE ?? path.join(homedir(), ".cache", "k8sdeploy-testbed");
  const built = path.join(cache, `grpcurl-${GRPCURL_VERSION}`, "bin", "grpcurl");
  if (isExecutable(built)) return built;
  throw new Error(
    `grpcurl not found on PATH or at ${built}: run \`npm run testbed -- up\` (or K8SDEPLOY_TESTBED_ONLY=grpcurl bash scripts/testbed/build-tools.sh) to build it`,
  );
}

/** Runs grpcurl with the given arguments. */
export function grpcurl(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return run(findGrpcurl(), args, { timeoutMs: 30_000, ...options });
}

/** A TCP port that was free a moment ago on host (prefer port 0 where the program supports it). */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A fresh temporary directory. */
export function tempDir(prefix = "k8sd-test-"): Promise<string> {
  return mkdtemp(path.join(tmpdir(), prefix));
}

export interface CertFiles {
  cert: string;
  key: string;
}

/**
 * A self-signed certificate (EC P-256, 1 day) for localhost and 127.0.0.1 (plus `hosts`), made
 * with openssl; the certificate doubles as the CA file clients trust.
 */
export async function selfSignedCert(
  dir: string,
  options: { name?: string; hosts?: string[] } = {},
): Promise<CertFiles> {
  const name = options.name ?? "server";
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  const hosts = ["localhost", "127.0.0.1", "::1", ...(options.hosts ?? [])];
  const san = hosts.map((h) => (/^[\d.]+$|:/.test(h) ? `IP:${h}` : `DNS:${h}`)).join(",");
  const result = await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-days",
    "1",
    "-subj",
    "/CN=localhost",
    "-addext",
    `subjectAltName=${san}`,
    "-keyout",
    key,
    "-out",
    cert,
  ]);
  if (result.code !== 0) throw new Error(`openssl failed (${result.code}): ${result.stderr}`);
  return { cert, key };
}
