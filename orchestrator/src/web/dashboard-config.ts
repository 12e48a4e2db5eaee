// GET /dashboard-config.json: the few server settings the dashboard needs before sign-in (none of
// them secret): the GitHub server that repository, commit and actor links point to
// (K8SDEPLOY_GITHUB_SERVER_URL), so links never take their host from agent- or CI-supplied data;
// the gRPC URL the install and workflow snippets name (K8SDEPLOY_PUBLIC_URL, "" when unset); the
// OIDC issuer trust policies accept (K8SDEPLOY_OIDC_ISSUER).
import type { IncomingMessage, ServerResponse } from "node:http";

export const DASHBOARD_CONFIG_PATH = "/dashboard-config.json";

export interface DashboardConfig {
  githubServerUrl: string;
  /** "" when K8SDEPLOY_PUBLIC_URL is unset: the dashboard then shows a placeholder, never a guess. */
  publicGrpcUrl: string;
  oidcIssuer: string;
}

export function dashboardConfigHandler(
  config: DashboardConfig,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const body = `${JSON.stringify(config)}\n`;
  return (req, res) => {
    if ((req.url ?? "/").split("?")[0] !== DASHBOARD_CONFIG_PATH) return false;
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    res.writeHead(200, {
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-cache",
      "content-length": Buffer.byteLength(body),
    });
    res.end(req.method === "HEAD" ? undefined : body);
    return true;
  };
}
