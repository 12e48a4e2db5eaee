// STAND-IN for the orchestrator's DeployService, for the action's tests only.
//
// The real orchestrator is written concurrently; until end-to-end tests run the action against it, this
// hand-written grpc-js server plays its DeployService part: it checks the bearer key, records every call,
// plays a scripted timeline (QUEUED, then the given steps) and can misbehave on purpose (drop a watch
// stream, answer UNIMPLEMENTED, fail Deploy). It is not a model of the orchestrator's rules beyond that.
import {
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
  status,
} from "@grpc/grpc-js";
import {
  type CancelDeploymentRequest,
  type CancelDeploymentResponse,
  type DeployRequest,
  type DeployResponse,
  DeployServiceService,
  type GetDeploymentRequest,
  type GetDeploymentResponse,
  type WatchDeploymentRequest,
  type WatchDeploymentResponse,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/deploy.js";
import {
  type Deployment,
  type DeploymentEvent,
  DeploymentState,
  type Failure,
  FailureReason,
  type ReplicaStatus,
  WorkloadKind,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";

/** One step of the scripted timeline after QUEUED. */
export interface StandInStep {
  state: DeploymentState;
  message: string;
  replicas?: ReplicaStatus;
  failure?: Failure;
}

export interface StandInOptions {
  /** The only deploy key accepted (`authorization: Bearer <key>`); anything else gets UNAUTHENTICATED. */
  key: string;
  /** Timeline played after Deploy, after the automatic QUEUED event (seq 1). Empty: stays queued. */
  steps?: StandInStep[];
  /** Milliseconds between two steps (default 30). */
  stepIntervalMs?: number;
  /** Deploy answers this error (after the key check). */
  deployError?: { code: status; details: string };
  /** The first N Deploy calls answer UNAVAILABLE without creating anything. */
  deployUnavailableTimes?: number;
  /** The first WatchDeployment call ends with UNAVAILABLE after sending this many events. */
  dropWatchAfter?: number;
  /** WatchDeployment answers UNIMPLEMENTED, as a server without Watch would. */
  watchUnimplemented?: boolean;
  /** Serve TLS with this key and certificate chain (PEM) instead of plaintext. */
  tls?: { key: Buffer; cert: Buffer };
}

export interface RecordedCall<T> {
  request: T;
  /** The authorization metadata as received. */
  authorization: string;
}

export interface StandInCalls {
  deploy: RecordedCall<DeployRequest>[];
  getDeployment: RecordedCall<GetDeploymentRequest>[];
  watchDeployment: RecordedCall<WatchDeploymentRequest>[];
  cancelDeployment: RecordedCall<CancelDeploymentRequest>[];
}

export interface StandInDeployService {
  /** `http://127.0.0.1:<port>`, or `https://localhost:<port>` with TLS. */
  url: string;
  port: number;
  calls: StandInCalls;
  /** Deployments by id. */
  deployments: Map<string, Deployment>;
  /** Number of calls of any method. */
  callCount(): number;
  close(): Promise<void>;
}

export const FINAL_STATES = [
  DeploymentState.DEPLOYMENT_STATE_SUCCEEDED,
  DeploymentState.DEPLOYMENT_STATE_FAILED,
  DeploymentState.DEPLOYMENT_STATE_ROLLED_BACK,
  DeploymentState.DEPLOYMENT_STATE_TIMED_OUT,
  DeploymentState.DEPLOYMENT_STATE_CANCELLED,
  DeploymentState.DEPLOYMENT_STATE_SUPERSEDED,
  DeploymentState.DEPLOYMENT_STATE_EXPIRED,
];

/** A timeline that ends in SUCCEEDED after rolling 3 replicas. */
export function succeedingSteps(): StandInStep[] {
  const replicas = (updated: number, ready: number) => ({ desired: 3, updated, ready, available: ready });
  return [
    { state: DeploymentState.DEPLOYMENT_STATE_DELIVERED, message: "Delivered to agent" },
    {
      state: DeploymentState.DEPLOYMENT_STATE_IN_PROGRESS,
      message: "1 of 3 replicas updated",
      replicas: replicas(1, 2),
    },
    {
      state: DeploymentState.DEPLOYMENT_STATE_IN_PROGRESS,
      message: "2 of 3 replicas updated",
      replicas: replicas(2, 2),
    },
    {
      state: DeploymentState.DEPLOYMENT_STATE_SUCCEEDED,
      message: "3 of 3 replicas updated and available",
      replicas: replicas(3, 3),
    },
  ];
}

interface Timeline {
  deployment: Deployment;
  events: DeploymentEvent[];
  /** The deployment as of each event (same index). */
  snapshots: Deployment[];
  listeners: Set<() => void>;
}

export async function startStandInDeployService(options: StandInOptions): Promise<StandInDeployService> {
  const calls: StandInCalls = { deploy: [], getDeployment: [], watchDeployment: [], cancelDeployment: [] };
  const timelines = new Map<string, Timeline>();
  const byIdempotencyKey = new Map<string, string>();
  const timers = new Set<NodeJS.Timeout>();
  let deployUnavailable = options.deployUnavailableTimes ?? 0;
  let watchCalls = 0;
  let nextId = 1;

  const authorization = (call: { metadata: { get(key: string): unknown[] } }) =>
    String(call.metadata.get("authorization")[0] ?? "");
  const authorized = (header: string) => header === `Bearer ${options.key}`;
  const unauthenticated = { code: status.UNAUTHENTICATED, details: "missing, unknown or revoked deploy key" };

  const append = (timeline: Timeline, step: StandInStep) => {
    const time = new Date();
    const event: DeploymentEvent = {
      seq: timeline.events.length + 1,
      time,
      state: step.state,
      message: step.message,
      replicas: step.replicas,
      failure: step.failure,
    };
    timeline.events.push(event);
    timeline.deployment = {
      ...timeline.deployment,
      state: step.state,
      message: step.message,
      updatedAt: time,
      replicas: step.replicas ?? timeline.deployment.replicas,
      failure: step.failure ?? timeline.deployment.failure,
    };
    timeline.snapshots.push(timeline.deployment);
    for (const listener of timeline.listeners) listener();
  };

  const play = (timeline: Timeline) => {
    const steps = options.steps ?? [];
    const interval = options.stepIntervalMs ?? 30;
    steps.forEach((step, index) => {
      const timer = setTimeout(
        () => {
          timers.delete(timer);
          append(timeline, step);
        },
        interval * (index + 1),
      );
      timers.add(timer);
    });
  };

  const deploy = (call: ServerUnaryCall<DeployRequest, DeployResponse>, callback: sendUnaryData<DeployResponse>) => {
    const header = authorization(call);
    calls.deploy.push({ request: call.request, authorization: header });
    if (!authorized(header)) return callback(unauthenticated);
    if (deployUnavailable > 0) {
      deployUnavailable--;
      return callback({ code: status.UNAVAILABLE, details: "stand-in: not ready yet" });
    }
    if (options.deployError) return callback(options.deployError);
    const request = call.request;
    const existingId = request.idempotencyKey ? byIdempotencyKey.get(request.idempotencyKey) : undefined;
    const existing = existingId ? timelines.get(existingId) : undefined;
    if (existing) return callback(null, { deployment: existing.deployment, created: false });

    const now = new Date();
    const deployment: Deployment = {
      id: `dep_standin${String(nextId++).padStart(4, "0")}`,
      agentId: "agt_standin",
      keyId: "key_standin",
      namespace: request.namespace,
      kind:
        request.kind === WorkloadKind.WORKLOAD_KIND_UNSPECIFIED ? WorkloadKind.WORKLOAD_KIND_DEPLOYMENT : request.kind,
      workload: request.workload,
      containers: request.containers,
      image: request.image,
      timeoutSeconds: request.timeoutSeconds || 300,
      rollbackOnFailure: request.rollbackOnFailure,
      pinDigest: request.pinDigest,
      resolvedDigest: "",
      changeKind: 1,
      agentVersion: "",
      idempotencyKey: request.idempotencyKey,
      origin: request.origin,
      state: DeploymentState.DEPLOYMENT_STATE_QUEUED,
      failure: undefined,
      createdAt: now,
      updatedAt: now,
      previousImages: [],
      appliedImages: [],
      message: "",
      replicas: undefined,
      rollbackOf: "",
      queueDeadline: new Date(now.getTime() + (request.queueTimeoutSeconds || 3600) * 1000),
      supersededBy: "",
      trustPolicyId: "",
      oidcClaims: undefined,
    };
    const timeline: Timeline = { deployment, events: [], snapshots: [], listeners: new Set() };
    timelines.set(deployment.id, timeline);
    if (request.idempotencyKey) byIdempotencyKey.set(request.idempotencyKey, deployment.id);
    append(timeline, { state: DeploymentState.DEPLOYMENT_STATE_QUEUED, message: "Queued for the agent" });
    play(timeline);
    callback(null, { deployment: timeline.deployment, created: true });
  };

  const getDeployment = (
    call: ServerUnaryCall<GetDeploymentRequest, GetDeploymentResponse>,
    callback: sendUnaryData<GetDeploymentResponse>,
  ) => {
    const header = authorization(call);
    calls.getDeployment.push({ request: call.request, authorization: header });
    if (!authorized(header)) return callback(unauthenticated);
    const timeline = timelines.get(call.request.id);
    if (!timeline) return callback({ code: status.NOT_FOUND, details: `deployment "${call.request.id}" not found` });
    callback(null, { deployment: timeline.deployment, events: [...timeline.events] });
  };

  // Like the orchestrator: only a deployment still queued can be cancelled.
  const cancelDeployment = (
    call: ServerUnaryCall<CancelDeploymentRequest, CancelDeploymentResponse>,
    callback: sendUnaryData<CancelDeploymentResponse>,
  ) => {
    const header = authorization(call);
    calls.cancelDeployment.push({ request: call.request, authorization: header });
    if (!authorized(header)) return callback(unauthenticated);
    const timeline = timelines.get(call.request.id);
    if (!timeline) return callback({ code: status.NOT_FOUND, details: `deployment "${call.request.id}" not found` });
    if (timeline.deployment.state !== DeploymentState.DEPLOYMENT_STATE_QUEUED) {
      return callback({ code: status.FAILED_PRECONDITION, details: "stand-in: already sent to the agent" });
    }
    for (const timer of timers) clearTimeout(timer);
    append(timeline, {
      state: DeploymentState.DEPLOYMENT_STATE_CANCELLED,
      message: `cancelled: ${call.request.reason}`,
      failure: { reason: FailureReason.FAILURE_REASON_CANCELLED, message: `cancelled: ${call.request.reason}` },
    });
    callback(null, { deployment: timeline.deployment });
  };

  const watchDeployment = (call: ServerWritableStream<WatchDeploymentRequest, WatchDeploymentResponse>) => {
    const header = authorization(call);
    calls.watchDeployment.push({ request: call.request, authorization: header });
    const fail = (error: { code: status; details: string }) => call.emit("error", error);
    if (!authorized(header)) return fail(unauthenticated);
    if (options.watchUnimplemented) return fail({ code: status.UNIMPLEMENTED, details: "stand-in: no Watch" });
    const timeline = timelines.get(call.request.id);
    if (!timeline) return fail({ code: status.NOT_FOUND, details: `deployment "${call.request.id}" not found` });

    const dropAfter = ++watchCalls === 1 ? options.dropWatchAfter : undefined;
    let sent = 0;
    let lastSeq = call.request.afterSeq;
    let done = false;
    const finish = (error?: { code: status; details: string }) => {
      if (done) return;
      done = true;
      timeline.listeners.delete(pump);
      if (error) fail(error);
      else call.end();
    };
    function pump() {
      for (const [index, event] of timeline!.events.entries()) {
        if (done || event.seq <= lastSeq) continue;
        lastSeq = event.seq;
        call.write({ event, deployment: timeline!.snapshots[index] });
        sent++;
        if (FINAL_STATES.includes(event.state)) return finish();
        if (dropAfter !== undefined && sent >= dropAfter) {
          return finish({ code: status.UNAVAILABLE, details: "stand-in dropped the stream" });
        }
      }
    }
    call.on("cancelled", () => finish());
    timeline.listeners.add(pump);
    pump();
  };

  const credentials = options.tls
    ? ServerCredentials.createSsl(null, [{ private_key: options.tls.key, cert_chain: options.tls.cert }])
    : ServerCredentials.createInsecure();
  const server = new Server();
  server.addService(DeployServiceService, { deploy, getDeployment, watchDeployment, cancelDeployment });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", credentials, (error, bound) => (error ? reject(error) : resolve(bound))),
  );

  return {
    url: options.tls ? `https://localhost:${port}` : `http://127.0.0.1:${port}`,
    port,
    calls,
    get deployments() {
      return new Map([...timelines].map(([id, t]) => [id, t.deployment]));
    },
    callCount: () =>
      calls.deploy.length + calls.getDeployment.length + calls.watchDeployment.length + calls.cancelDeployment.length,
    close: () =>
      new Promise<void>((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        server.tryShutdown(() => resolve());
        setTimeout(() => server.forceShutdown(), 1000).unref();
      }),
  };
}
