// STAND-IN for the GitHub REST API, for the action's tests only (GitHub cannot be reached here):
// an HTTP server on loopback that the bundled action reaches through GITHUB_API_URL. It answers
// the three endpoints the action uses the way GitHub documents them (commit statuses,
// deployments, deployment statuses), checks the token, and records every request. It is not a
// model of GitHub beyond that.
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";

export interface GitHubRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

export interface StandInGitHubApi {
  /** For GITHUB_API_URL. */
  url: string;
  requests: GitHubRequest[];
  close(): Promise<void>;
}

export async function startStandInGitHubApi(options: { token: string; failWith?: number }): Promise<StandInGitHubApi> {
  const requests: GitHubRequest[] = [];
  let nextDeploymentId = 1000;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
      const path = req.url ?? "/";
      requests.push({ method: req.method ?? "", path, headers: req.headers, body });
      const reply = (status: number, json: unknown) =>
        res.writeHead(status, { "content-type": "application/json; charset=utf-8" }).end(JSON.stringify(json));
      if (req.headers.authorization !== `token ${options.token}`) {
        reply(401, { message: "Bad credentials", documentation_url: "https://docs.github.com/rest" });
        return;
      }
      if (options.failWith) {
        reply(options.failWith, { message: "Resource not accessible by integration" });
        return;
      }
      if (req.method === "POST" && /^\/repos\/[^/]+\/[^/]+\/statuses\/[0-9a-f]{40}$/.test(path)) {
        reply(201, { id: requests.length, state: body.state, context: body.context, description: body.description });
        return;
      }
      if (req.method === "POST" && /^\/repos\/[^/]+\/[^/]+\/deployments$/.test(path)) {
        nextDeploymentId += 1;
        reply(201, { id: nextDeploymentId, ref: body.ref, environment: body.environment, payload: body.payload });
        return;
      }
      const status = /^\/repos\/[^/]+\/[^/]+\/deployments\/(\d+)\/statuses$/.exec(path);
      if (req.method === "POST" && status) {
        reply(201, { id: requests.length, state: body.state, deployment_url: `/deployments/${status[1]}` });
        return;
      }
      reply(404, { message: "Not Found" });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
