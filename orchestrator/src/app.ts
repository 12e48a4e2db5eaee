// Wires the store and the features into the handlers that the servers expose.
import type { Logger } from "pino";
import { adminHandlers } from "./admin/admin-service.js";
import { AdminAgents } from "./agents/admin-agents.js";
import { AgentHub } from "./agents/agent-hub.js";
import { AuthGuard } from "./auth/auth-guard.js";
import { Authenticator } from "./auth/authenticate.js";
import type { Config } from "./config.js";
import { AdminDeployments } from "./deploy/admin-deployments.js";
import { DeployService } from "./deploy/deploy-service.js";
import { ExpirySweeper } from "./deploy/expiry.js";
import { DescribeService } from "./describe/describe-service.js";
import { AdminKeys } from "./keys/admin-keys.js";
import { type Metrics, metrics } from "./metrics.js";
import { Admission, admitted } from "./rpc/admission.js";
import { connectHandler } from "./rpc/connect-adapter.js";
import { type DeployHandlers, type GrpcService, grpcServices } from "./rpc/grpc-services.js";
import type { HttpHandler } from "./server/http-server.js";
import { MemoryStore } from "./store/memory-store.js";
import { createRedisStore } from "./store/redis-store.js";
import { redisTarget } from "./store/redis-url.js";
import type { Store } from "./store/store.js";
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
}

export async function createApp(config: Config, log: Logger): Promise<App> {
  return createAppWith(
    {
      replicaId: config.replicaId,
      adminToken: config.adminToken,
      redisUrl: config.redisUrl,
      describeTimeoutSeconds: config.describeTimeoutSeconds,
      queueTimeoutSeconds: config.queueTimeoutSeconds,
      corsOrigins: config.corsOrigins,
      githubServerUrl: config.githubServerUrl,
      authFailuresPerMinute: config.authFailuresPerMinute,
      redisWaitReplicas: config.redisWaitReplicas,
      maxConcurrentCalls: config.maxConcurrentCalls,
      retentionSeconds: config.retentionSeconds,
      memoryMaxDeployments: config.memoryMaxDeployments,
    },
    log,
  );
}

export async function createAppWith(options: AppOptions, log: Logger): Promise<App> {
  const store: Store = options.redisUrl
    ? await createRedisStore(options.redisUrl, {
        replicaId: options.replicaId,
        log,
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
  const auth = new Authenticator(store, options.adminToken);
  const authGuard = new AuthGuard(options.authFailuresPerMinute ?? 30, log, metrics);
  const hub = new AgentHub({ store, auth, replicaId: options.replicaId, log, metrics });
  const agents = new AdminAgents(store);
  const keys = new AdminKeys(store, agents);
  const deploy = new DeployService({
    store,
    auth,
    log,
    metrics,
    defaultQueueTimeoutSeconds: options.queueTimeoutSeconds ?? 3600,
  });
  const deployments = new AdminDeployments(store, deploy, agents);
  const describe = new DescribeService(store, agents, options.describeTimeoutSeconds * 1000);
  const expiry = new ExpirySweeper(store, metrics, log);
  await hub.start();
  await describe.start();
  expiry.start();
  // One limit for the unary calls of both ports (rpc/admission.ts); streams are not counted.
  const admission = new Admission(options.maxConcurrentCalls ?? 256, log);
  const admin = admitted(admission, adminHandlers(auth, agents, keys, deployments, describe), ["watchDeployments"]);
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
      dashboardConfigHandler({ githubServerUrl: options.githubServerUrl ?? "https://github.com" }),
      connectHandler(
        log,
        {
          deploy: { service: services.deploy, handlers: deployHandlers as never },
          admin: { service: services.admin, handlers: admin as never },
        },
        authGuard,
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
      await expiry.stop();
      await hub.shutdown();
      await store.close();
    },
  };
}
