// Serves the dashboard (web/dist, built by `npm run build`) from the orchestrator's HTTP port.
// GET/HEAD only. A path without a dot that is not an API or probe path is a client-side route
// and gets index.html; a path with a dot is a file, and a file that does not exist is left to
// the next handler (404). Hashed assets under /assets/ are cached for a year, index.html never.
// Paths are decoded, normalised and checked (after resolving symlinks) to stay inside the dist
// directory; dot-files are never served.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, realpathSync, statSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const contentTypes: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".webmanifest": "application/manifest+json; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".avif": "image/avif",
  ".ico": "image/x-icon",
  ".woff": "font/woff",
  ".woff2": "font/woff2",
  ".wasm": "application/wasm",
};

const compressible = new Set([".html", ".js", ".mjs", ".css", ".json", ".map", ".svg", ".txt", ".webmanifest"]);

/** Paths owned by the server itself, never answered with index.html. */
const reservedPrefixes = ["/healthz", "/readyz", "/metrics", "/k8sdeploy."];

const IMMUTABLE = "public, max-age=31536000, immutable";

export type WebAppHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

// The orchestrator bundle (scripts/bundle.mjs) sets this to where it copies web/dist, relative
// to the bundle file ("./web/").
declare const __K8SDEPLOY_BUNDLED_WEB_DIST__: string | undefined;

/**
 * The dashboard's files: beside the bundle when running from it, else the repository's web/dist,
 * found relative to this module (orchestrator/dist/web or orchestrator/src/web); undefined when
 * the dashboard has not been built.
 */
export function defaultWebDist(): string | undefined {
  const relative =
    typeof __K8SDEPLOY_BUNDLED_WEB_DIST__ === "string" ? __K8SDEPLOY_BUNDLED_WEB_DIST__ : "../../../web/dist/";
  const dir = fileURLToPath(new URL(relative, import.meta.url));
  return existsSync(path.join(dir, "index.html")) ? path.resolve(dir) : undefined;
}

/** Content-Security-Policy for index.html, allowing its own inline scripts by hash. */
export function contentSecurityPolicy(html: string): string {
  const hashes: string[] = [];
  for (const match of html.matchAll(/<script(?![^>]*\bsrc=)[^>]*>([\s\S]*?)<\/script>/gi)) {
    const body = match[1] ?? "";
    if (body.trim() !== "") hashes.push(`'sha256-${createHash("sha256").update(body).digest("base64")}'`);
  }
  return [
    "default-src 'self'",
    `script-src 'self'${hashes.length > 0 ? ` ${hashes.join(" ")}` : ""}`,
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join("; ");
}

interface Resolved {
  file: string;
  size: number;
  mtimeMs: number;
  ext: string;
  isIndex: boolean;
  immutable: boolean;
}

function decodePath(url: string | undefined): string | undefined {
  const raw = (url ?? "/").split(/[?#]/, 1)[0] ?? "/";
  if (!raw.startsWith("/")) return undefined;
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    return undefined;
  }
  if (decoded.includes("\0") || decoded.includes("\\")) return undefined;
  return decoded;
}

export function webAppHandler(distDir: string): WebAppHandler {
  const root = realpathSync(path.resolve(distDir));
  const indexFile = path.join(root, "index.html");
  const gzipCache = new Map<string, { key: string; body: Buffer }>();
  let csp: { key: string; value: string } | undefined;

  const inside = (file: string) => file === root || file.startsWith(root + path.sep);

  const fileAt = (file: string): { size: number; mtimeMs: number } | undefined => {
    try {
      const st = statSync(file);
      if (!st.isFile()) return undefined;
      const real = realpathSync(file);
      if (!inside(real)) return undefined;
      return { size: st.size, mtimeMs: st.mtimeMs };
    } catch {
      return undefined;
    }
  };

  const index = (): Resolved | undefined => {
    const st = fileAt(indexFile);
    return st && { file: indexFile, ...st, ext: ".html", isIndex: true, immutable: false };
  };

  const resolve = (pathname: string): Resolved | undefined => {
    if (reservedPrefixes.some((p) => pathname === p || pathname.startsWith(p.endsWith(".") ? p : `${p}/`))) {
      return undefined;
    }
    const segments = pathname.split("/").filter((s) => s !== "");
    if (segments.some((s) => s === ".." || s.startsWith("."))) return undefined;
    const last = segments[segments.length - 1] ?? "";
    if (!last.includes(".")) return index(); // "/", "/deployments/dep_1", "/assets/": the app
    const file = path.resolve(root, ...segments);
    if (!inside(file)) return undefined;
    const st = fileAt(file);
    if (!st) return undefined;
    const ext = path.extname(file).toLowerCase();
    return {
      file,
      ...st,
      ext,
      isIndex: file === indexFile,
      immutable: segments[0] === "assets" && segments.length > 1,
    };
  };

  const gzipped = (r: Resolved, body: Buffer): Buffer => {
    const key = `${r.size}:${r.mtimeMs}`;
    const hit = gzipCache.get(r.file);
    if (hit?.key === key) return hit.body;
    const compressed = gzipSync(body, { level: 9 });
    gzipCache.set(r.file, { key, body: compressed });
    return compressed;
  };

  return (req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    const pathname = decodePath(req.url);
    if (pathname === undefined) return false;
    const found = resolve(pathname);
    if (!found) return false;

    let body: Buffer;
    try {
      body = readFileSync(found.file);
    } catch {
      return false;
    }
    const headers: Record<string, string | number> = {
      "content-type": contentTypes[found.ext] ?? "application/octet-stream",
      "x-content-type-options": "nosniff",
    };
    if (found.isIndex) {
      headers["cache-control"] = "no-store";
      const key = `${found.size}:${found.mtimeMs}`;
      if (csp?.key !== key) csp = { key, value: contentSecurityPolicy(body.toString("utf8")) };
      headers["content-security-policy"] = csp.value;
      headers["referrer-policy"] = "no-referrer";
      headers["x-frame-options"] = "DENY";
    } else {
      headers["cache-control"] = found.immutable ? IMMUTABLE : "no-cache";
      const etag = `W/"${found.size.toString(36)}-${Math.floor(found.mtimeMs).toString(36)}"`;
      headers.etag = etag;
      if (req.headers["if-none-match"] === etag) {
        res.writeHead(304, headers);
        res.end();
        return true;
      }
    }
    if (compressible.has(found.ext) && body.length > 1024) {
      headers.vary = "accept-encoding";
      if (/\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""))) {
        body = gzipped(found, body);
        headers["content-encoding"] = "gzip";
      }
    }
    headers["content-length"] = body.length;
    res.writeHead(200, headers);
    res.end(req.method === "HEAD" ? undefined : body);
    return true;
  };
}
