/// <reference path="./undici-parts.d.ts" />
// The registry client's HTTP: undici's EnvHttpProxyAgent (HTTPS_PROXY/HTTP_PROXY/NO_PROXY, a
// connect timeout, extra CAs for the target and not the proxy) and its request API.
//
// Loaded lazily, and only those two modules rather than the package's index: the index brings
// fetch, WebSocket, caches and mocks (0.74 MB of bundle, +14 MiB RSS once evaluated, measured with
// Node 20), the two modules 0.39 MB and +6.5 MiB — paid on the first pre-flight, not by an idle
// agent. The version is pinned exactly (agent/package.json); the registry integration tests run
// every path through these modules.
import { rootCertificates } from "node:tls";
import type { Dispatcher } from "undici";

export interface HttpOptions {
  /** Extra CA certificates (PEM) trusted besides the system roots. */
  caPem?: string | undefined;
  /** TCP + TLS connect timeout, ms. */
  connectTimeoutMs: number;
}

export interface Http {
  get(url: URL, headers: Record<string, string>, signal: AbortSignal | undefined): Promise<Dispatcher.ResponseData>;
  close(): Promise<void>;
}

export function createHttp(options: HttpOptions, dispatcher?: Dispatcher): Http {
  let ready:
    | Promise<{ dispatcher: Dispatcher; request: typeof import("undici/lib/api/api-request.js")["default"] }>
    | undefined;
  const load = () => {
    ready ??= Promise.all([
      import("undici/lib/dispatcher/env-http-proxy-agent.js"),
      import("undici/lib/api/api-request.js"),
    ]).then(([agent, api]) => {
      const timeout = options.connectTimeoutMs;
      const ca = options.caPem ? [...rootCertificates, options.caPem] : undefined;
      return {
        dispatcher:
          dispatcher ??
          new agent.default({
            connect: { ca, timeout },
            requestTls: { ca, timeout },
            proxyTls: { timeout },
            keepAliveTimeout: 4000,
          }),
        request: api.default,
      };
    });
    return ready;
  };
  return {
    async get(url, headers, signal) {
      const { dispatcher: d, request } = await load();
      return request.call(d, {
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: "GET",
        headers,
        signal,
      });
    },
    async close() {
      if (ready) await (await ready).dispatcher.close();
    },
  };
}
