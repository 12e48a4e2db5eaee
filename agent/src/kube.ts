// Kubernetes access for the agent: configuration loading, API clients, and the mapping of API
// errors to the contract's Failure (reason + a message that says what we were doing).
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import type * as http from "node:http";
import * as https from "node:https";
import { type Failure, FailureReason } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import { AppsV1Api, type Cluster, CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { ExecutorError } from "./executor.js";

const SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/**
 * Loads the Kubernetes configuration the way kubectl does: the files in KUBECONFIG, else
 * ~/.kube/config, else the in-cluster service account. Throws when none is found (client-node
 * would otherwise silently fall back to http://localhost:8080).
 */
export function loadKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  const cluster = kc.getCurrentCluster();
  const fellBack =
    !process.env.KUBECONFIG &&
    !existsSync(SERVICE_ACCOUNT_TOKEN) &&
    cluster?.name === "cluster" &&
    cluster.server === "http://localhost:8080" &&
    kc.getCurrentUser()?.name === "user";
  if (!cluster || fellBack) {
    throw new Error(
      `no Kubernetes configuration found: set KUBECONFIG, provide ~/.kube/config, or run in a pod with a service account token (${SERVICE_ACCOUNT_TOKEN})`,
    );
  }
  return reuseConnections(kc);
}

const MAX_AGENTS = 4;
type AgentOptions = https.AgentOptions & { servername?: string };
type CreateAgent = (cluster: Cluster | null, options: AgentOptions) => http.Agent;

/**
 * client-node 1.4 builds a new https.Agent for every request (KubeConfig's private `createAgent`,
 * called per API call and per watch), so every call opens a TCP connection, handshakes TLS and
 * builds a TLS context from the CA and client certificate again: about 15 ms and a burst of
 * garbage per call on loopback. This hands out one keep-alive agent per distinct TLS setting
 * instead — the bearer token travels in headers, so a rotated service-account token is still used.
 * Proxies keep client-node's own agents. The library offers no option for this, hence the patch.
 */
export function reuseConnections(kc: KubeConfig): KubeConfig {
  const target = kc as unknown as { createAgent: CreateAgent };
  const original = target.createAgent.bind(kc);
  const agents = new Map<string, http.Agent>();
  target.createAgent = (cluster, options) => {
    if (!cluster || cluster.proxyUrl || !cluster.server.startsWith("https:")) return original(cluster, options);
    const identity = createHash("sha256");
    for (const part of [cluster.server, options.servername, options.rejectUnauthorized, options.passphrase]) {
      identity.update(`${String(part)}\0`);
    }
    for (const part of [options.ca, options.cert, options.key, options.pfx]) identity.update(`${material(part)}\0`);
    const key = identity.digest("hex");
    let agent = agents.get(key);
    if (!agent) {
      agent = new https.Agent({ ...options, keepAlive: true, keepAliveMsecs: 30_000, maxFreeSockets: 4 });
      agents.set(key, agent);
      // One cluster has one or two settings; a certificate that changes makes another. The oldest is
      // forgotten, not destroyed (a watch may still use it); the API server closes its idle sockets.
      if (agents.size > MAX_AGENTS) agents.delete(agents.keys().next().value as string);
    }
    return agent;
  };
  return kc;
}

function material(part: unknown): string {
  if (part === undefined || part === null) return "";
  if (Array.isArray(part)) return part.map(material).join(",");
  return Buffer.isBuffer(part) ? part.toString("base64") : String(part);
}

export interface KubeClients {
  kc: KubeConfig;
  apps: AppsV1Api;
  core: CoreV1Api;
}

export function createClients(kc: KubeConfig): KubeClients {
  return { kc, apps: kc.makeApiClient(AppsV1Api), core: kc.makeApiClient(CoreV1Api) };
}

/** One Kubernetes API operation, for error messages. */
export interface KubeOp {
  /** Kubernetes verb: get, list, watch, patch, delete… */
  verb: string;
  /** Resource with its API group, as RBAC names it: `deployments.apps`, `pods`, `namespaces`. */
  resource: string;
  /** Human name of the object kind, e.g. `deployment`; defaults to the resource. */
  kind?: string;
  name?: string;
  namespace?: string;
}

const GERUNDS: Record<string, string> = {
  get: "getting",
  list: "listing",
  watch: "watching",
  patch: "patching",
  update: "updating",
  create: "creating",
  delete: "deleting",
};

/** What we were doing, e.g. `patching deployment "web" in namespace "default"`. */
export function describeOp(op: KubeOp): string {
  const verb = GERUNDS[op.verb] ?? op.verb;
  const what = op.name ? `${op.kind ?? op.resource} "${op.name}"` : op.resource;
  return `${verb} ${what}${op.namespace ? ` in namespace "${op.namespace}"` : ""}`;
}

const WORKLOAD_RESOURCES = new Set(["deployments.apps", "statefulsets.apps", "daemonsets.apps"]);

/** The parts of a client-node / fetch error we use. */
export interface ApiErrorInfo {
  /** HTTP status, when the API answered. */
  code?: number;
  /** Status.reason (Forbidden, NotFound, Conflict, Invalid, Expired…). */
  reason?: string;
  /** Status.message, or the error's own message; never includes headers or credentials. */
  message: string;
}

/** Extracts status code and Status message from an ApiException, a watch error or a fetch error. */
export function apiErrorInfo(err: unknown): ApiErrorInfo {
  if (err === null || typeof err !== "object") return { message: String(err) };
  const e = err as { code?: unknown; statusCode?: unknown; body?: unknown; message?: unknown };
  const code = typeof e.code === "number" ? e.code : typeof e.statusCode === "number" ? e.statusCode : undefined;
  let status: { message?: unknown; reason?: unknown } | undefined;
  if (typeof e.body === "string") {
    try {
      status = JSON.parse(e.body);
    } catch {
      status = e.body.length > 0 ? { message: e.body.slice(0, 500) } : undefined;
    }
  } else if (e.body && typeof e.body === "object") {
    status = e.body as typeof status;
  }
  const info: ApiErrorInfo = { message: "" };
  if (code !== undefined) info.code = code;
  if (typeof status?.reason === "string") info.reason = status.reason;
  if (typeof status?.message === "string" && status.message.length > 0) {
    info.message = status.message;
  } else if (code !== undefined) {
    // ApiException's own message embeds the response headers: do not pass it on.
    info.message = `HTTP ${code}${typeof e.message === "string" && !e.message.startsWith("HTTP-Code") ? ` ${e.message}` : ""}`;
  } else {
    info.message = typeof e.message === "string" ? e.message : String(err);
  }
  return info;
}

export function httpStatus(err: unknown): number | undefined {
  return apiErrorInfo(err).code;
}

/**
 * Maps an error from a Kubernetes call to a Failure:
 * 403 → PERMISSION_DENIED (the API's message names the verb and resource, prefixed with what we
 * were doing); 404 of a workload → WORKLOAD_NOT_FOUND; anything else → KUBERNETES_API.
 * An ExecutorError keeps its reason and message.
 */
export function toFailure(err: unknown, op: KubeOp): Failure {
  if (err instanceof ExecutorError) return { reason: err.reason, message: err.message };
  const info = apiErrorInfo(err);
  const doing = describeOp(op);
  const ns = op.namespace ? ` in namespace "${op.namespace}"` : "";
  switch (info.code) {
    case 403:
      return {
        reason: FailureReason.FAILURE_REASON_PERMISSION_DENIED,
        message: `${doing}: ${
          info.message && !info.message.startsWith("HTTP ")
            ? info.message
            : `forbidden: the agent may not ${op.verb} ${op.resource}${ns}`
        }`,
      };
    case 404:
      if (WORKLOAD_RESOURCES.has(op.resource) && op.name) {
        return {
          reason: FailureReason.FAILURE_REASON_WORKLOAD_NOT_FOUND,
          message: `${op.kind ?? op.resource} "${op.name}" not found${ns}`,
        };
      }
      break;
    case 401:
      return {
        reason: FailureReason.FAILURE_REASON_KUBERNETES_API,
        message: `${doing}: the Kubernetes API rejected the agent's credentials (401 Unauthorized)`,
      };
  }
  const detail = info.code !== undefined && !info.message.startsWith("HTTP ") ? ` (HTTP ${info.code})` : "";
  return { reason: FailureReason.FAILURE_REASON_KUBERNETES_API, message: `${doing}: ${info.message}${detail}` };
}

/** toFailure as a throwable ExecutorError (for describe look-ups). */
export function toExecutorError(err: unknown, op: KubeOp): ExecutorError {
  if (err instanceof ExecutorError) return err;
  const f = toFailure(err, op);
  return new ExecutorError(f.reason, f.message);
}
