// Reads and validates every input of the action in one place.
//
// Outside GitHub (local runs, tests, @github/local-action with a partial .env) the defaults of
// action.yml are not applied, so an unset input is treated here as its documented default.
import { createHash, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { InvalidImageReferenceError, parseImageReference } from "@k8sdeploy/proto/contract/image-ref.js";
import {
  DEFAULT_TIMEOUT_SECONDS,
  MAX_CONTAINERS,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  MAX_QUEUE_TIMEOUT_SECONDS,
  MAX_TIMEOUT_SECONDS,
} from "@k8sdeploy/proto/contract/limits.js";
import { validateDns1123Label, validateDns1123Subdomain } from "@k8sdeploy/proto/contract/names.js";
import { WorkloadKind } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";

/** An input that is missing or malformed. The message names the input and says what is allowed. */
export class InputError extends Error {
  constructor(
    readonly input: string,
    message: string,
  ) {
    super(message);
    this.name = "InputError";
  }
}

/** Where to reach the orchestrator. */
export interface ServerAddress {
  /** The URL as given, normalised (`https://host:port`). */
  url: string;
  /** gRPC target, `host:port`. */
  target: string;
  /** True for https:// (TLS), false for http:// (plaintext). */
  tls: boolean;
}

export type KindName = "Deployment" | "StatefulSet" | "DaemonSet";

export interface ActionInputs {
  server: ServerAddress;
  /** Deploy key. Never log it. Empty when the job authenticates with a GitHub OIDC token instead. */
  key: string;
  /**
   * Set when `key` is empty and the job may request an ID token (`permissions: id-token: write`):
   * the audience to ask for (`audience` input, default `k8sdeploy`).
   */
  oidcAudience?: string;
  namespace: string;
  /** Workload name (`deployment` input). */
  workload: string;
  kind: WorkloadKind;
  kindName: KindName;
  /** Containers to change; empty means every container whose image repository matches. */
  containers: string[];
  image: string;
  wait: boolean;
  timeoutSeconds: number;
  /** How long the step waits for the agent to start the deployment (and the deployment may wait). */
  queueTimeoutSeconds: number;
  /** True when `queue-timeout` was given (with wait: false only then is it sent). */
  queueTimeoutSet: boolean;
  rollbackOnFailure: boolean;
  /** Ask the agent to write the image pinned by the digest it resolves (`pin-digest`). */
  pinDigest: boolean;
  /** PEM of a private CA, read from `ca-file`. */
  ca?: Buffer;
  caFile?: string;
  /** Never empty: the input, one derived from the workflow run, or a random one for this run. */
  idempotencyKey: string;
  /** Report to GitHub (commit status or deployment): only when `github-token` is set. */
  github?: GitHubReport;
}

/** What `github-token`, `github-status` and `github-environment` ask for. */
export interface GitHubReport {
  /** Never log it (masked by main.ts). */
  token: string;
  kind: "commit" | "deployment";
  /** Deployment environment (github-status: deployment); default the namespace. */
  environment: string;
  /** Commit status context: `k8sdeploy/<namespace>/<workload>`. */
  context: string;
  owner: string;
  repo: string;
  sha: string;
}

/** Reads one input by its action.yml name; returns "" when it is unset. */
export type InputGetter = (name: string) => string;

/** Reads inputs the way the runner passes them: `INPUT_<NAME>` upper-cased, dashes kept. */
export function inputsFromEnv(env: NodeJS.ProcessEnv = process.env): InputGetter {
  return (name) => (env[`INPUT_${name.replace(/ /g, "_").toUpperCase()}`] ?? "").trim();
}

const KINDS = new Map<string, { kind: WorkloadKind; name: KindName }>([
  ["deployment", { kind: WorkloadKind.WORKLOAD_KIND_DEPLOYMENT, name: "Deployment" }],
  ["statefulset", { kind: WorkloadKind.WORKLOAD_KIND_STATEFUL_SET, name: "StatefulSet" }],
  ["daemonset", { kind: WorkloadKind.WORKLOAD_KIND_DAEMON_SET, name: "DaemonSet" }],
]);

const TRUE_VALUES = ["true", "True", "TRUE"];
const FALSE_VALUES = ["false", "False", "FALSE"];

function show(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

function required(get: InputGetter, name: string): string {
  const value = get(name);
  if (value === "") throw new InputError(name, `Input "${name}" is required and was not supplied.`);
  return value;
}

function boolean(get: InputGetter, name: string, fallback: boolean): boolean {
  const value = get(name);
  if (value === "") return fallback;
  if (TRUE_VALUES.includes(value)) return true;
  if (FALSE_VALUES.includes(value)) return false;
  throw new InputError(name, `Input "${name}" must be true or false; got ${show(value)}.`);
}

/** Parses `https://host[:port]` (TLS, port 443 by default) or `http://host[:port]` (plaintext, port 80). */
export function parseServer(value: string): ServerAddress {
  const hint =
    'Input "server" must be the orchestrator\'s gRPC address as https://host:port (TLS) or http://host:port (plaintext)';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InputError("server", `${hint}; got ${show(value)}.`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new InputError("server", `${hint}; got scheme "${url.protocol.replace(/:$/, "")}".`);
  }
  if (url.username !== "" || url.password !== "") {
    throw new InputError("server", `${hint}, without user or password; pass the deploy key in "key".`);
  }
  if ((url.pathname !== "/" && url.pathname !== "") || url.search !== "" || url.hash !== "") {
    throw new InputError("server", `${hint}, without a path, query or fragment; got ${show(value)}.`);
  }
  if (url.hostname === "") throw new InputError("server", `${hint}; got ${show(value)}.`);
  const tls = url.protocol === "https:";
  const port = url.port !== "" ? url.port : tls ? "443" : "80";
  return { url: `${url.protocol}//${url.hostname}:${port}`, target: `${url.hostname}:${port}`, tls };
}

function parseKind(value: string): { kind: WorkloadKind; name: KindName } {
  const found = KINDS.get(value.toLowerCase());
  if (!found) {
    throw new InputError(
      "kind",
      `Input "kind" must be one of Deployment, StatefulSet, DaemonSet (case-insensitive); got ${show(value)}.`,
    );
  }
  return found;
}

function parseContainers(value: string): string[] {
  const names: string[] = [];
  for (const raw of value.split(/[,\n]/)) {
    const name = raw.trim();
    if (name === "") continue;
    const problem = validateDns1123Label(name, "container");
    if (problem) {
      throw new InputError("container", `Input "container" (a comma-separated list of container names): ${problem}.`);
    }
    if (!names.includes(name)) names.push(name);
  }
  if (names.length > MAX_CONTAINERS) {
    throw new InputError(
      "container",
      `Input "container" names ${names.length} containers; at most ${MAX_CONTAINERS} are allowed.`,
    );
  }
  return names;
}

function parseImage(value: string): string {
  try {
    parseImageReference(value);
  } catch (error) {
    if (!(error instanceof InvalidImageReferenceError)) throw error;
    throw new InputError("image", `Input "image": ${error.message} (expected repo[:tag][@sha256:digest]).`);
  }
  return value;
}

function parseTimeout(value: string): number {
  if (value === "") return DEFAULT_TIMEOUT_SECONDS;
  const hint = `Input "timeout" must be a whole number of seconds from 1 to ${MAX_TIMEOUT_SECONDS}`;
  if (!/^\d+$/.test(value)) throw new InputError("timeout", `${hint}; got ${show(value)}.`);
  const seconds = Number(value);
  if (seconds < 1 || seconds > MAX_TIMEOUT_SECONDS) throw new InputError("timeout", `${hint}; got ${value}.`);
  return seconds;
}

/** Default of `queue-timeout`: how long a waiting step gives the agent to pick the deployment up. */
export const DEFAULT_QUEUE_TIMEOUT_SECONDS = 120;

function parseQueueTimeout(value: string): number {
  if (value === "") return DEFAULT_QUEUE_TIMEOUT_SECONDS;
  const hint = `Input "queue-timeout" must be a whole number of seconds from 1 to ${MAX_QUEUE_TIMEOUT_SECONDS}`;
  if (!/^\d+$/.test(value)) throw new InputError("queue-timeout", `${hint}; got ${show(value)}.`);
  const seconds = Number(value);
  if (seconds < 1 || seconds > MAX_QUEUE_TIMEOUT_SECONDS)
    throw new InputError("queue-timeout", `${hint}; got ${value}.`);
  return seconds;
}

function readCa(path: string, tls: boolean): Buffer {
  if (!tls) {
    throw new InputError(
      "ca-file",
      'Input "ca-file" only applies to an https:// server; "server" is http:// (plaintext).',
    );
  }
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new InputError("ca-file", `Input "ca-file": cannot read ${show(path)} (${reason}).`);
  }
  if (!pem.toString("utf8").includes("-----BEGIN CERTIFICATE-----")) {
    throw new InputError(
      "ca-file",
      `Input "ca-file": ${show(path)} holds no PEM certificate (-----BEGIN CERTIFICATE-----).`,
    );
  }
  return pem;
}

/**
 * The idempotency key used when the `idempotency-key` input is empty: the same for every try of one
 * step in one run attempt (so a retried step finds its first deployment), different for a new attempt
 * (so "Re-run jobs" deploys again) and for another step or other inputs. Empty outside a workflow run.
 */
export function defaultIdempotencyKey(
  parts: {
    server: string;
    namespace: string;
    kindName: string;
    workload: string;
    containers: string[];
    image: string;
    timeoutSeconds: number;
    rollbackOnFailure: boolean;
  },
  env: NodeJS.ProcessEnv = process.env,
): string {
  const runId = env.GITHUB_RUN_ID ?? "";
  if (!/^\d+$/.test(runId)) return "";
  const attempt = /^\d+$/.test(env.GITHUB_RUN_ATTEMPT ?? "") ? env.GITHUB_RUN_ATTEMPT : "1";
  const digest = createHash("sha256")
    .update(
      JSON.stringify([
        env.GITHUB_REPOSITORY ?? "",
        env.GITHUB_JOB ?? "",
        env.GITHUB_ACTION ?? "",
        parts.server,
        parts.namespace,
        parts.kindName,
        parts.workload,
        parts.containers,
        parts.image,
        parts.timeoutSeconds,
        parts.rollbackOnFailure,
      ]),
    )
    .digest("hex")
    .slice(0, 32);
  return `gha-${runId}-${attempt}-${digest}`;
}

/** The audience of the ID token the action requests when `key` is empty (trust policies' default). */
export const DEFAULT_AUDIENCE = "k8sdeploy";

/** True when the runner lets this job request an ID token (the job has `permissions: id-token: write`). */
export function canRequestIdToken(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.ACTIONS_ID_TOKEN_REQUEST_URL) && Boolean(env.ACTIONS_ID_TOKEN_REQUEST_TOKEN);
}

/** Reads and validates all inputs. Throws InputError naming the first bad input. */
export function readInputs(get: InputGetter = inputsFromEnv(), env: NodeJS.ProcessEnv = process.env): ActionInputs {
  const server = parseServer(required(get, "server"));
  const key = get("key");
  if (/[\s\p{Cc}]/u.test(key)) {
    throw new InputError("key", 'Input "key" must not contain whitespace or control characters (check the secret).');
  }
  const audience = get("audience") || DEFAULT_AUDIENCE;
  if (key === "") {
    if (!canRequestIdToken(env)) {
      throw new InputError(
        "key",
        'Input "key" is required and was not supplied. Pass a deploy key, or deploy without one: give the job `permissions: id-token: write` and create a trust policy for this repository (`k8sdeploy trust create`).',
      );
    }
    if (audience.length > 255 || /[\s\p{Cc}]/u.test(audience)) {
      throw new InputError("audience", 'Input "audience" must be at most 255 characters without whitespace.');
    }
  }
  const namespace = required(get, "namespace");
  const namespaceProblem = validateDns1123Label(namespace, "namespace");
  if (namespaceProblem) throw new InputError("namespace", `Input "namespace": ${namespaceProblem}.`);
  const workload = required(get, "deployment");
  const workloadProblem = validateDns1123Subdomain(workload, "workload name");
  if (workloadProblem) throw new InputError("deployment", `Input "deployment": ${workloadProblem}.`);
  const kindValue = get("kind");
  const { kind, name: kindName } = parseKind(kindValue === "" ? "Deployment" : kindValue);
  const containers = parseContainers(get("container"));
  const image = parseImage(required(get, "image"));
  const wait = boolean(get, "wait", true);
  const timeoutSeconds = parseTimeout(get("timeout"));
  const queueTimeoutInput = get("queue-timeout");
  const queueTimeoutSeconds = parseQueueTimeout(queueTimeoutInput);
  const rollbackOnFailure = boolean(get, "rollback-on-failure", false);
  const pinDigest = boolean(get, "pin-digest", false);
  const caFile = get("ca-file");
  const ca = caFile === "" ? undefined : readCa(caFile, server.tls);

  let idempotencyKey = get("idempotency-key");
  if (idempotencyKey.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
    throw new InputError(
      "idempotency-key",
      `Input "idempotency-key" is ${idempotencyKey.length} characters long; at most ${MAX_IDEMPOTENCY_KEY_LENGTH} are allowed.`,
    );
  }
  if (idempotencyKey === "") {
    idempotencyKey = defaultIdempotencyKey(
      { server: server.url, namespace, kindName, workload, containers, image, timeoutSeconds, rollbackOnFailure },
      env,
    );
  }
  // Outside a workflow run there is nothing to derive a key from: a random one still makes this
  // run's own retries of Deploy safe.
  if (idempotencyKey === "") idempotencyKey = `local-${randomUUID()}`;

  return {
    server,
    key,
    ...(key === "" ? { oidcAudience: audience } : {}),
    namespace,
    workload,
    kind,
    kindName,
    containers,
    image,
    wait,
    timeoutSeconds,
    queueTimeoutSeconds,
    queueTimeoutSet: queueTimeoutInput !== "",
    rollbackOnFailure,
    pinDigest,
    ...(ca ? { ca, caFile } : {}),
    idempotencyKey,
    ...gitHubReport(get, env, namespace, workload),
  };
}

/** `github-token` (and its companions): where and how to report the outcome to GitHub. */
function gitHubReport(
  get: InputGetter,
  env: NodeJS.ProcessEnv,
  namespace: string,
  workload: string,
): { github?: GitHubReport } {
  const token = get("github-token");
  const kindValue = get("github-status") || "commit";
  if (kindValue !== "commit" && kindValue !== "deployment") {
    throw new InputError(
      "github-status",
      `Input "github-status" must be commit or deployment; got ${show(kindValue)}.`,
    );
  }
  const environment = get("github-environment") || namespace;
  if (environment.length > 255) {
    throw new InputError("github-environment", 'Input "github-environment" is longer than 255 characters.');
  }
  if (token === "") return {};
  if (/[\s\p{Cc}]/u.test(token)) {
    throw new InputError("github-token", 'Input "github-token" must not contain whitespace or control characters.');
  }
  const [owner = "", repo = ""] = (env.GITHUB_REPOSITORY ?? "").split("/");
  const sha = env.GITHUB_SHA ?? "";
  if (owner === "" || repo === "" || !/^[0-9a-f]{40}$/.test(sha)) {
    throw new InputError(
      "github-token",
      'Input "github-token" needs GITHUB_REPOSITORY (owner/repo) and GITHUB_SHA, which the runner sets; run the step in a workflow.',
    );
  }
  return {
    github: { token, kind: kindValue, environment, context: `k8sdeploy/${namespace}/${workload}`, owner, repo, sha },
  };
}
