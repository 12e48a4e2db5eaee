// The test bed's OCI registry: auth and TLS are enforced, and a multi-platform image pushed with
// the support helper comes back by digest, per platform.
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import test from "ava";
import {
  CRANE_VERSION,
  craneOk,
  findBuiltTool,
  manifestOf,
  platformsOf,
  pushTestImage,
  testRegistry,
} from "./support/registry.js";
import { run, tempDir } from "./support/tools.js";

const curlStatus = async (args: string[]) => {
  const r = await run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", ...args]);
  return r.stdout.trim();
};

test("the registry wants the password and serves TLS signed by the test bed's CA", async (t) => {
  const reg = testRegistry();
  const url = `https://${reg.host}/v2/`;
  t.is(await curlStatus(["--cacert", reg.caFile, url]), "401", "anonymous access is refused");
  t.is(await curlStatus(["--cacert", reg.caFile, "-u", `${reg.user}:wrong-password`, url]), "401");
  t.is(await curlStatus(["--cacert", reg.caFile, "-u", `${reg.user}:${reg.password}`, url]), "200");
  // Without the CA the certificate is not trusted (curl's 000: no HTTP exchange at all).
  const untrusted = await run("curl", [
    "-sS",
    "-o",
    "/dev/null",
    "--capath",
    "/nonexistent",
    "--cacert",
    "/dev/null",
    url,
  ]);
  t.not(untrusted.code, 0);
});

test("a multi-platform image pushes as an index and pulls back by digest, per platform", async (t) => {
  const reg = testRegistry();
  const repo = `test/hello-${randomBytes(3).toString("hex")}`;
  const pushed = await pushTestImage(repo, "1", { files: { "etc/greeting": "hello\n" } });
  t.regex(pushed.digest, /^sha256:[0-9a-f]{64}$/);
  t.is(pushed.byDigest, `${reg.host}/${repo}@${pushed.digest}`);
  t.deepEqual(await platformsOf(pushed.byDigest), ["linux/amd64", "linux/arm64"]);
  const index = await manifestOf(pushed.byDigest);
  t.is(index.mediaType, "application/vnd.oci.image.index.v1+json");
  t.deepEqual(index.manifests.map((m) => m.digest).sort(), Object.values(pushed.manifests).sort());

  const dir = await tempDir("k8sd-pull-");
  for (const platform of ["linux/amd64", "linux/arm64"]) {
    const rootfs = join(dir, platform.replace("/", "-"));
    const tarball = `${rootfs}.tar`;
    await craneOk(["export", "--platform", platform, pushed.byDigest, tarball]);
    const untar = await run("bash", ["-c", 'mkdir -p "$1" && tar -xf "$2" -C "$1"', "_", rootfs, tarball]);
    t.is(untar.code, 0, untar.stderr);
    t.is(await readFile(join(rootfs, "platform.txt"), "utf8"), `${platform}\n`);
    t.is(await readFile(join(rootfs, "etc", "greeting"), "utf8"), "hello\n");
    const config = JSON.parse(await craneOk(["config", `${reg.host}/${repo}@${pushed.manifests[platform]}`]));
    t.is(`${config.os}/${config.architecture}`, platform);
  }

  // Without credentials (an empty Docker config) the same read is refused.
  const noAuth = await run(findBuiltTool("crane", CRANE_VERSION), ["manifest", pushed.byDigest], {
    env: { ...process.env, SSL_CERT_FILE: reg.caFile, DOCKER_CONFIG: dir },
  });
  t.not(noAuth.code, 0);
  t.regex(noAuth.stderr, /UNAUTHORIZED|401/i);
});
