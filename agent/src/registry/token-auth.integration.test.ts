// The registry token flow (WWW-Authenticate: Bearer realm=…, the scheme of ghcr.io, Docker Hub,
// Quay…) against a real CNCF Distribution registry — the test bed's binary, started here with
// `auth: token` instead of the test bed's htpasswd — and a hand-written STAND-IN token service
// (below: Basic auth in, an RS256 JWT with an x5c header out, as Docker's token spec describes),
// because no token server ships with Distribution.
import { type ChildProcess, spawn } from "node:child_process";
import { createPrivateKey, createSign, randomBytes, X509Certificate } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import test from "ava";
import { findBuiltTool } from "../../../test/support/registry.js";
import { freePort, run, selfSignedCert, tempDir } from "../../../test/support/tools.js";
import { RegistryClient, RegistryError } from "./client.js";
import type { RegistryCredential } from "./credentials.js";
import { registryImage } from "./reference.js";

const USER = "alice";
const PASSWORD = `pw-${randomBytes(8).toString("hex")}`;
const SERVICE = "k8sd-test-registry";
const ISSUER = "k8sd-test-token-issuer";

let dir: string;
let host: string;
let caPem: string;
let registryProc: ChildProcess | undefined;
let tokenServer: Server | undefined;
const tokenRequests: { scope: string; user: string | undefined }[] = [];
let digest = "";

const b64url = (b: Buffer | string) => Buffer.from(b).toString("base64url");

test.before(async () => {
  dir = await tempDir("k8sd-token-registry-");
  // The token signing key and its self-signed certificate (the registry's rootcertbundle).
  const gen = await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "1",
    "-subj",
    "/CN=k8sd-test-token-signer",
    "-keyout",
    path.join(dir, "token.key"),
    "-out",
    path.join(dir, "token.crt"),
  ]);
  if (gen.code !== 0) throw new Error(gen.stderr);
  const signingKey = createPrivateKey(await readFile(path.join(dir, "token.key")));
  const x5c = new X509Certificate(await readFile(path.join(dir, "token.crt"))).raw.toString("base64");

  // Registry and token service share a self-signed certificate for 127.0.0.1.
  const cert = await selfSignedCert(dir, { name: "registry" });
  caPem = await readFile(cert.cert, "utf8");

  // Stand-in token service: alice gets what she asks for; anonymous callers get pull on public/*;
  // wrong credentials get 401.
  tokenServer = createServer({ cert: await readFile(cert.cert), key: await readFile(cert.key) }, (req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const scope = url.searchParams.get("scope") ?? "";
    const authz = req.headers.authorization;
    let user: string | undefined;
    if (authz?.startsWith("Basic ")) {
      const [u, p] = Buffer.from(authz.slice(6), "base64").toString().split(":");
      if (u !== USER || p !== PASSWORD) {
        res
          .writeHead(401, { "content-type": "application/json" })
          .end(JSON.stringify({ details: "incorrect username or password" }));
        return;
      }
      user = u;
    }
    tokenRequests.push({ scope, user });
    const [type, name, actions] = scope.split(":");
    const granted = user ? (actions ?? "").split(",") : name?.startsWith("public/") ? ["pull"] : [];
    const now = Math.floor(Date.now() / 1000);
    const header = b64url(JSON.stringify({ alg: "RS256", typ: "JWT", x5c: [x5c] }));
    const claims = b64url(
      JSON.stringify({
        iss: ISSUER,
        sub: user ?? "",
        aud: url.searchParams.get("service"),
        exp: now + 300,
        nbf: now - 10,
        iat: now,
        jti: randomBytes(8).toString("hex"),
        access: type && name ? [{ type, name, actions: granted }] : [],
      }),
    );
    const signature = createSign("RSA-SHA256").update(`${header}.${claims}`).sign(signingKey);
    res
      .writeHead(200, { "content-type": "application/json" })
      .end(JSON.stringify({ token: `${header}.${claims}.${b64url(signature)}` }));
  });
  await new Promise<void>((r) => tokenServer!.listen(0, "127.0.0.1", r));
  const tokenPort = (tokenServer.address() as AddressInfo).port;

  // The registry, with token auth.
  const port = await freePort();
  host = `127.0.0.1:${port}`;
  await mkdir(path.join(dir, "data"));
  await writeFile(
    path.join(dir, "config.yml"),
    `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${path.join(dir, "data")}
http:
  addr: ${host}
  secret: ${randomBytes(16).toString("hex")}
  tls:
    certificate: ${cert.cert}
    key: ${cert.key}
auth:
  token:
    realm: https://localhost:${tokenPort}/token
    service: ${SERVICE}
    issuer: ${ISSUER}
    rootcertbundle: ${path.join(dir, "token.crt")}
`,
  );
  registryProc = spawn(findBuiltTool("registry", "v3.1.2"), ["serve", path.join(dir, "config.yml")], {
    env: { ...process.env, OTEL_TRACES_EXPORTER: "none" },
    stdio: "ignore",
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    const probe = await run("curl", ["-sk", "-o", "/dev/null", "-w", "%{http_code}", `https://${host}/v2/`]);
    if (probe.stdout === "401") break;
    if (Date.now() > deadline)
      throw new Error(`the token-auth registry did not start: ${probe.stdout} ${probe.stderr}`);
    await new Promise((r) => setTimeout(r, 200));
  }

  // Push a single-platform image (a manifest, not an index: the platform comes from its config
  // blob, so the blob GET is authorized too) to private/app and public/app with crane.
  const docker = path.join(dir, "docker");
  await mkdir(docker);
  await writeFile(
    path.join(docker, "config.json"),
    JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString("base64") } } }),
  );
  await writeFile(path.join(dir, "hello.txt"), "hello\n");
  const layer = path.join(dir, "layer.tar");
  await run("tar", ["-cf", layer, "-C", dir, "hello.txt"]);
  const env = { ...process.env, DOCKER_CONFIG: docker, SSL_CERT_FILE: cert.cert };
  const crane = findBuiltTool("crane", "v0.22.1");
  for (const repo of ["private/app", "public/app"]) {
    for (const args of [
      ["append", "--oci-empty-base", "-f", layer, "-t", `${host}/${repo}:1`],
      ["mutate", "--set-platform", "linux/arm64", "-t", `${host}/${repo}:1`, `${host}/${repo}:1`],
    ]) {
      const r = await run(crane, args, { env });
      if (r.code !== 0) throw new Error(`crane ${args.join(" ")}: ${r.stderr}`);
    }
  }
  digest = (await run(crane, ["digest", `${host}/private/app:1`], { env })).stdout.trim();
});

test.after.always(async () => {
  registryProc?.kill("SIGKILL");
  await new Promise<void>((r) => (tokenServer ? tokenServer.close(() => r()) : r()));
});

const credential = (password: string): RegistryCredential => ({
  secret: "shop/regcred",
  source: "imagePullSecrets",
  username: USER,
  password,
});

test.serial(
  "Bearer: credentials go to the token service, the token to the registry; manifest and config blob",
  async (t) => {
    const client = new RegistryClient({ caPem });
    try {
      const resolved = await client.resolve(registryImage(`${host}/private/app:1`), {
        credential: credential(PASSWORD),
      });
      t.is(resolved.digest, digest);
      t.deepEqual(resolved.platforms, [{ os: "linux", architecture: "arm64", variant: undefined }]);
      t.true(tokenRequests.some((r) => r.user === USER && r.scope === "repository:private/app:pull"));
    } finally {
      await client.close();
    }
  },
);

test.serial("Bearer: anonymous works for a public repository", async (t) => {
  const client = new RegistryClient({ caPem });
  try {
    const resolved = await client.resolve(registryImage(`${host}/public/app:1`));
    t.regex(resolved.digest, /^sha256:/);
    t.true(tokenRequests.some((r) => r.user === undefined && r.scope === "repository:public/app:pull"));
  } finally {
    await client.close();
  }
});

test.serial(
  "Bearer: wrong credentials are refused by the token service, naming the secret, not the password",
  async (t) => {
    const client = new RegistryClient({ caPem });
    try {
      const wrong = `wrong-${PASSWORD}`;
      const err = await t.throwsAsync(
        client.resolve(registryImage(`${host}/private/app:1`), { credential: credential(wrong) }),
      );
      t.true(err instanceof RegistryError && err.kind === "unauthorized", String(err));
      t.regex(
        err?.message ?? "",
        /the token service of registry 127\.0\.0\.1:\d+ \(https:\/\/localhost:\d+\/token\) refused the credentials of secret shop\/regcred: HTTP 401 incorrect username or password/,
      );
      t.false((err?.message ?? "").includes(wrong));
    } finally {
      await client.close();
    }
  },
);

test.serial("Bearer: an anonymous token without pull access is refused by the registry", async (t) => {
  const client = new RegistryClient({ caPem });
  try {
    const err = await t.throwsAsync(client.resolve(registryImage(`${host}/private/app:1`)));
    t.true(err instanceof RegistryError && err.kind === "unauthorized", String(err));
    t.regex(err?.message ?? "", /refused private\/app anonymously: HTTP 401 UNAUTHORIZED/);
  } finally {
    await client.close();
  }
});
