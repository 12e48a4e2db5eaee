// The one place the agent's configuration is read and validated. Everything comes from the
// environment (and files it names); see CONFIG.md, which documents CONFIG_VARIABLES below.
// Error messages name the variable and never contain the token.
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { z } from "zod";
import { parseServerList, type ServerEndpoint } from "./connection/servers.js";
import { PREFLIGHT_MODES, type PreflightMode } from "./registry/modes.js";

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface AgentConfig {
  /** Orchestrator endpoints, in failover order. */
  readonly servers: readonly ServerEndpoint[];
  /** The agent token (`kda_…`). Never log it. */
  readonly token: string;
  /** The agent id embedded in the token (`agt_…`, not secret), for messages; undefined if unknown. */
  readonly agentIdHint: string | undefined;
  /** Where the token came from (variable name), for messages. */
  readonly tokenSource: "K8SDEPLOY_AGENT_TOKEN" | "K8SDEPLOY_AGENT_TOKEN_FILE";
  /** PEM file with the private CA that signs the orchestrator's certificate, and its contents. */
  readonly caFile: string | undefined;
  readonly ca: Buffer | undefined;
  /** The user opted in to remote agent updates (announces CAPABILITY_SELF_UPDATE). */
  readonly autoUpdate: boolean;
  /** Name of the agent's own Deployment (for self-update). */
  readonly agentDeployment: string;
  /** Namespace the agent runs in. */
  readonly podNamespace: string;
  /** Pod name (downward API), if set. */
  readonly podName: string | undefined;
  /** POD_NAME, or the host name: identifies this process in `hello`. */
  readonly instance: string;
  readonly logLevel: LogLevel;
  /** KUBECONFIG as set (client-node reads it itself; in a pod the service account is used). */
  readonly kubeconfig: string | undefined;
  /** Where the probe endpoint (/livez, /readyz) listens; undefined: no endpoint. */
  readonly healthListen: { readonly host: string; readonly port: number } | undefined;
  /** Agent version (semver): K8sDeploy's version, from the root package.json. */
  readonly agentVersion: string;
  /**
   * Lower-case proxy variables to add to the environment for grpc-js, which reads only
   * `grpc_proxy`/`https_proxy`/`http_proxy` and `no_grpc_proxy`/`no_proxy`: upper-case
   * HTTPS_PROXY/HTTP_PROXY/NO_PROXY are mirrored here when the lower-case ones are unset.
   */
  readonly grpcProxyEnv: Readonly<Record<string, string>>;
  /** Image pre-flight: lenient (warn when the registry is unreachable), strict, or off. */
  readonly preflight: PreflightMode;
  /** Whole pre-flight budget per deploy, seconds. */
  readonly preflightTimeoutSeconds: number;
  /** The agent's own dockerconfigjson Secret (in podNamespace), tried after the workload's. */
  readonly registrySecret: string | undefined;
  /** Extra CA certificates (PEM) for registries, and the file they came from. */
  readonly registryCaFile: string | undefined;
  readonly registryCa: string | undefined;
  /** `host[:port]` of registries that may be reached over plain HTTP. */
  readonly insecureRegistries: readonly string[];
}

export interface ConfigVariable {
  readonly name: string;
  readonly required: "yes" | "no" | "one of";
  readonly default?: string;
  readonly secret?: boolean;
  readonly description: string;
}

/** Every variable the agent reads, for documentation (CONFIG.md is checked against it). */
export const CONFIG_VARIABLES: readonly ConfigVariable[] = [
  {
    name: "K8SDEPLOY_SERVER",
    required: "yes",
    description:
      "Orchestrator URL, or several separated by commas (failover in order, round robin). `https://host[:port]` uses TLS, `http://host[:port]` plaintext HTTP/2. No path.",
  },
  {
    name: "K8SDEPLOY_AGENT_TOKEN",
    required: "one of",
    secret: true,
    description: "The agent token (`kda_…`), sent as `authorization: Bearer …`. Never logged.",
  },
  {
    name: "K8SDEPLOY_AGENT_TOKEN_FILE",
    required: "one of",
    description: "Path of a file holding the token (e.g. a mounted Secret); surrounding whitespace is ignored.",
  },
  {
    name: "K8SDEPLOY_CA_FILE",
    required: "no",
    description: "PEM file with the CA certificate(s) to trust for `https://` servers instead of the system roots.",
  },
  {
    name: "K8SDEPLOY_AUTO_UPDATE",
    required: "no",
    default: "false",
    description: "`true` lets the orchestrator update the agent's own Deployment (announces SELF_UPDATE).",
  },
  {
    name: "K8SDEPLOY_AGENT_DEPLOYMENT",
    required: "no",
    default: "k8sdeploy-agent",
    description: "Name of the agent's own Deployment (in POD_NAMESPACE), patched by self-update.",
  },
  {
    name: "POD_NAMESPACE",
    required: "no",
    default: "k8sdeploy",
    description: "Namespace the agent runs in (downward API `metadata.namespace`).",
  },
  {
    name: "POD_NAME",
    required: "no",
    default: "host name",
    description: "Pod name (downward API `metadata.name`), reported as the agent instance.",
  },
  {
    name: "K8SDEPLOY_HEALTH_LISTEN",
    required: "no",
    default: "off",
    description:
      "`host:port` (IPv6 as `[::]:8081`) of the probe endpoint: GET /livez (the connection loop makes progress) and /readyz (connected to the orchestrator and the API server answered recently), 200 or 503 with JSON. Unset: no endpoint. The Kustomize base sets `0.0.0.0:8081`.",
  },
  {
    name: "K8SDEPLOY_PREFLIGHT",
    required: "no",
    default: "lenient",
    description:
      "Image pre-flight before a deploy patches anything: `lenient` (a registry that cannot be reached only warns), `strict` (it fails the deploy with REGISTRY_UNREACHABLE) or `off`.",
  },
  {
    name: "K8SDEPLOY_PREFLIGHT_TIMEOUT_SECONDS",
    required: "no",
    default: "10",
    description:
      "Budget of the whole image pre-flight of one deploy (1–60 s); connecting to a registry gives up after 3 s.",
  },
  {
    name: "K8SDEPLOY_REGISTRY_SECRET",
    required: "no",
    description:
      "Name of a `kubernetes.io/dockerconfigjson` Secret in POD_NAMESPACE with registry logins of the agent's own, tried after the workload's imagePullSecrets and its service account's.",
  },
  {
    name: "K8SDEPLOY_REGISTRY_CA_FILE",
    required: "no",
    description: "PEM file with CA certificate(s) trusted for registries, in addition to the system roots.",
  },
  {
    name: "K8SDEPLOY_INSECURE_REGISTRIES",
    required: "no",
    description:
      "Comma-separated `host[:port]` of registries that may be spoken to over plain HTTP (HTTPS is tried first). Loopback registries always may.",
  },
  {
    name: "K8SDEPLOY_LOG_LEVEL",
    required: "no",
    default: "info",
    description: `Log level: ${LOG_LEVELS.join(", ")}. Logs are JSON lines on stderr.`,
  },
  {
    name: "KUBECONFIG",
    required: "no",
    description:
      "Kubeconfig path(s) for running outside a cluster; inside a pod the service account is used. Read by @kubernetes/client-node.",
  },
  {
    name: "HTTPS_PROXY / https_proxy / grpc_proxy",
    required: "no",
    description:
      "`http://[user:pass@]proxy:port` to reach the orchestrator through an HTTP CONNECT proxy (grpc-js). grpc_proxy wins over https_proxy, then http_proxy.",
  },
  {
    name: "NO_PROXY / no_proxy / no_grpc_proxy",
    required: "no",
    description: "Comma-separated hosts that bypass the proxy.",
  },
];

/** The configuration is invalid; `problems` has one line per variable, each naming it. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid agent configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

export interface ConfigDeps {
  readFile?: (path: string) => Buffer;
  hostname?: () => string;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** `kda_` then at least 8 base64url characters (the orchestrator issues `kda_<agent id>_<secret>`). */
const TOKEN = /^kda_[A-Za-z0-9_-]{8,}$/;
/** The non-secret agent id inside an orchestrator-issued token. */
const TOKEN_AGENT_ID = /^kda_([a-z]{3}_[0-9a-z]+)_[A-Za-z0-9_-]{43}$/;

/** Unset and empty variables are the same thing (manifests often carry `value: ""`). */
const optional = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === "" ? undefined : v.trim()));

const schema = z.object({
  K8SDEPLOY_SERVER: optional.transform((v, ctx) => {
    if (v === undefined) {
      ctx.addIssue({ code: "custom", message: "is required (e.g. https://k8sdeploy.example.com:443)" });
      return z.NEVER;
    }
    try {
      const list = parseServerList(v);
      if (list.length === 0) throw new Error("lists no URL");
      return list;
    } catch (e) {
      ctx.addIssue({ code: "custom", message: (e as Error).message });
      return z.NEVER;
    }
  }),
  K8SDEPLOY_AGENT_TOKEN: optional,
  K8SDEPLOY_AGENT_TOKEN_FILE: optional,
  K8SDEPLOY_CA_FILE: optional,
  K8SDEPLOY_AUTO_UPDATE: optional.transform((v, ctx) => {
    if (v === undefined) return false;
    const lower = v.toLowerCase();
    if (lower === "true") return true;
    if (lower === "false") return false;
    ctx.addIssue({ code: "custom", message: `must be true or false, not "${v}"` });
    return z.NEVER;
  }),
  K8SDEPLOY_AGENT_DEPLOYMENT: optional.pipe(
    z
      .string()
      .regex(DNS_SUBDOMAIN, "must be a Kubernetes object name (lower-case DNS subdomain)")
      .default("k8sdeploy-agent"),
  ),
  POD_NAMESPACE: optional.pipe(
    z.string().regex(DNS_LABEL, "must be a Kubernetes namespace name (lower-case DNS label)").default("k8sdeploy"),
  ),
  POD_NAME: optional,
  K8SDEPLOY_HEALTH_LISTEN: optional.transform((v, ctx) => {
    if (v === undefined) return undefined;
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(v);
    const port = Number(m?.[3]);
    if (!m || port > 65535) {
      ctx.addIssue({ code: "custom", message: `must be host:port (e.g. 0.0.0.0:8081 or [::]:8081), not "${v}"` });
      return z.NEVER;
    }
    return { host: (m[1] ?? m[2]) as string, port };
  }),
  K8SDEPLOY_LOG_LEVEL: optional.pipe(
    z
      .enum(LOG_LEVELS, { error: (iss) => `must be one of ${LOG_LEVELS.join(", ")}, not "${String(iss.input)}"` })
      .default("info"),
  ),
  KUBECONFIG: optional,
  K8SDEPLOY_PREFLIGHT: optional.pipe(
    z
      .enum(PREFLIGHT_MODES, {
        error: (iss) => `must be one of ${PREFLIGHT_MODES.join(", ")}, not "${String(iss.input)}"`,
      })
      .default("lenient"),
  ),
  K8SDEPLOY_PREFLIGHT_TIMEOUT_SECONDS: optional.transform((v, ctx) => {
    if (v === undefined) return 10;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 60) {
      ctx.addIssue({ code: "custom", message: `must be a whole number of seconds from 1 to 60, not "${v}"` });
      return z.NEVER;
    }
    return n;
  }),
  K8SDEPLOY_REGISTRY_SECRET: optional.pipe(
    z.string().regex(DNS_SUBDOMAIN, "must be a Kubernetes Secret name (lower-case DNS subdomain)").optional(),
  ),
  K8SDEPLOY_REGISTRY_CA_FILE: optional,
  K8SDEPLOY_INSECURE_REGISTRIES: optional.transform((v, ctx) => {
    const list = (v ?? "")
      .split(",")
      .map((x) => x.trim().toLowerCase())
      .filter((x) => x !== "");
    for (const r of list) {
      if (!/^(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9.-]*[a-z0-9])?)(:[0-9]{1,5})?$/.test(r)) {
        ctx.addIssue({ code: "custom", message: `"${r}" is not a registry host[:port] (no scheme, no path)` });
        return z.NEVER;
      }
    }
    return list;
  }),
});

/** Reads and validates the configuration; throws ConfigError listing every problem. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, deps: ConfigDeps = {}): AgentConfig {
  const readFile = deps.readFile ?? ((p: string) => readFileSync(p));
  const problems: string[] = [];
  const parsed = schema.safeParse(env, { reportInput: false });
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      problems.push(`${issue.path.join(".")} ${issue.message}`);
    }
  }
  const raw = {
    token: env.K8SDEPLOY_AGENT_TOKEN?.trim() || undefined,
    tokenFile: env.K8SDEPLOY_AGENT_TOKEN_FILE?.trim() || undefined,
    caFile: env.K8SDEPLOY_CA_FILE?.trim() || undefined,
  };

  // Token: from the variable or from a file, validated without ever echoing it.
  let token: string | undefined;
  let tokenSource: AgentConfig["tokenSource"] = "K8SDEPLOY_AGENT_TOKEN";
  if (raw.token !== undefined && raw.tokenFile !== undefined) {
    problems.push("K8SDEPLOY_AGENT_TOKEN and K8SDEPLOY_AGENT_TOKEN_FILE are both set; set only one");
  } else if (raw.token !== undefined) {
    token = raw.token;
  } else if (raw.tokenFile !== undefined) {
    tokenSource = "K8SDEPLOY_AGENT_TOKEN_FILE";
    try {
      token = readFile(raw.tokenFile).toString("utf8").trim();
      if (token === "") problems.push(`K8SDEPLOY_AGENT_TOKEN_FILE ${raw.tokenFile} is empty`);
    } catch (e) {
      problems.push(`K8SDEPLOY_AGENT_TOKEN_FILE cannot read ${raw.tokenFile}: ${errorCode(e)}`);
    }
  } else {
    problems.push(
      "K8SDEPLOY_AGENT_TOKEN is required (or K8SDEPLOY_AGENT_TOKEN_FILE naming a file that holds it); create one with `k8sdeploy agent create --name <name>`",
    );
  }
  if (token !== undefined && token !== "" && !TOKEN.test(token)) {
    problems.push(
      token.startsWith("kda_")
        ? `${tokenSource} is not a valid agent token (too short, or characters other than letters, digits, _ and -); value not shown`
        : `${tokenSource} must start with "kda_" (an agent token, not a deploy key or another secret); value not shown`,
    );
  }

  let ca: Buffer | undefined;
  if (raw.caFile !== undefined) {
    try {
      ca = readFile(raw.caFile);
      if (!ca.toString("utf8").includes("-----BEGIN CERTIFICATE-----")) {
        problems.push(`K8SDEPLOY_CA_FILE ${raw.caFile} holds no PEM certificate`);
      }
    } catch (e) {
      problems.push(`K8SDEPLOY_CA_FILE cannot read ${raw.caFile}: ${errorCode(e)}`);
    }
  }

  const grpcProxyEnv = proxyEnv(env, problems);

  let registryCa: string | undefined;
  const registryCaFile = env.K8SDEPLOY_REGISTRY_CA_FILE?.trim() || undefined;
  if (registryCaFile !== undefined) {
    try {
      registryCa = readFile(registryCaFile).toString("utf8");
      if (!registryCa.includes("-----BEGIN CERTIFICATE-----")) {
        problems.push(`K8SDEPLOY_REGISTRY_CA_FILE ${registryCaFile} holds no PEM certificate`);
      }
    } catch (e) {
      problems.push(`K8SDEPLOY_REGISTRY_CA_FILE cannot read ${registryCaFile}: ${errorCode(e)}`);
    }
  }

  if (!parsed.success || problems.length > 0 || token === undefined) throw new ConfigError(problems);
  const v = parsed.data;
  if (ca !== undefined && !v.K8SDEPLOY_SERVER.some((s) => s.tls)) {
    // Harmless, but almost certainly a mistake worth failing loudly on.
    throw new ConfigError(["K8SDEPLOY_CA_FILE is set but no K8SDEPLOY_SERVER URL uses https://"]);
  }
  return {
    servers: v.K8SDEPLOY_SERVER,
    token,
    agentIdHint: TOKEN_AGENT_ID.exec(token)?.[1],
    tokenSource,
    caFile: raw.caFile,
    ca,
    autoUpdate: v.K8SDEPLOY_AUTO_UPDATE,
    agentDeployment: v.K8SDEPLOY_AGENT_DEPLOYMENT,
    podNamespace: v.POD_NAMESPACE,
    podName: v.POD_NAME,
    instance: v.POD_NAME ?? (deps.hostname ?? hostname)(),
    logLevel: v.K8SDEPLOY_LOG_LEVEL,
    kubeconfig: v.KUBECONFIG,
    healthListen: v.K8SDEPLOY_HEALTH_LISTEN,
    agentVersion: agentVersion(),
    grpcProxyEnv,
    preflight: v.K8SDEPLOY_PREFLIGHT,
    preflightTimeoutSeconds: v.K8SDEPLOY_PREFLIGHT_TIMEOUT_SECONDS,
    registrySecret: v.K8SDEPLOY_REGISTRY_SECRET,
    registryCaFile,
    registryCa,
    insecureRegistries: v.K8SDEPLOY_INSECURE_REGISTRIES,
  };
}

/** A loggable summary: no token, no proxy credentials. */
export function describeConfig(config: AgentConfig): Record<string, unknown> {
  return {
    servers: config.servers.map((s) => s.url),
    agentId: config.agentIdHint,
    tokenSource: config.tokenSource,
    caFile: config.caFile,
    autoUpdate: config.autoUpdate,
    agentDeployment: config.agentDeployment,
    namespace: config.podNamespace,
    instance: config.instance,
    logLevel: config.logLevel,
    kubeconfig: config.kubeconfig,
    health: config.healthListen ? `${config.healthListen.host}:${config.healthListen.port}` : undefined,
    agentVersion: config.agentVersion,
    proxy: config.grpcProxyEnv.grpc_proxy ? safeUrl(config.grpcProxyEnv.grpc_proxy) : undefined,
    preflight: config.preflight,
    registrySecret: config.registrySecret,
    registryCaFile: config.registryCaFile,
    insecureRegistries: config.insecureRegistries,
  };
}

function proxyEnv(env: NodeJS.ProcessEnv, problems: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const pick = (...names: string[]) => {
    for (const n of names) {
      const v = env[n]?.trim();
      if (v) return { name: n, value: v };
    }
    return undefined;
  };
  const proxy = pick("grpc_proxy", "https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY");
  if (proxy !== undefined) {
    let ok = false;
    try {
      const u = new URL(proxy.value.includes("://") ? proxy.value : `http://${proxy.value}`);
      ok = u.protocol === "http:" && u.hostname !== "";
    } catch {
      ok = false;
    }
    if (!ok) {
      problems.push(`${proxy.name} must be an http://host:port proxy URL (grpc-js supports HTTP CONNECT proxies only)`);
    } else if (!env.grpc_proxy) {
      out.grpc_proxy = proxy.value;
    }
  }
  const noProxy = pick("no_grpc_proxy", "no_proxy", "NO_PROXY");
  if (noProxy !== undefined && !env.no_grpc_proxy) out.no_grpc_proxy = noProxy.value;
  return out;
}

function safeUrl(value: string): string {
  try {
    const u = new URL(value.includes("://") ? value : `http://${value}`);
    return `${u.protocol}//${u.host}`;
  } catch {
    return "(invalid)";
  }
}

function errorCode(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err.code ?? err.message;
}

// The bundle (scripts/bundle.mjs) replaces this identifier with the version string; the tsc build
// and tests read the root package.json (one version for every part), two levels above src/ or dist/.
declare const __K8SDEPLOY_AGENT_VERSION__: string | undefined;

let cachedVersion: string | undefined;
export function agentVersion(): string {
  if (cachedVersion !== undefined) return cachedVersion;
  if (typeof __K8SDEPLOY_AGENT_VERSION__ === "string") {
    cachedVersion = __K8SDEPLOY_AGENT_VERSION__;
  } else {
    try {
      const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
        version?: unknown;
      };
      cachedVersion = typeof pkg.version === "string" ? pkg.version : "0.0.0-unknown";
    } catch {
      cachedVersion = "0.0.0-unknown";
    }
  }
  return cachedVersion;
}
