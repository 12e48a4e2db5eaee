// CORS for the Connect APIs on the HTTP port, for dashboards served from another origin (e.g.
// the Vite dev server). Mount it before the Connect handler: it answers preflight requests
// (OPTIONS with Access-Control-Request-Method) itself and, for other requests from an allowed
// origin, only adds the response headers and lets the request go on. Same-origin requests need
// none of this; an empty origin list turns it off.
import type { IncomingMessage, ServerResponse } from "node:http";
import { cors } from "@connectrpc/connect";

export type CorsHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

const allowedMethods = cors.allowedMethods.join(", ");
const allowedHeaders = [...cors.allowedHeaders, "Authorization"].join(", ");
const exposedHeaders = cors.exposedHeaders.join(", ");
const MAX_AGE_SECONDS = 7200;

function normaliseOrigin(origin: string): string | undefined {
  try {
    const url = new URL(origin);
    if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
    return url.origin;
  } catch {
    return undefined;
  }
}

/** `origins`: exact origins (`https://host[:port]`), or `*` for any. */
export function corsHandler(origins: string[]): CorsHandler {
  const any = origins.includes("*");
  const allowed = new Set(origins.filter((o) => o !== "*").map((o) => normaliseOrigin(o) ?? o));

  const allowedOrigin = (req: IncomingMessage): string | undefined => {
    const header = req.headers.origin;
    if (typeof header !== "string" || header === "") return undefined;
    const origin = normaliseOrigin(header);
    if (!origin) return undefined;
    return any || allowed.has(origin) ? origin : undefined;
  };

  return (req, res) => {
    if (!any && allowed.size === 0) return false;
    const origin = allowedOrigin(req);
    const preflight = req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined;
    if (preflight) {
      if (req.headers.origin === undefined) return false;
      if (!origin) {
        res.writeHead(403, {
          "content-type": "text/plain; charset=utf-8",
          vary: "Origin",
          "cache-control": "no-store",
        });
        res.end("origin not allowed (K8SDEPLOY_CORS_ORIGINS)\n");
        return true;
      }
      res.writeHead(204, {
        "access-control-allow-origin": origin,
        "access-control-allow-methods": allowedMethods,
        "access-control-allow-headers": allowedHeaders,
        "access-control-max-age": String(MAX_AGE_SECONDS),
        vary: "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
        "content-length": "0",
      });
      res.end();
      return true;
    }
    if (origin) {
      res.setHeader("access-control-allow-origin", origin);
      res.setHeader("access-control-expose-headers", exposedHeaders);
      res.setHeader("vary", "Origin");
    }
    return false;
  };
}
