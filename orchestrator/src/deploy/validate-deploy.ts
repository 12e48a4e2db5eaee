// Validates a DeployRequest completely and reports every problem at once, each saying what to fix.
import { parseImageReference } from "@k8sdeploy/proto/contract/image-ref.js";
import {
  DEFAULT_TIMEOUT_SECONDS,
  MAX_CONTAINERS,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  MAX_ORIGIN_FIELD_LENGTH,
  MAX_QUEUE_TIMEOUT_SECONDS,
  MAX_TIMEOUT_SECONDS,
} from "@k8sdeploy/proto/contract/limits.js";
import { validateDns1123Label, validateDns1123Subdomain } from "@k8sdeploy/proto/contract/names.js";
import type { DeployRequest } from "@k8sdeploy/proto/node/k8sdeploy/v1/deploy.js";
import { type Origin, WorkloadKind } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import { invalidArgument } from "../rpc/rpc-error.js";

export interface ValidDeploy {
  namespace: string;
  kind: WorkloadKind;
  workload: string;
  containers: string[];
  image: string;
  timeoutSeconds: number;
  rollbackOnFailure: boolean;
  idempotencyKey: string;
  origin: Origin;
  /** Ask the agent to write the image pinned by its resolved digest. */
  pinDigest?: boolean;
  /** 0: the orchestrator's default. */
  queueTimeoutSeconds: number;
}

const ORIGIN_FIELDS = ["repository", "sha", "ref", "actor", "runUrl", "workflow"] as const;

export function validateDeployRequest(req: DeployRequest): ValidDeploy {
  const problems: string[] = [];
  const check = (message: string | undefined) => {
    if (message) problems.push(message);
  };
  check(validateDns1123Label(req.namespace, "namespace"));
  check(validateDns1123Subdomain(req.workload, "workload"));
  const kind = req.kind === WorkloadKind.WORKLOAD_KIND_UNSPECIFIED ? WorkloadKind.WORKLOAD_KIND_DEPLOYMENT : req.kind;
  if (
    ![
      WorkloadKind.WORKLOAD_KIND_DEPLOYMENT,
      WorkloadKind.WORKLOAD_KIND_STATEFUL_SET,
      WorkloadKind.WORKLOAD_KIND_DAEMON_SET,
    ].includes(kind)
  ) {
    problems.push(`kind: ${req.kind} is not a workload kind; use Deployment, StatefulSet or DaemonSet`);
  }
  if (req.containers.length > MAX_CONTAINERS) {
    problems.push(`containers: at most ${MAX_CONTAINERS} names, got ${req.containers.length}`);
  } else {
    req.containers.forEach((name, i) => {
      check(validateDns1123Label(name, `containers[${i}]`));
    });
    if (new Set(req.containers).size !== req.containers.length) problems.push("containers: a name is repeated");
  }
  if (req.image === "") {
    problems.push("image: required, e.g. ghcr.io/owner/app:1.2.3 or ghcr.io/owner/app@sha256:…");
  } else {
    try {
      parseImageReference(req.image);
    } catch (err) {
      problems.push(`image: ${(err as Error).message}`);
    }
  }
  if (req.timeoutSeconds > MAX_TIMEOUT_SECONDS) {
    problems.push(`timeout_seconds: ${req.timeoutSeconds} is above the maximum of ${MAX_TIMEOUT_SECONDS}`);
  }
  if (req.queueTimeoutSeconds > MAX_QUEUE_TIMEOUT_SECONDS) {
    problems.push(
      `queue_timeout_seconds: ${req.queueTimeoutSeconds} is above the maximum of ${MAX_QUEUE_TIMEOUT_SECONDS} (7 days)`,
    );
  }
  if (req.idempotencyKey.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
    problems.push(
      `idempotency_key: at most ${MAX_IDEMPOTENCY_KEY_LENGTH} characters, got ${req.idempotencyKey.length}`,
    );
  }
  const origin = req.origin ?? { repository: "", sha: "", ref: "", actor: "", runUrl: "", workflow: "" };
  for (const field of ORIGIN_FIELDS) {
    const value = origin[field];
    if (value.length > MAX_ORIGIN_FIELD_LENGTH) {
      problems.push(`origin.${field}: at most ${MAX_ORIGIN_FIELD_LENGTH} characters, got ${value.length}`);
    }
  }
  if (origin.runUrl !== "" && !/^https?:\/\/\S+$/.test(origin.runUrl)) {
    problems.push("origin.run_url: must be an http(s) URL");
  }
  if (problems.length > 0) throw invalidArgument(`invalid deploy request: ${problems.join("; ")}`);
  return {
    namespace: req.namespace,
    kind,
    workload: req.workload,
    containers: [...req.containers],
    image: req.image,
    timeoutSeconds: req.timeoutSeconds === 0 ? DEFAULT_TIMEOUT_SECONDS : req.timeoutSeconds,
    rollbackOnFailure: req.rollbackOnFailure,
    idempotencyKey: req.idempotencyKey,
    origin,
    pinDigest: req.pinDigest,
    queueTimeoutSeconds: req.queueTimeoutSeconds,
  };
}
