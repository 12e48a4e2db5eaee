// The built K8sDeploy images (dist/images, written by `npm run images`) and running one the way
// the kubelet would, without a container runtime (none works on this machine: crun stops on the
// hybrid cgroup setup): pull it from the test registry BY DIGEST for one platform (skopeo), unpack
// the rootfs and the runtime config derived from the image config (umoci), then run the
// configured entrypoint as the configured user with the configured environment plus the pod's, in
// new mount/pid/uts/ipc namespaces, chrooted into the rootfs mounted READ-ONLY, with a tmpfs /tmp
// (the manifests' emptyDir), /proc, /dev and the pod's volumes (service-account token, secrets).
// The network namespace is the host's (like hostNetwork: true) so the process reaches the test
// bed on 127.0.0.1. arm64 images run under qemu-aarch64-static (bind-mounted into the rootfs and
// named explicitly, so no binfmt_misc registration is needed).
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { type Platform, registryClientEnv, testRegistry } from "./registry.js";
import { repoRoot, run, tempDir } from "./tools.js";

export const imagesDir = path.join(repoRoot, "dist", "images");

// Pulled and unpacked images are ~200 MB each: removed when the test process exits.
const scratch: string[] = [];
process.once("exit", () => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

/** A temporary directory removed when the test process exits. */
export async function scratchDir(prefix: string): Promise<string> {
  const dir = await tempDir(prefix);
  scratch.push(dir);
  return dir;
}
export const QEMU_AARCH64 = "/usr/bin/qemu-aarch64-static";

export type ImageName = "agent" | "orchestrator";

export interface BuiltPlatform {
  digest: string;
  compressedBytes: number;
  layers: { digest: string; size: number }[];
}

export interface BuiltImage {
  digest: string;
  mediaType: string;
  layout: string;
  platforms: Record<string, BuiltPlatform>;
  pushed?: { repository: string; tags: string[]; byDigest: string };
}

export interface ImagesReport {
  version: string;
  revision: string;
  created: string;
  sourceDateEpoch: number;
  images: Record<ImageName, BuiltImage>;
  timings: Record<string, number>;
}

/** dist/images/images.json (or another build's); throws with what to run when it is missing. */
export function imagesReport(dir = imagesDir): ImagesReport {
  const file = path.join(dir, "images.json");
  if (!existsSync(file)) {
    throw new Error(
      `${file} is missing: run \`npm run images -- --push "$K8SDEPLOY_TEST_REGISTRY/k8sdeploy" --authfile "$K8SDEPLOY_TEST_REGISTRY_AUTHFILE" --ca-file "$K8SDEPLOY_TEST_REGISTRY_CA"\` (npm test does)`,
    );
  }
  return JSON.parse(readFileSync(file, "utf8")) as ImagesReport;
}

/** A directory with `ca.crt`: what skopeo's --cert-dir wants. */
async function certDir(): Promise<string> {
  const dir = await tempDir("k8sd-certs-");
  await writeFile(path.join(dir, "ca.crt"), readFileSync(testRegistry().caFile));
  return dir;
}

/**
 * `<registry>/k8sdeploy/<name>@sha256:…` of the built image in the test registry. When the
 * registry does not hold it (the test bed was restarted since the build), it is copied there
 * from the OCI layout with its digests preserved.
 */
export async function testImageReference(name: ImageName): Promise<string> {
  const reg = testRegistry();
  const built = imagesReport().images[name];
  if (!built) throw new Error(`dist/images/images.json has no ${name} image: run \`npm run images\``);
  const ref = `${reg.host}/k8sdeploy/${name}@${built.digest}`;
  const certs = await certDir();
  const env = registryClientEnv(reg);
  const have = await run(
    "skopeo",
    ["inspect", "--raw", "--authfile", reg.authFile, "--cert-dir", certs, `docker://${ref}`],
    {
      env,
    },
  );
  if (have.code !== 0) {
    const copy = await run(
      "skopeo",
      [
        ...["copy", "--all", "--preserve-digests", "--quiet"],
        ...["--dest-authfile", reg.authFile, "--dest-cert-dir", certs],
        `oci:${built.layout}:${imagesReport().version}`,
        `docker://${reg.host}/k8sdeploy/${name}:${imagesReport().version}`,
      ],
      { env, timeoutMs: 300_000 },
    );
    if (copy.code !== 0) throw new Error(`pushing ${name} to the test registry failed: ${copy.stderr}`);
  }
  return ref;
}

/** The OCI runtime config umoci derives from the image config (the parts a runtime uses). */
export interface RuntimeProcess {
  user: { uid: number; gid: number; additionalGids?: number[] };
  args: string[];
  env: string[];
  cwd: string;
}

export interface UnpackedImage {
  reference: string;
  platform: Platform;
  /** Digest of the platform's image manifest that was pulled. */
  manifestDigest: string;
  rootfs: string;
  process: RuntimeProcess;
  /** The image config (labels, user, entrypoint, …) as pushed. */
  config: {
    architecture: string;
    os: string;
    config: { User?: string; Env?: string[]; Entrypoint?: string[]; Cmd?: string[]; Labels?: Record<string, string> };
  };
}

/** Pulls `reference` (by digest) for one platform from the test registry and unpacks it. */
export async function pullImage(reference: string, platform: Platform): Promise<UnpackedImage> {
  const reg = testRegistry();
  const dir = await scratchDir("k8sd-pulled-");
  const [, arch, variant] = platform.split("/");
  const layout = path.join(dir, "oci");
  const copy = await run(
    "skopeo",
    [
      ...["copy", "--quiet", "--override-os", "linux", "--override-arch", arch ?? ""],
      ...(variant ? ["--override-variant", variant] : []),
      ...["--src-authfile", reg.authFile, "--src-cert-dir", await certDir()],
      `docker://${reference}`,
      `oci:${layout}:image`,
    ],
    { env: registryClientEnv(reg), timeoutMs: 300_000 },
  );
  if (copy.code !== 0) throw new Error(`skopeo copy ${reference} (${platform}) failed: ${copy.stderr}`);
  const bundle = path.join(dir, "bundle");
  const unpack = await run("umoci", ["unpack", "--image", `${layout}:image`, bundle], { timeoutMs: 300_000 });
  if (unpack.code !== 0) throw new Error(`umoci unpack failed: ${unpack.stderr}`);
  const spec = JSON.parse(readFileSync(path.join(bundle, "config.json"), "utf8")) as { process: RuntimeProcess };
  const index = JSON.parse(readFileSync(path.join(layout, "index.json"), "utf8")) as {
    manifests: { digest: string }[];
  };
  const manifestDigest = index.manifests[0]?.digest ?? "";
  const blob = (digest: string) => readFileSync(path.join(layout, "blobs", ...digest.split(":")), "utf8");
  const manifest = JSON.parse(blob(manifestDigest)) as { config: { digest: string } };
  return {
    reference,
    platform,
    manifestDigest,
    rootfs: path.join(bundle, "rootfs"),
    process: spec.process,
    config: JSON.parse(blob(manifest.config.digest)),
  };
}

export interface Mount {
  /** Path on this machine (file or directory). */
  source: string;
  /** Absolute path inside the container. */
  target: string;
  /** Default true, as Kubernetes mounts Secrets and projected tokens. */
  readOnly?: boolean;
}

export interface RunImageOptions {
  /** The pod's env (wins over the image's, as the kubelet does). */
  env?: Record<string, string>;
  /** Arguments instead of the image's Cmd (Kubernetes `args`). */
  args?: string[];
  mounts?: Mount[];
  /** The pod's host name (default k8sdeploy-test). */
  hostname?: string;
  /** Size of the tmpfs on /tmp (default 64m). */
  tmpSize?: string;
}

export interface ImageProcess {
  /** The unshare process on this machine. */
  readonly child: ChildProcess;
  output(): string;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Host pid of the container's pid 1 (the entrypoint), once it runs. */
  pid1(): Promise<number>;
  /** Resolves with the exit code of the entrypoint (unshare passes it on). */
  exited(): Promise<number | null>;
  /** SIGTERM to the entrypoint (as the kubelet does), SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<number | null>;
}

// Runs inside the new namespaces, as root: mounts, then drops to the image's user in the rootfs.
// $1 rootfs, $2 hostname, $3 tmp size, $4 number of mounts, then per mount: source target ro|rw,
// then uid gid cwd, then the command.
const RUNNER = `
set -euo pipefail
root=$1 host=$2 tmpsize=$3 n=$4; shift 4
hostname "$host"
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o "mode=1777,size=$tmpsize,nosuid,nodev" tmpfs "$root/tmp"
ro=()
for ((i = 0; i < n; i++)); do
  mount --bind "$1" "$root$2"
  if [[ "$3" == ro ]]; then ro+=("$root$2"); fi
  shift 3
done
mount -o remount,bind,ro "$root"
for m in "\${ro[@]}"; do mount -o remount,bind,ro "$m"; done
# No new privileges, and a bounding set with only what chroot and the user switch need; after the
# switch to a non-root uid the process holds no capabilities at all (capabilities: drop: [ALL]).
exec setpriv --no-new-privs --bounding-set -all,+sys_chroot,+setuid,+setgid python3 -c "$EXEC_IN_ROOT" "$root" "$@"
`;

// chroot, chdir to the image's WorkingDir, switch to its user and exec the command with exactly
// the container's environment (coreutils chroot cannot chdir elsewhere than /).
const EXEC_IN_ROOT = `
import json, os, sys
root, uid, gid, cwd, *argv = sys.argv[1:]
os.chroot(root)
os.chdir(cwd)
os.setgroups([int(gid)])
os.setgid(int(gid))
os.setuid(int(uid))
os.execve(argv[0], argv, json.loads(os.environ["K8SD_CONTAINER_ENV"]))
`;

/** Creates the mount points a runtime would create (the rootfs is a private copy). */
async function mountPoint(rootfs: string, target: string, source: string): Promise<void> {
  const inside = path.join(rootfs, target);
  const isDir = (await readdir(source)
    .then(() => true)
    .catch(() => false)) as boolean;
  if (isDir) await mkdir(inside, { recursive: true });
  else {
    await mkdir(path.dirname(inside), { recursive: true });
    if (!existsSync(inside)) await writeFile(inside, "");
  }
}

/** Runs the unpacked image's entrypoint as the kubelet would (see the top of this file). */
export async function runImage(image: UnpackedImage, options: RunImageOptions = {}): Promise<ImageProcess> {
  const { rootfs, process: proc } = image;
  for (const dir of ["proc", "dev", "tmp"]) await mkdir(path.join(rootfs, dir), { recursive: true });
  const mounts: Mount[] = [...(options.mounts ?? [])];
  let command = [...proc.args];
  if (options.args) {
    // Kubernetes `args` replace the image's Cmd and keep its Entrypoint.
    command = [...(image.config.config.Entrypoint ?? []), ...options.args];
  }
  if (image.platform === "linux/arm64" && process.arch !== "arm64") {
    if (!existsSync(QEMU_AARCH64)) throw new Error(`${QEMU_AARCH64} is missing: apt-get install -y qemu-user-static`);
    mounts.push({ source: QEMU_AARCH64, target: "/.qemu-aarch64-static" });
    command = ["/.qemu-aarch64-static", ...command];
  }
  for (const m of mounts) await mountPoint(rootfs, m.target, m.source);

  // The image's environment (umoci adds TERM for a terminal, which the kubelet does not), then the pod's.
  const env: Record<string, string> = {};
  for (const entry of proc.env) {
    const eq = entry.indexOf("=");
    const name = entry.slice(0, eq);
    if (name !== "TERM") env[name] = entry.slice(eq + 1);
  }
  env.HOSTNAME = options.hostname ?? "k8sdeploy-test";
  Object.assign(env, options.env ?? {});

  const argv = [
    ...["--mount", "--pid", "--uts", "--ipc", "--fork", "--", "bash", "-c", RUNNER, "runner"],
    ...[rootfs, env.HOSTNAME, options.tmpSize ?? "64m", String(mounts.length)],
    ...mounts.flatMap((m) => [m.source, m.target, m.readOnly === false ? "rw" : "ro"]),
    ...[String(proc.user.uid), String(proc.user.gid), proc.cwd || "/"],
    ...command,
  ];
  // The container sees only its own environment (K8SD_CONTAINER_ENV, used by the final execve).
  const child = spawn("unshare", argv, {
    env: {
      PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
      K8SD_CONTAINER_ENV: JSON.stringify(env),
      EXEC_IN_ROOT,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let text = "";
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    text += chunk.toString("utf8");
    for (const l of listeners) l();
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  let done = false;
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  void exit.then(() => {
    done = true;
    for (const l of listeners) l();
  });
  const pid1 = async (): Promise<number> => {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const children = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, "utf8").trim();
      if (children) return Number(children.split(/\s+/)[0]);
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error("the container's pid 1 did not start");
  };
  return {
    child,
    output: () => text,
    waitFor(pattern, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const line = text.split("\n").find((l) => pattern.test(l));
          if (line !== undefined) {
            finish();
            resolve(line);
          } else if (done) {
            finish();
            reject(new Error(`the container exited before printing ${pattern}; output:\n${text.slice(-4000)}`));
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`timed out waiting for ${pattern}; output:\n${text.slice(-4000)}`));
        }, timeoutMs);
        const finish = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    pid1,
    exited: () => exit,
    async stop(graceMs = 25_000) {
      if (done) return exit;
      const pid = await pid1().catch(() => undefined);
      if (pid !== undefined) process.kill(pid, "SIGTERM");
      const timer = setTimeout(() => {
        if (pid !== undefined) {
          try {
            process.kill(pid, "SIGKILL");
          } catch {}
        }
        child.kill("SIGKILL");
      }, graceMs);
      const code = await exit;
      clearTimeout(timer);
      return code;
    },
  };
}
