// The HTTP server: probes and metrics, plus whatever the app mounts (Connect, the web app).
// HTTPS when K8SDEPLOY_HTTP_TLS_CERT_FILE/KEY_FILE are set (HTTP/1.1, as browsers and probes use).
import { readFileSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { App } from "../app.js";
import { type Config, formatAddress } from "../config.js";
import { metrics } from "../metrics.js";

/**
 * A mounted handler: return true when it handled (or started handling) the request, false to
 * pass it on. Handlers run after the built-in routes, in the order given; a request nobody
 * handles gets 404.
 */
export type HttpHandler = (req: http.IncomingMessage, res: http.ServerResponse) => boolean | Promise<boolean>;

export interface HttpServerHandle {
  server: http.Server;
  /** The bound port (the real one when the config asked for port 0). */
  port: number;
  /** `host:port` with the bound port. */
  address: string;
  /** `http://host:port` or `https://host:port`. */
  url: string;
  /** Mounts another handler after the existing ones. */
  use(handler: HttpHandler): void;
  /** From now on /readyz answers 503 (the start of a shutdown). */
  drain(): void;
  /** drain(), stop accepting, close idle connections; after graceMs, close all. Idempotent. */
  close(graceMs: number): Promise<void>;
}

/**
 * app.ready(), but false when it throws or takes longer than timeoutMs (a store that does not
 * answer must not hang probes or the server start).
 */
export async function appReady(app: Pick<App, "ready">, log: Logger, timeoutMs = 3000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => {
      log.warn({ timeoutMs }, "readiness check timed out");
      resolve(false);
    }, timeoutMs);
  });
  try {
    return await Promise.race([app.ready(), timeout]);
  } catch (err) {
    log.warn({ err }, "readiness check failed");
    return false;
  } finally {
    clearTimeout(timer);
  }
}

export interface HttpServerOptions {
  /** Metrics registry for /metrics (default: the process-wide one). */
  registry?: Registry;
}

export async function startHttpServer(
  config: Config,
  app: App,
  log: Logger,
  extraHandler?: HttpHandler | HttpHandler[],
  options: HttpServerOptions = {},
): Promise<HttpServerHandle> {
  const registry = options.registry ?? metrics.registry;
  const handlers: HttpHandler[] = extraHandler === undefined ? [] : [extraHandler].flat();
  let draining = false;

  const send = (res: http.ServerResponse, status: number, body: string, type = "text/plain; charset=utf-8") => {
    res.writeHead(status, {
      "content-type": type,
      "cache-control": "no-store",
      "content-length": Buffer.byteLength(body),
    });
    res.end(res.req.method === "HEAD" ? undefined : body);
  };

  // /healthz follows app.ready(); /readyz also fails once draining, so load balancers stop
  // sending traffic while liveness stays green during a graceful shutdown.
  const probe = async (res: http.ServerResponse, honourDrain: boolean) => {
    const ready = !(honourDrain && draining) && (await appReady(app, log));
    send(res, ready ? 200 : 503, ready ? "ok\n" : honourDrain && draining ? "shutting down\n" : "not ready\n");
  };

  const builtin = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<boolean> => {
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    const pathname = (req.url ?? "/").split("?")[0];
    switch (pathname) {
      case "/healthz":
        await probe(res, false);
        return true;
      case "/readyz":
        await probe(res, true);
        return true;
      case "/metrics":
        send(res, 200, await registry.metrics(), registry.contentType);
        return true;
      default:
        return false;
    }
  };

  const listener: http.RequestListener = async (req, res) => {
    try {
      if (await builtin(req, res)) return;
      for (const handler of handlers) {
        if (await handler(req, res)) return;
      }
      send(res, 404, "not found\n");
    } catch (err) {
      log.error({ err, method: req.method, url: req.url }, "http handler failed");
      if (!res.headersSent) send(res, 500, "internal error\n");
      else res.destroy();
    }
  };
  const server: http.Server = config.httpTls
    ? https.createServer(
        { cert: readFileSync(config.httpTls.certFile), key: readFileSync(config.httpTls.keyFile) },
        listener,
      )
    : http.createServer(listener);

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => {
      const address = formatAddress(config.httpListen.host, config.httpListen.port);
      reject(new Error(`K8SDEPLOY_HTTP_LISTEN: cannot listen on ${address}: ${err.message}`, { cause: err }));
    };
    server.once("error", onError);
    server.listen(config.httpListen.port, config.httpListen.host, () => {
      server.off("error", onError);
      resolve();
    });
  });
  server.on("error", (err) => log.error({ err }, "http server error"));
  const port = (server.address() as AddressInfo).port;

  const drain = () => {
    draining = true;
  };
  let closing: Promise<void> | undefined;
  const close = (graceMs: number) => {
    closing ??= new Promise<void>((resolve) => {
      drain();
      const force = setTimeout(() => {
        server.closeAllConnections();
      }, graceMs);
      force.unref();
      server.close(() => {
        clearTimeout(force);
        resolve();
      });
      server.closeIdleConnections();
    });
    return closing;
  };

  return {
    server,
    port,
    address: formatAddress(config.httpListen.host, port),
    url: `${config.httpTls ? "https" : "http"}://${formatAddress(config.httpListen.host, port)}`,
    use: (handler) => {
      handlers.push(handler);
    },
    drain,
    close,
  };
}
