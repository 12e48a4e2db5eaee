// The agent's probe endpoint (node:http; the agent stays lean): GET /livez and /readyz answer 200
// or 503 with a small JSON report (AgentHealth), for the kubelet's httpGet probes, and GET
// /metrics the Prometheus text when given a renderer. Nothing else is served; it carries no secrets.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { AgentHealth, HealthReport } from "./health-state.js";

export interface HealthServer {
  /** `host:port` actually bound (port 0 picks one). */
  address: string;
  close(): Promise<void>;
}

export interface Metrics {
  contentType: string;
  render(): string;
}

export function startHealthServer(
  health: AgentHealth,
  listen: { host: string; port: number },
  metrics?: Metrics,
): Promise<HealthServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/metrics" && metrics && (req.method === "GET" || req.method === "HEAD")) {
      const body = metrics.render();
      res.writeHead(200, { "content-type": metrics.contentType, "cache-control": "no-store" });
      res.end(req.method === "HEAD" ? undefined : body);
      return;
    }
    let report: HealthReport | undefined;
    if (path === "/livez" || path === "/healthz") report = health.liveness();
    else if (path === "/readyz") report = health.readiness();
    if (report === undefined) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: use /livez or /readyz\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n");
      return;
    }
    const body = `${JSON.stringify({ status: report.ok ? "ok" : "failing", checks: report.checks })}\n`;
    res.writeHead(report.ok ? 200 : 503, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(req.method === "HEAD" ? undefined : body);
  });
  server.keepAliveTimeout = 5_000;
  // Probes are tiny; refuse anything that tries to hold the socket.
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(listen.port, listen.host, () => {
      server.off("error", reject);
      const a = server.address() as AddressInfo;
      resolve({
        address: `${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`,
        close: () =>
          new Promise((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}
