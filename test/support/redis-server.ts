// Test helper: a private redis-server on a free loopback port, in its own directory, with the
// append-only file fsynced on every write so that a SIGKILL loses nothing. Tests stop exactly
// the server they started (by pid), never "all redis-servers".
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile } from "node:fs/promises";
import { createServer, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface RedisServerOptions {
  /** Data directory (AOF, pidfile, log); a fresh temporary directory when omitted. */
  dir?: string;
  /** Persist every write to the append-only file (fsync always). Default true. */
  appendonly?: boolean;
  /** Port to listen on; a free one when omitted. */
  port?: number;
  /** Milliseconds to wait for PING to answer. Default 10 s. */
  startTimeoutMs?: number;
  /** appendfsync policy. Default "always" (a SIGKILL loses nothing); the benchmarks use Redis's own default, "everysec". */
  appendfsync?: "always" | "everysec";
  /** Extra redis-server arguments (e.g. cluster mode). */
  extraArgs?: string[];
}

export interface RedisServer {
  url: string;
  port: number;
  dir: string;
  /** Pid of the running server (changes on restart). */
  pid: number;
  /** Stops the server and waits until the process is gone. No-op when already stopped. */
  stop(signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
  /** Starts the server again on the same port and directory (stopping it first if running). */
  restart(): Promise<void>;
}

const REDIS_SERVER_BINARY = process.env.REDIS_SERVER_BINARY ?? "redis-server";

export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), "k8sd-redis-")));
  const appendonly = options.appendonly ?? true;
  const timeoutMs = options.startTimeoutMs ?? 10_000;
  let port = options.port ?? (await freePort());
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const launch = async (): Promise<void> => {
    const args = [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--appendonly",
      appendonly ? "yes" : "no",
      "--appendfsync",
      options.appendfsync ?? "always",
      "--save",
      "",
      "--pidfile",
      join(dir, "redis.pid"),
      "--logfile",
      join(dir, "redis.log"),
      "--daemonize",
      "no",
      ...(options.extraArgs ?? []),
    ];
    const proc = spawn(REDIS_SERVER_BINARY, args, { stdio: "ignore" });
    child = proc;
    let exitedEarly = false;
    exited = new Promise<void>((resolve) => {
      proc.once("exit", () => {
        exitedEarly = true;
        resolve();
      });
      proc.once("error", () => {
        exitedEarly = true;
        resolve();
      });
    });
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (exitedEarly) break;
      if (await pingOnce(port)) return;
      await sleep(25);
    }
    if (!exitedEarly) {
      proc.kill("SIGKILL");
      await exited;
    }
    const log = await readFile(join(dir, "redis.log"), "utf8").catch(() => "");
    throw new Error(`redis-server did not answer PING on port ${port}:\n${log.split("\n").slice(-10).join("\n")}`);
  };

  const stop = async (signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill(signal);
    await exited;
  };

  // A free port can be taken by someone else between probing and binding: retry a few times
  // with a new port unless the caller chose one.
  for (let attempt = 1; ; attempt++) {
    try {
      await launch();
      break;
    } catch (err) {
      if (options.port !== undefined || attempt >= 3) throw err;
      port = await freePort();
    }
  }

  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    get pid() {
      return child?.pid ?? -1;
    },
    stop,
    restart: async () => {
      await stop("SIGTERM");
      await launch();
    },
  };
  return server;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      const port = typeof address === "object" && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** True when the server answers +PONG (not -LOADING while it replays the AOF). */
function pingOnce(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    let data = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once("error", () => done(false));
    socket.on("data", (chunk) => {
      data += chunk.toString("utf8");
      if (data.includes("\r\n")) done(data.startsWith("+PONG"));
    });
    socket.connect(port, "127.0.0.1", () => socket.write("PING\r\n"));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
