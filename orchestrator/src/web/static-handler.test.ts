import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import test from "ava";
import { contentSecurityPolicy, defaultWebDist, webAppHandler } from "./static-handler.js";

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

let dir: string;
let outside: string;
let server: http.Server;
let port: number;

const INDEX = '<!doctype html><html><head><script>var x=1;</script></head><body><div id="root"></div></body></html>';
const JS = `console.log(${JSON.stringify("x".repeat(4000))});`;

test.before(async () => {
  outside = await mkdtemp(join(tmpdir(), "k8sd-web-outside-"));
  await writeFile(join(outside, "secret.txt"), "top secret");
  dir = await mkdtemp(join(tmpdir(), "k8sd-web-dist-"));
  await mkdir(join(dir, "assets"));
  await writeFile(join(dir, "index.html"), INDEX);
  await writeFile(join(dir, "assets", "index-AbC123.js"), JS);
  await writeFile(join(dir, "assets", "index-AbC123.css"), "body{color:red}");
  await writeFile(join(dir, "favicon.svg"), "<svg xmlns='http://www.w3.org/2000/svg'/>");
  await writeFile(join(dir, "data.bin"), Buffer.from([1, 2, 3]));
  await writeFile(join(dir, ".env"), "HIDDEN=1");
  await symlink(join(outside, "secret.txt"), join(dir, "link.txt"));
  const handle = webAppHandler(dir);
  server = http.createServer((req, res) => {
    if (!handle(req, res)) {
      res.writeHead(404, { "x-fallthrough": "1" });
      res.end("not found");
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});

test.after.always(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await rm(dir, { recursive: true, force: true });
  await rm(outside, { recursive: true, force: true });
});

/** A raw request: the path goes on the wire as given (no URL normalisation, unlike fetch). */
function request(path: string, options: { method?: string; headers?: http.OutgoingHttpHeaders } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, path, method: options.method ?? "GET", headers: options.headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
      },
    );
    req.on("error", reject);
    req.end();
  });
}

test("/ and client-side routes get index.html, never cached, with a CSP that allows its inline script", async (t) => {
  for (const path of ["/", "/deployments", "/deployments/dep_123abc", "/agents?x=1", "/cluster/"]) {
    const r = await request(path);
    t.is(r.status, 200, path);
    t.is(r.headers["content-type"], "text/html; charset=utf-8", path);
    t.is(r.headers["cache-control"], "no-store", path);
    t.is(r.body.toString(), INDEX, path);
  }
  const r = await request("/");
  t.regex(String(r.headers["content-security-policy"]), /script-src 'self' 'sha256-[A-Za-z0-9+/=]+'/);
  t.regex(String(r.headers["content-security-policy"]), /frame-ancestors 'none'/);
  t.is(r.headers["x-content-type-options"], "nosniff");
});

test("hashed assets are immutable with the right content types", async (t) => {
  const js = await request("/assets/index-AbC123.js");
  t.is(js.status, 200);
  t.is(js.headers["content-type"], "text/javascript; charset=utf-8");
  t.is(js.headers["cache-control"], "public, max-age=31536000, immutable");
  t.is(js.body.toString(), JS);
  const css = await request("/assets/index-AbC123.css");
  t.is(css.headers["content-type"], "text/css; charset=utf-8");
  t.is(css.headers["cache-control"], "public, max-age=31536000, immutable");
  const svg = await request("/favicon.svg");
  t.is(svg.headers["content-type"], "image/svg+xml");
  t.is(svg.headers["cache-control"], "no-cache");
  const bin = await request("/data.bin");
  t.is(bin.headers["content-type"], "application/octet-stream");
});

test("gzip when accepted, with Vary", async (t) => {
  const r = await request("/assets/index-AbC123.js", { headers: { "accept-encoding": "gzip, deflate" } });
  t.is(r.headers["content-encoding"], "gzip");
  t.is(r.headers.vary, "accept-encoding");
  t.true(r.body.length < JS.length / 4);
  t.is(gunzipSync(r.body).toString(), JS);
  t.is(Number(r.headers["content-length"]), r.body.length);
  const plain = await request("/assets/index-AbC123.js");
  t.is(plain.headers["content-encoding"], undefined);
});

test("HEAD sends headers only; ETag revalidation answers 304", async (t) => {
  const head = await request("/assets/index-AbC123.js", { method: "HEAD" });
  t.is(head.status, 200);
  t.is(head.body.length, 0);
  t.is(Number(head.headers["content-length"]), Buffer.byteLength(JS));
  const etag = String(head.headers.etag);
  const again = await request("/assets/index-AbC123.js", { headers: { "if-none-match": etag } });
  t.is(again.status, 304);
  t.is(again.body.length, 0);
});

test("missing files, other methods, API and probe paths fall through", async (t) => {
  for (const path of [
    "/assets/nope.js",
    "/nope.css",
    "/k8sdeploy.v1.AdminService/ListAgents",
    "/healthz",
    "/metrics",
  ]) {
    const r = await request(path);
    t.is(r.status, 404, path);
    t.is(r.headers["x-fallthrough"], "1", path);
  }
  const post = await request("/", { method: "POST" });
  t.is(post.headers["x-fallthrough"], "1");
  const options = await request("/deployments", { method: "OPTIONS" });
  t.is(options.headers["x-fallthrough"], "1");
});

test("no path traversal, no dot-files, no symlinks out of the directory", async (t) => {
  const attempts = [
    "/../secret.txt",
    "/assets/../../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E%2Fsecret.txt",
    "/assets/%2e%2e/%2e%2e/etc/passwd",
    "/..%2f..%2f..%2fetc%2fpasswd",
    "/..%5c..%5cetc%5cpasswd",
    "/%00index.html",
    "/index.html%00.js",
    "/.env",
    "/assets/.%2e/.env",
    "/link.txt",
    "/%E0%A4%A.js",
  ];
  for (const path of attempts) {
    const r = await request(path);
    t.not(r.body.toString(), "top secret", path);
    t.false(r.body.toString().includes("HIDDEN"), path);
    t.false(r.body.toString().includes("root:"), path);
    t.true(r.status === 404 || (r.status === 200 && r.body.toString() === INDEX), `${path}: ${r.status}`);
  }
});

test("contentSecurityPolicy hashes inline scripts only", (t) => {
  const csp = contentSecurityPolicy(
    '<script src="/a.js"></script><script>a()</script><script type="module">b()</script>',
  );
  t.is(csp.match(/'sha256-/g)?.length, 2);
});

test("defaultWebDist points at web/dist or is undefined", (t) => {
  const found = defaultWebDist();
  if (found !== undefined) t.regex(found, /web[/\\]dist$/);
  else t.pass();
});
