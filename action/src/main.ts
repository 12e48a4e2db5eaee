// The action: read inputs, Deploy, follow the deployment to a final state, report (log, outputs, job summary).
// `run` is the logic entrypoint (index.ts calls it; @github/local-action imports it).
import * as core from "@actions/core";
import { status as grpcStatus } from "@grpc/grpc-js";
import type { DeployRequest, DeployResponse } from "@k8sdeploy/proto/node/k8sdeploy/v1/deploy.js";
import {
  type Deployment,
  type DeploymentEvent,
  DeploymentState,
  type Origin,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import { connect, type DeployApi, describeGrpcError, isServiceError } from "./client.js";
import {
  describeUnfinished,
  FollowError,
  followDeployment,
  isFinal,
  QUEUED_SLACK_SECONDS,
  stateName,
  waitSeconds,
} from "./follow.js";
import { GitHubReporter } from "./github-status.js";
import { type ActionInputs, InputError, readInputs } from "./inputs.js";
import { originFromEnv } from "./origin.js";
import { addReport, failureReasonName, formatReplicas, formatTime, type Report } from "./summary.js";

/** Backoff of Deploy retries on UNAVAILABLE (orchestrator restarting, its Redis down): 1 s doubling to 30 s. */
const retryDelayMs = (attempt: number) => Math.min(1000 * 2 ** attempt, 30_000);

/** A TLS failure is a configuration problem: retrying cannot help. */
const isTlsFailure = (text: string) => /certificate|self[- ]signed|SSL|TLS|handshake/i.test(text);

/** `[12:00:01] in_progress: 2 of 3 replicas updated` */
export function progressLine(event: DeploymentEvent): string {
  const text = event.message || formatReplicas(event.replicas);
  const failure = event.failure && !text.includes(event.failure.message) ? ` (${event.failure.message})` : "";
  return `[${formatTime(event.time ?? new Date())}] ${stateName(event.state)}${text ? `: ${text}` : ""}${failure}`;
}

/** Fails the request for an ID token; its message says how to enable it. */
class IdTokenError extends Error {}

/** Asks the runner for a new GitHub OIDC token (each one is accepted once by the orchestrator). */
function idTokenSource(audience: string): () => Promise<string> {
  return async () => {
    let token: string;
    try {
      token = await core.getIDToken(audience);
    } catch (error) {
      throw new IdTokenError(
        `Could not request a GitHub OIDC token for audience "${audience}" (${error instanceof Error ? error.message : String(error)}); the job needs \`permissions: id-token: write\`, or pass a deploy key in "key"`,
      );
    }
    // getIDToken masks it too; masking here keeps that true whatever @actions/core does.
    core.setSecret(token);
    return token;
  };
}

/** Adds a hint to the errors a workflow author can fix, and says when the outcome is unknown. */
function explain(error: unknown, inputs: ActionInputs): string {
  const oidc = inputs.oidcAudience !== undefined;
  const text = describeGrpcError(error);
  if (!isServiceError(error)) return text;
  switch (error.code) {
    case grpcStatus.DEADLINE_EXCEEDED:
      // The orchestrator says "nothing was done" when it refuses a call; any other DEADLINE_EXCEEDED
      // may have been carried out (gRPC's definition): its answer did not arrive in time.
      if (/nothing was done/.test(text)) return text;
      return `${text} (no answer arrived in time, so the deploy may have been accepted all the same: look for ${inputs.image} in ${inputs.namespace} with \`k8sdeploy deployments list --namespace ${inputs.namespace}\` or on the dashboard before deploying again)`;
    case grpcStatus.UNAUTHENTICATED:
      if (oidc) {
        return `${text} (this job authenticated with its GitHub OIDC token: check the orchestrator's trust policies for this repository with \`k8sdeploy trust list\`)`;
      }
      return `${text} (check the "key" input: the deploy key may be wrong, revoked, or for another orchestrator)`;
    case grpcStatus.UNAVAILABLE:
      if (isTlsFailure(text)) {
        return `${text} (the orchestrator's TLS certificate was not accepted: if a private CA signed it, set "ca-file")`;
      }
      return `${text} (check that "server" is right and the orchestrator is reachable from this runner)`;
    default:
      return text;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Deploy, retried with backoff on UNAVAILABLE for as long as the step would wait for the agent
 * (queue-timeout). The idempotency key (always set) makes a retry of a call that did reach the
 * orchestrator return the same deployment instead of creating a second one.
 */
async function deploy(api: DeployApi, request: DeployRequest, budgetSeconds: number): Promise<DeployResponse> {
  const giveUpAt = Date.now() + budgetSeconds * 1000;
  for (let attempt = 0; ; attempt++) {
    try {
      return await api.deploy(request);
    } catch (error) {
      const delay = retryDelayMs(attempt);
      // DEADLINE_EXCEEDED too: a stalled store can hold a call past its deadline, and the
      // idempotency key makes the retry return the deployment if the first call did create it.
      const retryable =
        isServiceError(error) &&
        (error.code === grpcStatus.UNAVAILABLE || error.code === grpcStatus.DEADLINE_EXCEEDED) &&
        !isTlsFailure(describeGrpcError(error)) &&
        request.idempotencyKey !== "";
      if (!retryable || Date.now() + delay > giveUpAt) throw error;
      core.info(`Deploy: ${describeGrpcError(error)}; trying again in ${delay / 1000} s (attempt ${attempt + 2}).`);
      await sleep(delay);
    }
  }
}

/** The step stops waiting: a deployment still queued is cancelled, so it is never applied later. */
async function cancelQueued(api: DeployApi, deployment: Deployment, why: string): Promise<Deployment | undefined> {
  if (deployment.state !== DeploymentState.DEPLOYMENT_STATE_QUEUED) return undefined;
  try {
    const { deployment: cancelled } = await api.cancelDeployment(deployment.id, why);
    if (cancelled) core.info(`Cancelled deployment ${deployment.id}: it will not be applied.`);
    return cancelled;
  } catch (error) {
    core.warning(
      `Could not cancel deployment ${deployment.id} (${describeGrpcError(error)}); it expires on the orchestrator at its queue deadline.`,
    );
    return undefined;
  }
}

function failureText(deployment: Deployment): string {
  const failure = deployment.failure;
  if (!failure) return deployment.message;
  const reason = failureReasonName(failure.reason);
  return `${reason ? `${reason}: ` : ""}${failure.message || deployment.message}`;
}

async function writeSummary(report: Report): Promise<void> {
  try {
    await addReport(core.summary.emptyBuffer(), report).write();
  } catch (error) {
    // No GITHUB_STEP_SUMMARY outside a runner; the log has everything.
    core.debug(`Job summary not written: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function describeTarget(inputs: ActionInputs): string {
  const containers = inputs.containers.length > 0 ? ` (containers: ${inputs.containers.join(", ")})` : "";
  return `${inputs.kindName} ${inputs.namespace}/${inputs.workload}${containers}`;
}

/** Follows the deployment to a final state, logging each event; returns the failure text ("" on success). */
async function follow(api: DeployApi, inputs: ActionInputs, initial: Deployment, report: Report): Promise<string> {
  let followed: Awaited<ReturnType<typeof followDeployment>>;
  try {
    followed = await followDeployment({
      api,
      initial,
      deadline: report.startedAt + waitSeconds(inputs.timeoutSeconds, inputs.queueTimeoutSeconds) * 1000,
      queuedDeadline: report.startedAt + (inputs.queueTimeoutSeconds + QUEUED_SLACK_SECONDS) * 1000,
      onEvent: (event, deployment) => {
        report.events.push(event);
        report.deployment = deployment;
        core.info(progressLine(event));
      },
      onNotice: (message) => core.info(message),
    });
  } catch (error) {
    if (error instanceof FollowError) report.deployment = error.deployment;
    throw error instanceof FollowError ? error.error : error;
  }

  const deployment = followed.deployment;
  report.deployment = deployment;
  report.status = stateName(deployment.state);
  if (deployment.state === DeploymentState.DEPLOYMENT_STATE_SUCCEEDED) {
    report.message = deployment.message;
    return "";
  }
  if (isFinal(deployment.state)) {
    report.message = failureText(deployment);
    return `Deployment ${deployment.id} ${report.status}: ${report.message}`;
  }
  const failed = describeUnfinished(deployment, inputs.timeoutSeconds, inputs.queueTimeoutSeconds);
  const cancelled = await cancelQueued(api, deployment, "the workflow step stopped waiting");
  if (cancelled) {
    report.deployment = cancelled;
    report.status = stateName(cancelled.state);
  }
  report.message = failed;
  report.error = failed;
  return failed;
}

export async function run(): Promise<void> {
  // Mask the key before anything else can print it.
  const key = core.getInput("key");
  if (key !== "") core.setSecret(key);
  const githubToken = core.getInput("github-token");
  if (githubToken !== "") core.setSecret(githubToken);

  let inputs: ActionInputs;
  try {
    inputs = readInputs((name) => core.getInput(name));
  } catch (error) {
    const message = error instanceof InputError ? error.message : `Cannot read the inputs: ${String(error)}`;
    core.setOutput("message", message);
    core.setFailed(message);
    return;
  }

  const startedAt = Date.now();
  const origin: Origin = originFromEnv();
  const report: Report = {
    namespace: inputs.namespace,
    kindName: inputs.kindName,
    workload: inputs.workload,
    image: inputs.image,
    containers: inputs.containers,
    events: [],
    status: "",
    message: "",
    waited: inputs.wait,
    origin,
    startedAt,
    finishedAt: startedAt,
  };
  let failed = "";
  const github = inputs.github ? new GitHubReporter(inputs.github, origin.runUrl) : undefined;

  let api: DeployApi | undefined;
  try {
    const bearer = inputs.oidcAudience === undefined ? inputs.key : idTokenSource(inputs.oidcAudience);
    api = connect(inputs.server, bearer, inputs.ca ? { ca: inputs.ca } : {});
    core.info(`Deploying ${inputs.image} to ${describeTarget(inputs)} through ${inputs.server.url}`);
    if (inputs.oidcAudience !== undefined) {
      core.info(`Authenticating with this job's GitHub OIDC token (audience "${inputs.oidcAudience}"), no deploy key.`);
    }
    const response = await deploy(
      api,
      {
        namespace: inputs.namespace,
        kind: inputs.kind,
        workload: inputs.workload,
        containers: inputs.containers,
        image: inputs.image,
        timeoutSeconds: inputs.timeoutSeconds,
        rollbackOnFailure: inputs.rollbackOnFailure,
        idempotencyKey: inputs.idempotencyKey,
        origin,
        // A waiting step gives the agent queue-timeout seconds; past that the deploy expires unapplied.
        queueTimeoutSeconds: inputs.wait || inputs.queueTimeoutSet ? inputs.queueTimeoutSeconds : 0,
        pinDigest: inputs.pinDigest,
      },
      inputs.queueTimeoutSeconds,
    );
    const initial = response.deployment;
    if (!initial) throw new Error("The server accepted the deployment but returned none");
    report.deployment = initial;
    report.status = stateName(initial.state);
    report.message = initial.message;
    core.setOutput("deployment-id", initial.id);
    await github?.started(initial, inputs.image);
    core.info(
      response.created
        ? `Deployment ${initial.id} created (${stateName(initial.state)}).`
        : `Deployment ${initial.id} was already created by an earlier try of this step (same idempotency key); following it.`,
    );

    if (!inputs.wait) {
      core.info(`[${formatTime(new Date())}] ${report.status}${initial.message ? `: ${initial.message}` : ""}`);
      core.info("Not waiting for the rollout (wait: false).");
    } else {
      failed = await follow(api, inputs, initial, report);
    }
  } catch (error) {
    failed = explain(error, inputs);
    report.error = failed;
    report.message = failed;
    if (report.deployment) report.status = stateName(report.deployment.state);
  } finally {
    api?.close();
  }

  // With wait: false and no failure the outcome is not known here: the status stays pending.
  if (github && (report.waited || failed)) await github.finished(report.deployment, report.message);
  report.finishedAt = Date.now();
  if (report.status) core.setOutput("status", report.status);
  core.setOutput("message", report.message);
  // Set only when known: an unset output reads as "" in workflows, like a registry not reached.
  if (report.deployment?.resolvedDigest) core.setOutput("digest", report.deployment.resolvedDigest);
  await writeSummary(report);
  if (failed) core.setFailed(failed);
  else if (report.waited && report.deployment) {
    core.info(`Deployment ${report.deployment.id} succeeded.`);
  }
}
