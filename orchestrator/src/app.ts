// Wires the store and the features into the handlers that the servers expose.
import type { Logger } from "pino";
import { auditAdmin } from "./admin/admin-audit.js";
import { adminHandlers } from "./admin/admin-service.js";
import { AdminAgents } from "./agents/admin-agents.js";
import { AgentHub } from "./agents/agent-hub.js";
import { AgentUpdates } from "./agents/agent-updates.js";
import { AutoUpdater } from "./agents/auto-updater.js";
import { ReleaseChannel } from "./agents/release-channel.js";
import { AuthGuard } from "./auth/auth-guard.js";
import { Authenticator } from "./auth/authenticate.js";
import type { AgentReleaseSource, Config, WebhookConfig } from "./config.js";
import { AdminDeployments } from "./deploy/admin-deployments.js";
import { DeployService } from "./deploy/deploy-service.js";
import { ExpirySweeper } from "./deploy/expiry.js";
import { Outcomes } from "./deploy/outcome.js";
import { DescribeService } from "./describe/describe-service.js";
import { AdminKeys } from "./keys/admin-keys.js";
import { type Metrics, metrics } from "./metrics.js";
import { AdminWebhooks } from "./notify/admin-webhooks.js";
import { WebhookDispatcher } from "./notify/dispatcher.js";
import { Sealer } from "./notify/sealed-secret.js";
import { cachedFleetSnapshot } from "./observability/fleet.js";
import { Admission, admitted } from "./rpc/admission.js";
import { connectHandler } from "./rpc/connect-adapter.js";
import { type DeployHandlers, type GrpcService, grpcServices } from "./rpc/grpc-services.js";
import type { HttpHandler } from "./server/http-server.js";
import { MemoryStore } from "./store/memory-store.js";
import { createRedisStore } from "./store/redis-store.js";
import { redisTarget } from "./store/redis-url.js";
import type { Store } from "./store/store.js";
import { AdminTrust } from "./trust/admin-trust.js";
import { OidcTrust } from "./trust/oidc-trust.js";
import { GITHUB_ISSUER, OidcVerifier } from "./trust/oidc-verifier.js";
import { k8sdeployVersion } from "./version.js";
import { corsHandler } from "./web/cors.js";
import { dashboardConfigHandler } from "./web/dashboard-config.js";
import { defaultWebDist, webAppHandler } from "./web/static-handler.js";

export type { GrpcService };

export interface App {
  readonly store: Store;
  readonly grpcServices: GrpcService[];
  /** Mounted on the HTTP port, in order: CORS, DeployService and AdminService over Connect, the web app. */
  readonly httpHandlers: HttpHandler[];
  readonly deploy: DeployService;
  readonly admin: ReturnType<typeof adminHandlers>;
  readonly metrics: Metrics;
  /** Counts failed authentications and refuses addresses that fail too often (both ports). */
  readonly authGuard?: AuthGuard;
  /** True when the app can serve (store reachable). */
  ready(): Promise<boolean>;
  /** Drains agent streams and closes the store. */
  shutdown(): Promise<void>;
}

export interface AppOptions {
  replicaId: string;
  adminToken: string;
  redisUrl?: string | undefined;
  describeTimeoutSeconds: number;
  /** Default queue timeout of deployments (default 3600). */
  queueTimeoutSeconds?: number | undefined;
  corsOrigins?: string[] | undefined;
  /** Built dashboard to serve at `/`; default: the repository's web/dist when it exists. */
  webDist?: string | undefined;
  /** Agent release channel (see Config); defaults: none, automatic, 1 at a time, 180 s, every 60 s. */
  agentRelease?: AgentReleaseSource | undefined;
  agentAutoUpdate?: boolean;
  agentUpdateConcurrency?: number;
  agentUpdateReadySeconds?: number;
  agentUpdateIntervalSeconds?: number;
  /** Default https://github.com. */
  githubServerUrl?: string | undefined;
  /** Default 30. */
  authFailuresPerMinute?: number | undefined;
  /** Redis WAIT before acknowledging (default 0). */
  redisWaitReplicas?: number | undefined;
  /** Unary calls handled at once, both ports (default 256). */
  maxConcurrentCalls?: number | undefined;
  /** Finished deployments are kept this long (default 30 days). */
  retentionSeconds?: number | undefined;
  /** Memory store: finished deployments kept at most (default 10 000). */
  memoryMaxDeployments?: number | undefined;
  /** Webhook notifications (default: plain-text secrets, 8 attempts from 10 s, 10 s timeout, no loopback). */
  webhooks?: WebhookConfig | undefined;
  /** Issuer of the GitHub Actions ID tokens trust policies accept; default GitHub.com's. */
  oidcIssuer?: string | undefined;
  /** gRPC URL for the dashboard's snippets (K8SDEPLOY_PUBLIC_URL). */
  publicUrl?: string | undefined;
}

const DEFAULT_WEBHOOKS: WebhookConfig = {
  key: undefined,
  maxAttempts: 8,
  backoffSeconds: 10,
  timeoutSeconds: 10,
  allowLoopback: false,
};

export async function createApp(config: Config, log: Logger): Promise<App> {
  return createAppWith(
    {
      replicaId: config.replicaId,
      adminToken: config.adminToken,
      redisUrl: config.redisUrl,
      describeTimeoutSeconds: config.describeTimeoutSeconds,
      queueTimeoutSeconds: config.queueTimeoutSeconds,
      corsOrigins: config.corsOrigins,
      agentRelease: config.agentRelease,
      agentAutoUpdate: config.agentAutoUpdate,
      agentUpdateConcurrency: config.agentUpdateConcurrency,
      agentUpdateReadySeconds: config.agentUpdateReadySeconds,
      agentUpdateIntervalSeconds: config.agentUpdateIntervalSeconds,
      githubServerUrl: config.githubServerUrl,
      authFailuresPerMinute: config.authFailuresPerMinute,
      redisWaitReplicas: config.redisWaitReplicas,
      maxConcurrentCalls: config.maxConcurrentCalls,
      retentionSeconds: config.retentionSeconds,
      memoryMaxDeployments: config.memoryMaxDeployments,
      webhooks: config.webhooks,
      oidcIssuer: config.oidcIssuer,
      publicUrl: config.publicUrl,
    },
    log,
  );
}

export async function createAppWith(options: AppOptions, log: Logger): Promise<App> {
  const store: Store = options.redisUrl
    ? await createRedisStore(options.redisUrl, {
        replicaId: options.replicaId,
        log: {
          warn: (obj, msg) => log.warn(obj, msg),
          redisError: (connection) => metrics.redisErrors.inc({ connection }),
        },
        waitReplicas: options.redisWaitReplicas,
        retentionSeconds: options.retentionSeconds,
      })
    : new MemoryStore({
        retentionSeconds: options.retentionSeconds,
        maxFinishedDeployments: options.memoryMaxDeployments,
      });
  log.info(
    {
      store: options.redisUrl
        ? redisTarget(options.redisUrl).kind === "cluster"
          ? "redis-cluster"
          : "redis"
        : "memory",
      replicaId: options.replicaId,
      waitReplicas: options.redisUrl ? (options.redisWaitReplicas ?? 0) : undefined,
    },
    "store ready",
  );
  const verifier = new OidcVerifier({ issuer: options.oidcIssuer ?? GITHUB_ISSUER });
  const auth = new Authenticator(store, options.adminToken, new OidcTrust(store, verifier));
  const authGuard = new AuthGuard(options.authFailuresPerMinute ?? 30, log, metrics);
  const outcomes = new Outcomes(metrics, log);
  const hub = new AgentHub({ store, auth, replicaId: options.replicaId, log, metrics, outcomes });
  const updates = new AgentUpdates(store, new ReleaseChannel(options.agentRelease, log), {
    readySeconds: options.agentUpdateReadySeconds ?? 180,
    concurrency: options.agentUpdateConcurrency ?? 1,
  });
  const agents = new AdminAgents(store, updates);
  const autoUpdater = new AutoUpdater({
    store,
    updates,
    replicaId: options.replicaId,
    intervalMs: (options.agentUpdateIntervalSeconds ?? 60) * 1000,
    log,
  });
  const keys = new AdminKeys(store, agents);
  const deploy = new DeployService({
    store,
    auth,
    log,
    metrics,
    defaultQueueTimeoutSeconds: options.queueTimeoutSeconds ?? 3600,
    outcomes,
  });
  const deployments = new AdminDeployments(store, deploy, agents);
  const describe = new DescribeService(store, agents, options.describeTimeoutSeconds * 1000);
  const expiry = new ExpirySweeper(store, metrics, log, outcomes);
  await hub.start();
  await describe.start();
  if (options.agentRelease !== undefined && options.agentAutoUpdate !== false) autoUpdater.start();
  expiry.start();
  const webhookConfig = options.webhooks ?? DEFAULT_WEBHOOKS;
  const sealer = new Sealer(webhookConfig.key);
  const dispatcher = new WebhookDispatcher({
    store,
    log,
    metrics,
    sealer,
    options: { ...webhookConfig, githubServerUrl: options.githubServerUrl ?? "https://github.com" },
    userAgent: `K8sDeploy-Webhook/${k8sdeployVersion()}`,
  });
  outcomes.listen(dispatcher);
  dispatcher.start();
  const webhooks = new AdminWebhooks(store, agents, sealer, webhookConfig.allowLoopback);
  const trust = new AdminTrust(store, agents, verifier.issuer);
  // One limit for the unary calls of both ports (rpc/admission.ts); streams are not counted.
  const admission = new Admission(options.maxConcurrentCalls ?? 256, log);
  const admin = admitted(
    admission,
    auditAdmin(log, adminHandlers(auth, agents, keys, deployments, describe, webhooks, trust)),
    ["watchDeployments"],
  );
  metrics.setSources({
    streamVersions: () => hub.streamVersions(),
    fleet: cachedFleetSnapshot(store),
    webhookBacklog: () => store.webhooks.pendingDeliveries(),
  });
  const webDist = options.webDist ?? defaultWebDist();
  if (!webDist) log.warn("web/dist not found: the dashboard is not served (run `npm run build`)");
  const deployHandlers: DeployHandlers = {
    deploy: admission.wrap(deploy.deploy),
    getDeployment: admission.wrap(deploy.getDeployment),
    watchDeployment: deploy.watchDeployment,
    cancelDeployment: admission.wrap(deploy.cancelDeployment),
  };
  const services = grpcServices(log, hub, deployHandlers, admin);
  return {
    store,
    grpcServices: [services.agent, services.deploy, services.admin],
    httpHandlers: [
      corsHandler(options.corsOrigins ?? []),
      dashboardConfigHandler({
        githubServerUrl: options.githubServerUrl ?? "https://github.com",
        publicGrpcUrl: options.publicUrl ?? "",
        oidcIssuer: verifier.issuer,
      }),
      connectHandler(
        log,
        {
          deploy: { service: services.deploy, handlers: deployHandlers as never },
          admin: { service: services.admin, handlers: admin as never },
        },
        authGuard,
        metrics,
      ),
      ...(webDist ? [webAppHandler(webDist)] : []),
    ],
    deploy,
    admin,
    metrics,
    authGuard,
    ready: () => store.ping(),
    shutdown: async () => {
      admission.stop();
      describe.stop();
      autoUpdater.stop();
      await expiry.stop();
      await dispatcher.stop();
      await hub.shutdown();
      await store.close();
    },
  };
}
