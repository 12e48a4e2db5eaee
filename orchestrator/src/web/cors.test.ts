import * as http from "node:http";
import type { AddressInfo } from "node:net";
import test from "ava";
import { corsHandler } from "./cors.js";

async function serve(origins: string[]): Promise<{ url: string; close: () => Promise<void> }> {
  const handle = corsHandler(origins);
  const server = http.createServer((req, res) => {
    if (handle(req, res)) return;
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("next handler");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

const preflight = (origin: string) => ({
  method: "OPTIONS",
  headers: {
    origin,
    "access-control-request-method": "POST",
    "access-control-request-headers": "authorization, content-type, connect-protocol-version",
  },
});

test("answers a preflight from an allowed origin with Connect's methods and headers plus Authorization", async (t) => {
  const s = await serve(["http://localhost:5173"]);
  try {
    const r = await fetch(`${s.url}/k8sdeploy.v1.AdminService/ListAgents`, preflight("http://localhost:5173"));
    t.is(r.status, 204);
    t.is(r.headers.get("access-control-allow-origin"), "http://localhost:5173");
    t.regex(r.headers.get("access-control-allow-methods") ?? "", /POST/);
    const headers = (r.headers.get("access-control-allow-headers") ?? "").toLowerCase();
    for (const h of ["authorization", "content-type", "connect-protocol-version", "connect-timeout-ms"]) {
      t.true(headers.includes(h), h);
    }
    t.truthy(r.headers.get("access-control-max-age"));
    t.regex(r.headers.get("vary") ?? "", /Origin/);
  } finally {
    await s.close();
  }
});

test("rejects a preflight from another origin", async (t) => {
  const s = await serve(["https://dash.example.com"]);
  try {
    const r = await fetch(`${s.url}/x`, preflight("https://evil.example.com"));
    t.is(r.status, 403);
    t.is(r.headers.get("access-control-allow-origin"), null);
  } finally {
    await s.close();
  }
});

test("adds headers to actual requests from allowed origins and passes them on", async (t) => {
  const s = await serve(["https://dash.example.com"]);
  try {
    const ok = await fetch(`${s.url}/x`, { method: "POST", headers: { origin: "https://dash.example.com" } });
    t.is(await ok.text(), "next handler");
    t.is(ok.headers.get("access-control-allow-origin"), "https://dash.example.com");
    t.regex(ok.headers.get("access-control-expose-headers") ?? "", /Grpc-Status/i);
    const other = await fetch(`${s.url}/x`, { method: "POST", headers: { origin: "https://evil.example.com" } });
    t.is(await other.text(), "next handler");
    t.is(other.headers.get("access-control-allow-origin"), null);
    const none = await fetch(`${s.url}/x`, { method: "POST" });
    t.is(none.headers.get("access-control-allow-origin"), null);
  } finally {
    await s.close();
  }
});

test("`*` allows any http(s) origin (echoed), not `null`", async (t) => {
  const s = await serve(["*"]);
  try {
    const r = await fetch(`${s.url}/x`, preflight("http://10.0.0.5:3000"));
    t.is(r.status, 204);
    t.is(r.headers.get("access-control-allow-origin"), "http://10.0.0.5:3000");
    const nul = await fetch(`${s.url}/x`, preflight("null"));
    t.is(nul.status, 403);
  } finally {
    await s.close();
  }
});

test("with no origins it does nothing", async (t) => {
  const s = await serve([]);
  try {
    const r = await fetch(`${s.url}/x`, preflight("http://localhost:5173"));
    t.is(await r.text(), "next handler");
    t.is(r.headers.get("access-control-allow-origin"), null);
    const plain = await fetch(`${s.url}/x`, { method: "OPTIONS" });
    t.is(await plain.text(), "next handler");
  } finally {
    await s.close();
  }
});
