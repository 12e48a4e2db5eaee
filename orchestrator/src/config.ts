// The one place the orchestrator's configuration is read and validated. Everything comes from
// K8SDEPLOY_* environment variables; `configTable` documents them (orchestrator/CONFIG.md is
// generated from it, and config.test.ts checks that the two agree).
//
// An empty value counts as unset (manifests often carry `value: ""`).
import { createPrivateKey, randomBytes, X509Certificate } from "node:crypto";
import * as fs from "node:fs";
import { hostname } from "node:os";
import * as path from "node:path";
import { InvalidImageReferenceError, parseImageReference } from "@k8sdeploy/proto/contract/image-ref.js";
import { valid as validSemver } from "semver";
import { z } from "zod";
import { type RedisTarget, RedisUrlError, redisTarget } from "./store/redis-url.js";

/** Thrown by loadConfig. The message names every offending variable and what is wrong with it. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(readonly issues: readonly ConfigIssue[]) {
    super(issues.map((i) => `${i.variable}: ${i.message}`).join("\n"));
  }
}

export interface ConfigIssue {
  variable: string;
  message: string;
}

export interface ListenAddress {
  host: string;
  port: number;
}

export interface TlsFiles {
  /** Absolute path of the PEM certificate (chain). */
  certFile: string;
  /** Absolute path of the PEM private key. */
  keyFile: string;
}

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
export const logLevels: readonly LogLevel[] = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/** Where the admin token came from. Never log the token; log the path when it is a file. */
export type AdminTokenSource =
  | { kind: "env" }
  | {
      kind: "file";
      /** Absolute path of `<dataDir>/admin-token`. */
      path: string;
      /** True when this load generated the file. */
      created: boolean;
      /** Permission bits of the file (0o600 when we created it). */
      mode: number;
    };

export interface Config {
  grpcListen: ListenAddress;
  httpListen: ListenAddress;
  /**
   * redis://, rediss:// or redis+cluster:// (seed nodes) URL; undefined selects the in-memory store.
   * May contain a password.
   */
  redisUrl: string | undefined;
  /** Replicas every write must reach (Redis WAIT) before Deploy answers or a result is acknowledged. */
  redisWaitReplicas: number;
  /** Calls (unary, both ports) handled at once; more are refused with UNAVAILABLE before any work. */
  maxConcurrentCalls: number;
  /** How long a finished deployment (record, events, idempotency key) is kept. */
  retentionSeconds: number;
  /** The memory store keeps at most this many finished deployments (oldest dropped first). */
  memoryMaxDeployments: number;
  /** Always set: from K8SDEPLOY_ADMIN_TOKEN or `<dataDir>/admin-token` (generated if missing). */
  adminToken: string;
  adminTokenSource: AdminTokenSource;
  /** Absolute path. */
  dataDir: string;
  /** Both files exist, parse, and the key matches the certificate; undefined means plaintext. */
  tls: TlsFiles | undefined;
  /** TLS on the HTTP port (its own pair, checked like `tls`); undefined means plain HTTP. */
  httpTls: TlsFiles | undefined;
  /** Origin of the GitHub server that dashboard links point to (https://github.com or a GHE host). */
  githubServerUrl: string;
  /** Failed authentications allowed per client address per minute before it is refused for a minute. */
  authFailuresPerMinute: number;
  /** Issuer of the GitHub Actions ID tokens trust policies accept (no trailing slash). */
  oidcIssuer: string;
  /** gRPC URL agents and the action dial (`https://host:port`), for the dashboard's snippets; undefined when unset. */
  publicUrl: string | undefined;
  replicaId: string;
  logLevel: LogLevel;
  /** Interval of the server's keepalive pings. */
  keepaliveSeconds: number;
  /** Minimum interval between client pings; enforced by server/ping-policy.ts. */
  keepaliveMinSeconds: number;
  /** 0 means unlimited. */
  maxConnectionAgeSeconds: number;
  maxConnectionAgeGraceSeconds: number;
  describeTimeoutSeconds: number;
  /** How long a deployment may wait for its agent when the caller gives no queue timeout. */
  queueTimeoutSeconds: number;
  /** Normalised origins (`scheme://host[:port]`), or `["*"]`. Empty: no cross-origin access. */
  corsOrigins: string[];
  shutdownGraceSeconds: number;
  /** The agent release channel: where the current release comes from (none: no channel). */
  agentRelease: AgentReleaseSource | undefined;
  /** Update agents that opted in automatically (else only "update available"). */
  agentAutoUpdate: boolean;
  /** At most this many agent updates run at once. */
  agentUpdateConcurrency: number;
  /** How long a new agent pod may take to become Ready before the agent rolls its update back. */
  agentUpdateReadySeconds: number;
  /** How often the automatic rollout looks for agents to update. */
  agentUpdateIntervalSeconds: number;
  /** Webhook notifications (notify/). */
  webhooks: WebhookConfig;
}

export interface WebhookConfig {
  /** 32 bytes that encrypt webhook URLs and secrets at rest; undefined: stored as plain text. */
  key: Buffer | undefined;
  maxAttempts: number;
  backoffSeconds: number;
  timeoutSeconds: number;
  allowLoopback: boolean;
}

export interface AgentReleaseInfo {
  /** Semver. */
  version: string;
  /** Image pinned by digest. */
  image: string;
}

/** The release from the environment, or a file re-read when it changes (a mounted ConfigMap). */
export type AgentReleaseSource = { kind: "env"; release: AgentReleaseInfo } | { kind: "file"; path: string };

export interface ConfigTableRow {
  variable: string;
  default: string;
  description: string;
}

/** Every variable the orchestrator reads, in the order the docs list them. */
export const configTable: readonly ConfigTableRow[] = [
  {
    variable: "K8SDEPLOY_GRPC_LISTEN",
    default: "0.0.0.0:50051",
    description:
      "`host:port` of the gRPC server (agents, deploy and admin APIs). IPv6 as `[::]:50051`. Port 0 picks a free port.",
  },
  {
    variable: "K8SDEPLOY_HTTP_LISTEN",
    default: "0.0.0.0:8080",
    description: "`host:port` of the HTTP server (`/healthz`, `/readyz`, `/metrics`, web app).",
  },
  {
    variable: "K8SDEPLOY_REDIS_URL",
    default: "(unset: in-memory store)",
    description:
      "`redis://` or `rediss://` URL of the Redis that stores agents, keys, queues and deployments, or `redis+cluster://[user:password@]host:port,host:port,…` (`rediss+cluster://` for TLS) with seed nodes of a Redis Cluster (7.0+: the bus uses sharded Pub/Sub). Needed for durability and for more than one replica.",
  },
  {
    variable: "K8SDEPLOY_REDIS_WAIT_REPLICAS",
    default: "1 with a Redis Cluster, else 0",
    description:
      "Replicas that must have a write (Redis `WAIT`, at most 2 s) before Deploy answers and before an agent's result is acknowledged, so that a failover loses no acknowledged deploy. 0..16; 0 turns it off. When fewer replicas answer in time the call still succeeds and a warning is logged.",
  },
  {
    variable: "K8SDEPLOY_MAX_CONCURRENT_CALLS",
    default: "256",
    description:
      'Unary calls (Deploy, admin calls; both ports) one replica works on at once. Calls beyond it are refused at once with UNAVAILABLE ("overloaded … retry") before anything is stored, so overload never makes a caller believe a deploy failed while it runs. 1..100000.',
  },
  {
    variable: "K8SDEPLOY_RETENTION_DAYS",
    default: "30",
    description:
      "How long a finished deployment (its record, events and idempotency key) is kept after it ended, in both stores; queued and running ones are never dropped. 1..3650.",
  },
  {
    variable: "K8SDEPLOY_MEMORY_MAX_DEPLOYMENTS",
    default: "10000",
    description:
      "The in-memory store keeps at most this many finished deployments (the oldest are dropped first), so that it stays bounded like Redis. 100..10000000.",
  },
  {
    variable: "K8SDEPLOY_ADMIN_TOKEN",
    default: "(generated)",
    description:
      "Admin API token, at least 24 printable characters. When unset, a random token is generated once and kept in `<K8SDEPLOY_DATA_DIR>/admin-token` (mode 0600); only that path is logged.",
  },
  {
    variable: "K8SDEPLOY_DATA_DIR",
    default: "`.k8sdeploy` (under the working directory)",
    description: "Directory for local state (the generated admin token).",
  },
  {
    variable: "K8SDEPLOY_TLS_CERT_FILE",
    default: "(unset: plaintext)",
    description:
      "PEM certificate (chain) for the gRPC server. Set together with K8SDEPLOY_TLS_KEY_FILE; both are checked when the server starts.",
  },
  {
    variable: "K8SDEPLOY_TLS_KEY_FILE",
    default: "(unset: plaintext)",
    description: "PEM private key matching K8SDEPLOY_TLS_CERT_FILE.",
  },
  {
    variable: "K8SDEPLOY_REPLICA_ID",
    default: "`<hostname>-<6 random hex>`",
    description: "Name of this replica (letters, digits, `.`, `_`, `-`; at most 128). Must be unique among replicas.",
  },
  {
    variable: "K8SDEPLOY_LOG_LEVEL",
    default: "info",
    description: "One of fatal, error, warn, info, debug, trace, silent. Logs are JSON lines on stderr.",
  },
  {
    variable: "K8SDEPLOY_KEEPALIVE_SECONDS",
    default: "30",
    description:
      "Interval of the server's HTTP/2 keepalive pings, 10..55: below the usual 60 s idle cut of load balancers.",
  },
  {
    variable: "K8SDEPLOY_KEEPALIVE_MIN_SECONDS",
    default: "20",
    description:
      "Minimum interval between client keepalive pings, 1..3600. A client that pings more often (3 strikes) gets GOAWAY ENHANCE_YOUR_CALM `too_many_pings` and is disconnected.",
  },
  {
    variable: "K8SDEPLOY_MAX_CONNECTION_AGE_SECONDS",
    default: "1800",
    description:
      "Connections older than this (±10 %) get a GOAWAY so clients reconnect and spread over replicas. 0 = unlimited, else at least 60.",
  },
  {
    variable: "K8SDEPLOY_MAX_CONNECTION_AGE_GRACE_SECONDS",
    default: "30",
    description: "How long calls may continue after that GOAWAY before the connection is closed, 0..3600.",
  },
  {
    variable: "K8SDEPLOY_DESCRIBE_TIMEOUT_SECONDS",
    default: "10",
    description: "How long live cluster queries through an agent (namespaces, workloads) may take, 1..120.",
  },
  {
    variable: "K8SDEPLOY_QUEUE_TIMEOUT_SECONDS",
    default: "3600",
    description:
      "How long a deployment may wait for its agent (offline, busy) before it expires unapplied, when the caller sends no `queue_timeout_seconds` (the action sends how long it waits), 60..604800.",
  },
  {
    variable: "K8SDEPLOY_CORS_ORIGINS",
    default: "(empty)",
    description:
      "Comma-separated origins (`https://host[:port]`) allowed to call the HTTP APIs from a browser, or `*`. Empty: same origin only.",
  },
  {
    variable: "K8SDEPLOY_SHUTDOWN_GRACE_SECONDS",
    default: "10",
    description: "On SIGTERM/SIGINT, how long open calls may finish before connections are closed, 0..3600.",
  },
  {
    variable: "K8SDEPLOY_HTTP_TLS_CERT_FILE",
    default: "(unset: plain HTTP)",
    description:
      "PEM certificate (chain) for the HTTP server (dashboard, Connect API, probes, metrics), which then serves HTTPS only. Set together with K8SDEPLOY_HTTP_TLS_KEY_FILE; checked like the gRPC pair. Separate from K8SDEPLOY_TLS_CERT_FILE so that turning on gRPC TLS does not switch probes to HTTPS; point both at the same files to share one certificate.",
  },
  {
    variable: "K8SDEPLOY_HTTP_TLS_KEY_FILE",
    default: "(unset: plain HTTP)",
    description: "PEM private key matching K8SDEPLOY_HTTP_TLS_CERT_FILE.",
  },
  {
    variable: "K8SDEPLOY_GITHUB_SERVER_URL",
    default: "https://github.com",
    description:
      "Origin (`https://host[:port]`, no path) of the GitHub server the dashboard links repositories, commits and actors to; set it for GitHub Enterprise Server. Run links on other hosts are shown as text.",
  },
  {
    variable: "K8SDEPLOY_AUTH_FAILURES_PER_MINUTE",
    default: "30",
    description:
      "Failed authentications (wrong or missing admin token, deploy key or agent token) allowed per client address per minute, 1..100000, on both ports; past it that address gets RESOURCE_EXHAUSTED for 60 s. Counted per replica.",
  },
  // Webhook notifications.
  {
    variable: "K8SDEPLOY_WEBHOOK_KEY",
    default: "(unset: stored as plain text)",
    description:
      "32 random bytes, base64 (`openssl rand -base64 32`), that encrypt webhook URLs and signing secrets in the store (AES-256-GCM). Keep it in a Secret, the same on every replica; values stored under another key are refused (the delivery fails saying so). Never logged.",
  },
  {
    variable: "K8SDEPLOY_WEBHOOK_MAX_ATTEMPTS",
    default: "8",
    description:
      "Attempts per webhook delivery, 1..50, before it is given up (network errors, timeouts, 408, 425, 429 and 5xx are retried; other answers are not).",
  },
  {
    variable: "K8SDEPLOY_WEBHOOK_BACKOFF_SECONDS",
    default: "10",
    description:
      "Delay before the second attempt, 1..3600; each further one waits three times longer, at most an hour, ±20 % (defaults: 10 s, 30 s, 90 s, … about 2 h for 8 attempts). A longer Retry-After is honoured.",
  },
  {
    variable: "K8SDEPLOY_WEBHOOK_TIMEOUT_SECONDS",
    default: "10",
    description: "Seconds, 1..60, a webhook receiver has to answer one attempt.",
  },
  {
    variable: "K8SDEPLOY_WEBHOOK_ALLOW_LOOPBACK",
    default: "false",
    description:
      "`true` lets webhooks call loopback addresses (127.0.0.0/8, ::1, localhost), e.g. a receiver beside the orchestrator. Link-local (cloud metadata), unspecified, multicast and broadcast addresses are always refused; private ranges are allowed.",
  },
  {
    variable: "K8SDEPLOY_AGENT_RELEASE_VERSION",
    default: "(unset: no release channel)",
    description:
      "The current agent release's version (semver). Agents announcing an older version are shown as behind. Set together with K8SDEPLOY_AGENT_RELEASE_IMAGE, or use K8SDEPLOY_AGENT_RELEASE_FILE.",
  },
  {
    variable: "K8SDEPLOY_AGENT_RELEASE_IMAGE",
    default: "(unset)",
    description:
      "The current agent release's image, pinned by digest (`repo[:tag]@sha256:…`) so every cluster runs exactly the same build.",
  },
  {
    variable: "K8SDEPLOY_AGENT_RELEASE_FILE",
    default: "(unset)",
    description:
      'A release manifest instead of the two variables: JSON `{"version": "…", "image": "…@sha256:…"}`, read at start and again whenever it changes (e.g. a mounted ConfigMap). Must be valid at start.',
  },
  {
    variable: "K8SDEPLOY_AGENT_AUTO_UPDATE",
    default: "true",
    description:
      "`true`: agents that opted in (K8SDEPLOY_AUTO_UPDATE=true on the agent) and are behind the release are updated automatically, never during a running deploy. `false`: they are only shown as behind (update with the dashboard's button or `k8sdeploy agent update`).",
  },
  {
    variable: "K8SDEPLOY_AGENT_UPDATE_CONCURRENCY",
    default: "1",
    description: "At most this many agent updates (automatic or not) run at the same time, across replicas, 1..100.",
  },
  {
    variable: "K8SDEPLOY_AGENT_UPDATE_READY_SECONDS",
    default: "180",
    description:
      "How long the new agent pod of an update may take to become Ready (connected) before the agent restores its previous image, 5..1800.",
  },
  {
    variable: "K8SDEPLOY_AGENT_UPDATE_INTERVAL_SECONDS",
    default: "60",
    description: "How often the automatic rollout looks for agents to update, 1..3600.",
  },
  {
    variable: "K8SDEPLOY_OIDC_ISSUER",
    default: "https://token.actions.githubusercontent.com",
    description:
      "Issuer of the GitHub Actions ID tokens that trust policies accept instead of deploy keys (GitHub OIDC). GitHub Enterprise Server: `https://<host>/_services/token`. Its signing keys are found through `<issuer>/.well-known/openid-configuration` and cached. `https://` only (`http://` for a loopback host, for tests).",
  },
  {
    variable: "K8SDEPLOY_PUBLIC_URL",
    default: "(unset: snippets show a placeholder)",
    description:
      "The orchestrator's gRPC URL as agents and GitHub Actions reach it (`https://deploy.example.com:443`, or `http://…` on a private network). The dashboard puts it into its install and workflow snippets (via `/dashboard-config.json`); it never guesses one from the address it was opened at.",
  },
];

/** configTable as markdown (orchestrator/CONFIG.md), with the table padded the way biome formats it. */
export function configMarkdown(): string {
  const cell = (s: string) => s.replaceAll("|", "\\|");
  const rows = [
    ["Variable", "Default", "Description"],
    ...configTable.map((r) => [`\`${r.variable}\``, cell(r.default), cell(r.description)]),
  ];
  const widths = [0, 1, 2].map((i) => Math.max(3, ...rows.map((r) => r[i]?.length ?? 0)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ")} |`;
  return [
    "# Orchestrator configuration",
    "",
    "<!-- Generated from `configTable` in orchestrator/src/config.ts; config.test.ts checks it. -->",
    "",
    "The orchestrator (`k8sdeploy serve`) reads only these environment variables. An empty value counts as unset.",
    "Invalid values stop it at start with a message naming the variable.",
    "",
    line(rows[0] ?? []),
    line(widths.map((w) => "-".repeat(w))),
    ...rows.slice(1).map(line),
    "",
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------
// Field parsers. Each reports its own problem; the variable name is added from the issue path.

/** The part of zod's refinement context the parsers use. */
interface Ctx {
  addIssue(issue: { code: "custom"; message: string }): void;
}

function blank(raw: string | undefined): raw is undefined {
  return raw === undefined || raw.trim() === "";
}

function fail(ctx: Ctx, message: string): never {
  ctx.addIssue({ code: "custom", message });
  return z.NEVER;
}

const q = (s: string) => JSON.stringify(s);

/** The URL, or undefined when it does not parse (URL.parse is Node 22+; the orchestrator also runs on Node 20). */
function parseUrl(v: string): URL | undefined {
  try {
    return new URL(v);
  } catch {
    return undefined;
  }
}

const hasCredentials = (url: URL) => url.username !== "" || url.password !== "";

/** Parses `host:port` / `[v6]:port`. Exported for the CLI and tests. */
export function parseListen(raw: string): ListenAddress | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(raw.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { host: (m[1] ?? m[2])!, port };
}

/** `host:port` for display and dialing (brackets IPv6 hosts). */
export function formatAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

const envString = z.string().optional();

const listen = (def: string) =>
  envString.transform((raw, ctx): ListenAddress => {
    const value = blank(raw) ? def : raw;
    return parseListen(value) ?? fail(ctx, `${q(value)} is not host:port (e.g. 0.0.0.0:50051 or [::]:50051)`);
  });

const integer = (def: number, min: number, max: number, rule?: (n: number) => string | undefined) =>
  envString.transform((raw, ctx): number => {
    if (blank(raw)) return def;
    const v = raw.trim();
    if (!/^\d+$/.test(v)) return fail(ctx, `${q(raw)} is not a whole number of seconds`);
    const n = Number(v);
    const custom = rule?.(n);
    if (custom) return fail(ctx, custom);
    if (n < min || n > max) return fail(ctx, `${n} is out of range ${min}..${max}`);
    return n;
  });

// setTimeout cannot wait longer than 2^31-1 ms.
const MAX_TIMER_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

const redisUrl = envString.transform((raw, ctx): string | undefined => {
  if (blank(raw)) return undefined;
  const v = raw.trim();
  let target: RedisTarget;
  try {
    target = redisTarget(v);
  } catch (e) {
    // Never echo the value: it may hold a password.
    return fail(ctx, e instanceof RedisUrlError ? e.message : "is not a valid Redis URL");
  }
  if (target.kind === "single") {
    const url = new URL(v);
    if (!url.hostname) return fail(ctx, "has no host");
    if (url.pathname && url.pathname !== "/" && !/^\/\d+$/.test(url.pathname)) {
      return fail(ctx, `path ${q(url.pathname)} is not a database number`);
    }
  }
  return v;
});

/** Unset: 1 for a Redis Cluster (every master should have a replica), else 0. */
const waitReplicas = envString.transform((raw, ctx): number | undefined => {
  if (blank(raw)) return undefined;
  const v = raw.trim();
  if (!/^\d+$/.test(v) || Number(v) > 16) return fail(ctx, `${q(raw)} is not a whole number 0..16`);
  return Number(v);
});

const ADMIN_TOKEN_MIN = 24;

/** Why a token is unacceptable, or undefined. Never includes the token. */
function adminTokenProblem(token: string): string | undefined {
  if (token.length < ADMIN_TOKEN_MIN) return `must be at least ${ADMIN_TOKEN_MIN} characters (has ${token.length})`;
  if (token.length > 4096) return "must be at most 4096 characters";
  if (!/^[\x21-\x7e]+$/.test(token)) return "must be printable ASCII without spaces";
  return undefined;
}

const adminToken = envString.transform((raw, ctx): string | undefined => {
  if (blank(raw)) return undefined;
  const problem = adminTokenProblem(raw.trim());
  return problem ? fail(ctx, problem) : raw.trim();
});

const optionalPath = envString.transform((raw) => (blank(raw) ? undefined : path.resolve(raw.trim())));

const githubServerUrl = envString.transform((raw, ctx): string => {
  if (blank(raw)) return "https://github.com";
  const v = raw.trim();
  const url = parseUrl(v);
  if (
    !url ||
    (url.protocol !== "https:" && url.protocol !== "http:") ||
    hasCredentials(url) ||
    url.origin.toLowerCase() !== v.replace(/\/$/, "").toLowerCase()
  ) {
    return fail(ctx, `${q(v)} is not an origin like https://github.example.com (scheme and host, no path)`);
  }
  return url.origin;
});

const oidcIssuer = envString.transform((raw, ctx): string => {
  if (blank(raw)) return "https://token.actions.githubusercontent.com";
  const v = raw.trim().replace(/\/+$/, "");
  const url = parseUrl(v);
  const loopback = url !== undefined && ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname);
  if (
    !url ||
    !(url.protocol === "https:" || (url.protocol === "http:" && loopback)) ||
    hasCredentials(url) ||
    url.search !== "" ||
    url.hash !== ""
  ) {
    return fail(
      ctx,
      `${q(v)} is not an issuer URL like https://token.actions.githubusercontent.com or https://ghe.example.com/_services/token (https, no query; http only on a loopback host)`,
    );
  }
  return v;
});

const publicUrl = envString.transform((raw, ctx): string | undefined => {
  if (blank(raw)) return undefined;
  const v = raw.trim().replace(/\/+$/, "");
  const url = parseUrl(v);
  if (
    !url ||
    (url.protocol !== "https:" && url.protocol !== "http:") ||
    hasCredentials(url) ||
    (url.pathname !== "/" && url.pathname !== "") ||
    url.search !== "" ||
    url.hash !== ""
  ) {
    return fail(ctx, `${q(v)} is not a gRPC URL like https://deploy.example.com:443 (scheme, host, port; no path)`);
  }
  return `${url.protocol}//${url.host}`;
});

const replicaId = envString.transform((raw, ctx): string => {
  if (blank(raw)) return `${hostname() || "orchestrator"}-${randomBytes(3).toString("hex")}`;
  const v = raw.trim();
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(v)) {
    return fail(ctx, `${q(raw)} must be 1..128 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
  return v;
});

const logLevel = envString.transform((raw, ctx): LogLevel => {
  if (blank(raw)) return "info";
  const v = raw.trim().toLowerCase();
  return (logLevels as readonly string[]).includes(v)
    ? (v as LogLevel)
    : fail(ctx, `${q(raw)} is not one of ${logLevels.join(", ")}`);
});

const corsOrigins = envString.transform((raw, ctx): string[] => {
  if (blank(raw)) return [];
  const items = raw
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (items.includes("*")) {
    return items.length === 1 ? ["*"] : fail(ctx, "`*` cannot be combined with other origins");
  }
  const out: string[] = [];
  for (const item of items) {
    const url = parseUrl(item);
    const origin = url && (url.protocol === "http:" || url.protocol === "https:") ? url.origin : undefined;
    if (!origin || origin.toLowerCase() !== item.replace(/\/$/, "").toLowerCase()) {
      return fail(ctx, `${q(item)} is not an origin like https://example.com or http://localhost:5173`);
    }
    if (!out.includes(origin)) out.push(origin);
  }
  return out;
});

// Webhook settings.

const webhookKey = envString.transform((raw, ctx): Buffer | undefined => {
  if (blank(raw)) return undefined;
  const v = raw.trim();
  // Never echo the value: it is a secret.
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(v))
    return fail(ctx, "is not base64 (create one with `openssl rand -base64 32`)");
  const key = Buffer.from(v.replaceAll("-", "+").replaceAll("_", "/"), "base64");
  return key.length === 32 ? key : fail(ctx, `must decode to 32 bytes, not ${key.length} (openssl rand -base64 32)`);
});

const count = (def: number, min: number, max: number) =>
  envString.transform((raw, ctx): number => {
    if (blank(raw)) return def;
    const v = raw.trim();
    if (!/^\d+$/.test(v)) return fail(ctx, `${q(raw)} is not a whole number`);
    const n = Number(v);
    return n < min || n > max ? fail(ctx, `${n} is out of range ${min}..${max}`) : n;
  });

const SEMVER_HINT = "a semantic version like 1.4.0";

/** Why a release is unusable, or undefined. */
export function releaseProblem(r: { version?: unknown; image?: unknown }): string | undefined {
  if (typeof r.version !== "string" || validSemver(r.version) === null) {
    return `version ${q(String(r.version ?? ""))} is not ${SEMVER_HINT}`;
  }
  if (typeof r.image !== "string") return "image is missing";
  try {
    const ref = parseImageReference(r.image);
    if (!ref.digest) return `image ${q(r.image)} is not pinned by digest (repo[:tag]@sha256:…)`;
  } catch (e) {
    return e instanceof InvalidImageReferenceError ? e.message : String(e);
  }
  return undefined;
}

/** Reads a release manifest file; throws with what is wrong. */
export function readReleaseFile(file: string): AgentReleaseInfo {
  let parsed: { version?: unknown; image?: unknown };
  try {
    parsed = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(
      (e as NodeJS.ErrnoException).code ? `${q(file)} cannot be read (${errText(e)})` : `${q(file)} is not JSON`,
    );
  }
  const problem = releaseProblem(parsed ?? {});
  if (problem) throw new Error(`${q(file)}: ${problem}`);
  return { version: String(parsed.version), image: String(parsed.image) };
}

const trimmed = envString.transform((raw) => (blank(raw) ? undefined : raw.trim()));

const bool = (def: boolean) =>
  envString.transform((raw, ctx): boolean => {
    if (blank(raw)) return def;
    const v = raw.trim().toLowerCase();
    if (v === "true") return true;
    if (v === "false") return false;
    return fail(ctx, `${q(raw)} is not true or false`);
  });

const envShape = {
  K8SDEPLOY_GRPC_LISTEN: listen("0.0.0.0:50051"),
  K8SDEPLOY_HTTP_LISTEN: listen("0.0.0.0:8080"),
  K8SDEPLOY_REDIS_URL: redisUrl,
  K8SDEPLOY_REDIS_WAIT_REPLICAS: waitReplicas,
  K8SDEPLOY_MAX_CONCURRENT_CALLS: integer(256, 1, 100_000),
  K8SDEPLOY_RETENTION_DAYS: integer(30, 1, 3650),
  K8SDEPLOY_MEMORY_MAX_DEPLOYMENTS: integer(10_000, 100, 10_000_000),
  K8SDEPLOY_ADMIN_TOKEN: adminToken,
  K8SDEPLOY_DATA_DIR: envString.transform((raw) => path.resolve(blank(raw) ? ".k8sdeploy" : raw.trim())),
  K8SDEPLOY_TLS_CERT_FILE: optionalPath,
  K8SDEPLOY_TLS_KEY_FILE: optionalPath,
  K8SDEPLOY_REPLICA_ID: replicaId,
  K8SDEPLOY_LOG_LEVEL: logLevel,
  K8SDEPLOY_KEEPALIVE_SECONDS: integer(30, 10, 55),
  K8SDEPLOY_KEEPALIVE_MIN_SECONDS: integer(20, 1, 3600),
  K8SDEPLOY_MAX_CONNECTION_AGE_SECONDS: integer(1800, 0, MAX_TIMER_SECONDS, (n) =>
    n !== 0 && n < 60 ? `${n} must be 0 (unlimited) or at least 60` : undefined,
  ),
  K8SDEPLOY_MAX_CONNECTION_AGE_GRACE_SECONDS: integer(30, 0, 3600),
  K8SDEPLOY_DESCRIBE_TIMEOUT_SECONDS: integer(10, 1, 120),
  K8SDEPLOY_QUEUE_TIMEOUT_SECONDS: integer(3600, 60, 604_800),
  K8SDEPLOY_CORS_ORIGINS: corsOrigins,
  K8SDEPLOY_SHUTDOWN_GRACE_SECONDS: integer(10, 0, 3600),
  K8SDEPLOY_HTTP_TLS_CERT_FILE: optionalPath,
  K8SDEPLOY_HTTP_TLS_KEY_FILE: optionalPath,
  K8SDEPLOY_GITHUB_SERVER_URL: githubServerUrl,
  K8SDEPLOY_AUTH_FAILURES_PER_MINUTE: integer(30, 1, 100_000),
  K8SDEPLOY_WEBHOOK_KEY: webhookKey,
  K8SDEPLOY_WEBHOOK_MAX_ATTEMPTS: count(8, 1, 50),
  K8SDEPLOY_WEBHOOK_BACKOFF_SECONDS: integer(10, 1, 3600),
  K8SDEPLOY_WEBHOOK_TIMEOUT_SECONDS: integer(10, 1, 60),
  K8SDEPLOY_WEBHOOK_ALLOW_LOOPBACK: bool(false),
  K8SDEPLOY_AGENT_RELEASE_VERSION: trimmed,
  K8SDEPLOY_AGENT_RELEASE_IMAGE: trimmed,
  K8SDEPLOY_AGENT_RELEASE_FILE: optionalPath,
  K8SDEPLOY_AGENT_AUTO_UPDATE: bool(true),
  K8SDEPLOY_AGENT_UPDATE_CONCURRENCY: integer(1, 1, 100),
  K8SDEPLOY_AGENT_UPDATE_READY_SECONDS: integer(180, 5, 1800),
  K8SDEPLOY_AGENT_UPDATE_INTERVAL_SECONDS: integer(60, 1, 3600),
  K8SDEPLOY_OIDC_ISSUER: oidcIssuer,
  K8SDEPLOY_PUBLIC_URL: publicUrl,
};

/** The variables loadConfig reads (configTable must list exactly these). */
export const configVariables: readonly string[] = Object.keys(envShape);

const envSchema = z.object(envShape).superRefine((env, ctx) => {
  const issue = (variable: string, message: string) => ctx.addIssue({ code: "custom", path: [variable], message });
  checkTlsPair(env.K8SDEPLOY_TLS_CERT_FILE, env.K8SDEPLOY_TLS_KEY_FILE, "K8SDEPLOY_TLS", issue);
  checkTlsPair(env.K8SDEPLOY_HTTP_TLS_CERT_FILE, env.K8SDEPLOY_HTTP_TLS_KEY_FILE, "K8SDEPLOY_HTTP_TLS", issue);
  const version = env.K8SDEPLOY_AGENT_RELEASE_VERSION;
  const image = env.K8SDEPLOY_AGENT_RELEASE_IMAGE;
  const releaseFile = env.K8SDEPLOY_AGENT_RELEASE_FILE;
  if (releaseFile !== undefined && (version !== undefined || image !== undefined)) {
    issue("K8SDEPLOY_AGENT_RELEASE_FILE", "set either it or K8SDEPLOY_AGENT_RELEASE_VERSION/_IMAGE, not both");
  } else if ((version === undefined) !== (image === undefined)) {
    issue(
      version === undefined ? "K8SDEPLOY_AGENT_RELEASE_VERSION" : "K8SDEPLOY_AGENT_RELEASE_IMAGE",
      "must be set together with the other (both or neither)",
    );
  } else if (version !== undefined) {
    const problem = releaseProblem({ version, image });
    if (problem)
      issue(
        problem.startsWith("version") ? "K8SDEPLOY_AGENT_RELEASE_VERSION" : "K8SDEPLOY_AGENT_RELEASE_IMAGE",
        problem,
      );
  } else if (releaseFile !== undefined) {
    try {
      readReleaseFile(releaseFile);
    } catch (e) {
      issue("K8SDEPLOY_AGENT_RELEASE_FILE", (e as Error).message);
    }
  }
});

/** Both or neither of `<prefix>_CERT_FILE` and `<prefix>_KEY_FILE`; the files parse and match. */
function checkTlsPair(
  cert: string | undefined,
  key: string | undefined,
  prefix: string,
  issue: (variable: string, message: string) => void,
): void {
  const certVar = `${prefix}_CERT_FILE`;
  const keyVar = `${prefix}_KEY_FILE`;
  if ((cert === undefined) !== (key === undefined)) {
    const [missing, present] = cert ? [keyVar, certVar] : [certVar, keyVar];
    issue(missing, `must be set when ${present} is set (both or neither)`);
    return;
  }
  if (!cert || !key) return;
  const certPem = readPem(certVar, cert, issue);
  const keyPem = readPem(keyVar, key, issue);
  let x509: X509Certificate | undefined;
  if (certPem !== undefined) {
    try {
      x509 = new X509Certificate(certPem);
    } catch (e) {
      issue(certVar, `${q(cert)} is not a PEM certificate (${errText(e)})`);
    }
  }
  if (keyPem !== undefined) {
    try {
      const privateKey = createPrivateKey(keyPem);
      if (x509 && !x509.checkPrivateKey(privateKey)) {
        issue(keyVar, `${q(key)} does not match the certificate in ${certVar}`);
      }
    } catch (e) {
      issue(keyVar, `${q(key)} is not a PEM private key (${errText(e)})`);
    }
  }
}

function errText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err?.code ?? err?.message ?? String(e);
}

function readPem(
  variable: string,
  file: string,
  issue: (variable: string, message: string) => void,
): string | undefined {
  try {
    if (!fs.statSync(file).isFile()) {
      issue(variable, `${q(file)} is not a file`);
      return undefined;
    }
    return fs.readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    issue(variable, code === "ENOENT" ? `${q(file)} does not exist` : `${q(file)} cannot be read (${errText(e)})`);
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------

/** Name of the generated admin token file inside the data directory. */
export const ADMIN_TOKEN_FILE = "admin-token";

/**
 * Reads and validates the configuration. Throws ConfigError naming each bad variable.
 *
 * Side effect: when K8SDEPLOY_ADMIN_TOKEN is unset, reuses `<dataDir>/admin-token` or creates it
 * (directory mode 0700, file mode 0600) with a fresh random token.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => ({ variable: String(i.path[0] ?? "K8SDEPLOY_*"), message: i.message })),
    );
  }
  const e = parsed.data;
  const cert = e.K8SDEPLOY_TLS_CERT_FILE;
  const key = e.K8SDEPLOY_TLS_KEY_FILE;
  const token = e.K8SDEPLOY_ADMIN_TOKEN
    ? { adminToken: e.K8SDEPLOY_ADMIN_TOKEN, adminTokenSource: { kind: "env" } as const }
    : adminTokenFromFile(e.K8SDEPLOY_DATA_DIR);
  return {
    grpcListen: e.K8SDEPLOY_GRPC_LISTEN,
    httpListen: e.K8SDEPLOY_HTTP_LISTEN,
    redisUrl: e.K8SDEPLOY_REDIS_URL,
    redisWaitReplicas:
      e.K8SDEPLOY_REDIS_WAIT_REPLICAS ??
      (e.K8SDEPLOY_REDIS_URL && redisTarget(e.K8SDEPLOY_REDIS_URL).kind === "cluster" ? 1 : 0),
    maxConcurrentCalls: e.K8SDEPLOY_MAX_CONCURRENT_CALLS,
    retentionSeconds: e.K8SDEPLOY_RETENTION_DAYS * 86_400,
    memoryMaxDeployments: e.K8SDEPLOY_MEMORY_MAX_DEPLOYMENTS,
    ...token,
    dataDir: e.K8SDEPLOY_DATA_DIR,
    tls: cert && key ? { certFile: cert, keyFile: key } : undefined,
    replicaId: e.K8SDEPLOY_REPLICA_ID,
    logLevel: e.K8SDEPLOY_LOG_LEVEL,
    keepaliveSeconds: e.K8SDEPLOY_KEEPALIVE_SECONDS,
    keepaliveMinSeconds: e.K8SDEPLOY_KEEPALIVE_MIN_SECONDS,
    maxConnectionAgeSeconds: e.K8SDEPLOY_MAX_CONNECTION_AGE_SECONDS,
    maxConnectionAgeGraceSeconds: e.K8SDEPLOY_MAX_CONNECTION_AGE_GRACE_SECONDS,
    describeTimeoutSeconds: e.K8SDEPLOY_DESCRIBE_TIMEOUT_SECONDS,
    queueTimeoutSeconds: e.K8SDEPLOY_QUEUE_TIMEOUT_SECONDS,
    corsOrigins: e.K8SDEPLOY_CORS_ORIGINS,
    shutdownGraceSeconds: e.K8SDEPLOY_SHUTDOWN_GRACE_SECONDS,
    httpTls:
      e.K8SDEPLOY_HTTP_TLS_CERT_FILE && e.K8SDEPLOY_HTTP_TLS_KEY_FILE
        ? { certFile: e.K8SDEPLOY_HTTP_TLS_CERT_FILE, keyFile: e.K8SDEPLOY_HTTP_TLS_KEY_FILE }
        : undefined,
    githubServerUrl: e.K8SDEPLOY_GITHUB_SERVER_URL,
    authFailuresPerMinute: e.K8SDEPLOY_AUTH_FAILURES_PER_MINUTE,
    webhooks: {
      key: e.K8SDEPLOY_WEBHOOK_KEY,
      maxAttempts: e.K8SDEPLOY_WEBHOOK_MAX_ATTEMPTS,
      backoffSeconds: e.K8SDEPLOY_WEBHOOK_BACKOFF_SECONDS,
      timeoutSeconds: e.K8SDEPLOY_WEBHOOK_TIMEOUT_SECONDS,
      allowLoopback: e.K8SDEPLOY_WEBHOOK_ALLOW_LOOPBACK,
    },
    agentRelease:
      e.K8SDEPLOY_AGENT_RELEASE_FILE !== undefined
        ? { kind: "file", path: e.K8SDEPLOY_AGENT_RELEASE_FILE }
        : e.K8SDEPLOY_AGENT_RELEASE_VERSION !== undefined && e.K8SDEPLOY_AGENT_RELEASE_IMAGE !== undefined
          ? {
              kind: "env",
              release: { version: e.K8SDEPLOY_AGENT_RELEASE_VERSION, image: e.K8SDEPLOY_AGENT_RELEASE_IMAGE },
            }
          : undefined,
    agentAutoUpdate: e.K8SDEPLOY_AGENT_AUTO_UPDATE,
    agentUpdateConcurrency: e.K8SDEPLOY_AGENT_UPDATE_CONCURRENCY,
    agentUpdateReadySeconds: e.K8SDEPLOY_AGENT_UPDATE_READY_SECONDS,
    agentUpdateIntervalSeconds: e.K8SDEPLOY_AGENT_UPDATE_INTERVAL_SECONDS,
    oidcIssuer: e.K8SDEPLOY_OIDC_ISSUER,
    publicUrl: e.K8SDEPLOY_PUBLIC_URL,
  };
}

/** Reads `<dataDir>/admin-token`, creating it with a random token if it does not exist. */
function adminTokenFromFile(dataDir: string): Pick<Config, "adminToken" | "adminTokenSource"> {
  const file = path.join(dataDir, ADMIN_TOKEN_FILE);
  const problem = (message: string) =>
    new ConfigError([{ variable: "K8SDEPLOY_ADMIN_TOKEN", message: `unset, and ${message}` }]);
  let created = false;
  try {
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new ConfigError([
      { variable: "K8SDEPLOY_DATA_DIR", message: `${q(dataDir)} cannot be created (${errText(e)})` },
    ]);
  }
  try {
    // "wx": never overwrite a token another process (or replica on a shared volume) just wrote.
    fs.writeFileSync(file, `${randomBytes(32).toString("base64url")}\n`, { flag: "wx", mode: 0o600 });
    created = true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") {
      throw problem(
        `${q(file)} cannot be created (${errText(e)}): set it, or K8SDEPLOY_DATA_DIR to a writable directory`,
      );
    }
  }
  let token: string;
  let mode: number;
  try {
    token = fs.readFileSync(file, "utf8").trim();
    mode = fs.statSync(file).mode & 0o777;
  } catch (e) {
    throw problem(`${q(file)} cannot be read (${errText(e)})`);
  }
  const bad = adminTokenProblem(token);
  if (bad) throw problem(`the token in ${q(file)} ${bad}`);
  return { adminToken: token, adminTokenSource: { kind: "file", path: file, created, mode } };
}
