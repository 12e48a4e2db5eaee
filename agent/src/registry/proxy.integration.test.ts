// HTTPS_PROXY / NO_PROXY for the registry client, against the test bed's real registry. The proxy
// is a hand-written STAND-IN (an HTTP CONNECT tunnel on loopback, ~30 lines below) that records
// what it was asked; the registry behind it is the real one.
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { type AddressInfo, connect } from "node:net";
import test from "ava";
import { pushTestImage, testRegistry } from "../../../test/support/registry.js";
import { RegistryClient, RegistryError } from "./client.js";
import { bypassesProxy, proxyFor } from "./http.js";
import { registryImage } from "./reference.js";

const registry = testRegistry();
const caPem = readFileSync(registry.caFile, "utf8");
const credential = {
  secret: "test/regcred",
  source: "imagePullSecrets" as const,
  username: registry.user,
  password: registry.password,
};

interface StandInProxy {
  url: string;
  connects: { target: string; auth: string | undefined }[];
  close(): Promise<void>;
}

/** A stand-in CONNECT proxy; `refuse` answers 407 instead of tunnelling. */
async function standInProxy(refuse = false): Promise<StandInProxy> {
  const connects: StandInProxy["connects"] = [];
  const server: Server = createServer((_req, res) => res.writeHead(405).end());
  server.on("connect", (req, socket, head) => {
    connects.push({ target: req.url ?? "", auth: req.headers["proxy-authorization"] });
    if (refuse) {
      socket.end("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n");
      return;
    }
    const [host, port] = (req.url ?? "").split(":");
    const upstream = connect(Number(port), host, () => {
      socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on("error", () => socket.destroy());
    socket.on("error", () => upstream.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://proxyuser:proxypass@127.0.0.1:${port}`,
    connects,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

test("proxyFor / bypassesProxy read the variables like curl", (t) => {
  const u = (s: string) => new URL(s);
  const env = {
    HTTPS_PROXY: "http://p:3128",
    http_proxy: "p2:8080",
    NO_PROXY: ".corp.example, registry.local:5000,10.1.2.3",
  };
  t.is(proxyFor(u("https://ghcr.io/v2/"), env)?.host, "p:3128");
  t.is(proxyFor(u("http://r.lan/v2/"), env)?.host, "p2:8080");
  t.is(proxyFor(u("https://a.corp.example/v2/"), env), undefined);
  t.is(proxyFor(u("https://corp.example/v2/"), env), undefined);
  t.is(proxyFor(u("https://registry.local:5000/v2/"), env), undefined);
  t.truthy(proxyFor(u("https://registry.local:5443/v2/"), env), "another port goes through the proxy");
  t.is(proxyFor(u("https://10.1.2.3/v2/"), env), undefined);
  t.true(bypassesProxy(u("https://x.y/"), "*"));
  t.false(bypassesProxy(u("https://notcorp.example/"), "corp.example"));
  t.is(proxyFor(u("https://ghcr.io/"), {}), undefined);
});

test("an image is resolved through the proxy's CONNECT tunnel, with the proxy's credentials", async (t) => {
  const image = await pushTestImage(`k8sd-proxy-${Date.now().toString(36)}/app`, "1", { platforms: ["linux/amd64"] });
  const proxy = await standInProxy();
  const client = new RegistryClient({ caPem, env: { HTTPS_PROXY: proxy.url } });
  try {
    const resolved = await client.resolve(registryImage(image.tagged), { credential });
    t.is(resolved.digest, image.digest);
    t.true(proxy.connects.length >= 1);
    t.is(proxy.connects[0]?.target, registry.host);
    t.is(proxy.connects[0]?.auth, `Basic ${Buffer.from("proxyuser:proxypass").toString("base64")}`);
  } finally {
    await client.close();
    await proxy.close();
  }

  // NO_PROXY: straight to the registry.
  const bypassed = await standInProxy();
  const direct = new RegistryClient({ caPem, env: { HTTPS_PROXY: bypassed.url, NO_PROXY: "localhost,127.0.0.1" } });
  try {
    t.is((await direct.resolve(registryImage(image.tagged), { credential })).digest, image.digest);
    t.is(bypassed.connects.length, 0);
  } finally {
    await direct.close();
    await bypassed.close();
  }
});

test("a proxy that refuses the tunnel makes the registry unreachable, saying so", async (t) => {
  const proxy = await standInProxy(true);
  const client = new RegistryClient({ caPem, env: { HTTPS_PROXY: proxy.url } });
  try {
    const err = await t.throwsAsync(client.resolve(registryImage(`${registry.host}/x/y:1`), { credential }));
    t.true(err instanceof RegistryError && err.kind === "unreachable", String(err));
    t.regex(err?.message ?? "", /proxy 127\.0\.0\.1:\d+ refused CONNECT 127\.0\.0\.1:\d+: HTTP 407/);
    t.false((err?.message ?? "").includes("proxypass"));
  } finally {
    await client.close();
    await proxy.close();
  }
});
