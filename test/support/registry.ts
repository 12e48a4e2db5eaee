// The test bed's OCI registry (CNCF Distribution on 127.0.0.1, htpasswd auth, TLS from the test
// bed's CA; see scripts/testbed/testbed.sh) and crane (go-containerregistry) to push to it and
// read from it. `testbed.sh env` exports everything used here.
import { accessSync, constants } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import * as path from "node:path";
import { type RunOptions, type RunResult, run, tempDir } from "./tools.js";

export const CRANE_VERSION = "v0.22.1";

export interface TestRegistry {
  /** `127.0.0.1:PORT`, the registry part of image references. */
  host: string;
  user: string;
  password: string;
  /** PEM of the CA that signed the registry's certificate. */
  caFile: string;
  /** Docker-style `config.json` with the registry's credentials (crane, skopeo --authfile, buildah). */
  authFile: string;
}

/** The registry from `testbed.sh env`; throws with what to run when it is not there. */
export function testRegistry(): TestRegistry {
  const env = process.env;
  const host = env.K8SDEPLOY_TEST_REGISTRY;
  const user = env.K8SDEPLOY_TEST_REGISTRY_USER;
  const password = env.K8SDEPLOY_TEST_REGISTRY_PASSWORD;
  const caFile = env.K8SDEPLOY_TEST_REGISTRY_CA;
  const authFile = env.K8SDEPLOY_TEST_REGISTRY_AUTHFILE;
  if (!host || !user || !password || !caFile || !authFile) {
    throw new Error(
      'K8SDEPLOY_TEST_REGISTRY* is not set: run `npm run testbed -- up` and `eval "$(npm run --silent testbed -- env)"`',
    );
  }
  return { host, user, password, caFile, authFile };
}

/**
 * Environment for Go registry clients (crane, skopeo, buildah): credentials from the auth file
 * (DOCKER_CONFIG is its directory) and the test bed's CA as the only trusted root (SSL_CERT_FILE).
 */
export function registryClientEnv(registry = testRegistry(), base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...base, DOCKER_CONFIG: path.dirname(registry.authFile), SSL_CERT_FILE: registry.caFile };
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** A Go tool from PATH, else from the test bed's cache (`<cache>/<name>-<version>/bin/<name>`). */
export function findBuiltTool(name: string, version: string): string {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (dir && executable(path.join(dir, name))) return path.join(dir, name);
  }
  const cache = process.env.K8SDEPLOY_TESTBED_CACHE ?? path.join(homedir(), ".cache", "k8sdeploy-testbed");
  const built = path.join(cache, `${name}-${version}`, "bin", name);
  if (executable(built)) return built;
  throw new Error(
    `${name} not found on PATH or at ${built}: run \`npm run testbed -- up\` (or K8SDEPLOY_TESTBED_ONLY=tools bash scripts/testbed/build-tools.sh)`,
  );
}

/** Runs crane against the test registry (credentials and CA set). Never rejects on a non-zero exit. */
export function crane(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return run(findBuiltTool("crane", CRANE_VERSION), args, {
    timeoutMs: 120_000,
    ...options,
    env: registryClientEnv(testRegistry(), options.env ?? process.env),
  });
}

/** Like crane(), but rejects with crane's stderr on failure and resolves with stdout. */
export async function craneOk(args: readonly string[], options: RunOptions = {}): Promise<string> {
  const result = await crane(args, options);
  if (result.code !== 0) throw new Error(`crane ${args.join(" ")} failed (${result.code}):\n${result.stderr}`);
  return result.stdout;
}

export type Platform = "linux/amd64" | "linux/arm64" | "linux/arm/v7";

export interface PushedImage {
  /** `host/repository:tag`. */
  tagged: string;
  /** `host/repository@sha256:…` of the index. */
  byDigest: string;
  /** Digest of the index. */
  digest: string;
  /** Digest of each platform's image manifest. */
  manifests: Record<string, string>;
}

/**
 * Pushes a tiny multi-platform image (an OCI index with one image per platform) to the test
 * registry. Each image has one layer holding `/platform.txt` (its platform) plus `files`, and its
 * config names the platform; tests pull by digest and check that they got the right one.
 */
export async function pushTestImage(
  repository: string,
  tag: string,
  options: { platforms?: Platform[]; files?: Record<string, string> } = {},
): Promise<PushedImage> {
  const registry = testRegistry();
  const platforms = options.platforms ?? ["linux/amd64", "linux/arm64"];
  const dir = await tempDir("k8sd-image-");
  try {
    const manifests: Record<string, string> = {};
    for (const platform of platforms) {
      const slug = platform.replaceAll("/", "-");
      const root = path.join(dir, slug);
      await mkdir(root, { recursive: true });
      await writeFile(path.join(root, "platform.txt"), `${platform}\n`);
      for (const [file, content] of Object.entries(options.files ?? {})) {
        await mkdir(path.dirname(path.join(root, file)), { recursive: true });
        await writeFile(path.join(root, file), content);
      }
      const layer = path.join(dir, `${slug}.tar`);
      const tar = await run("tar", [
        "--sort=name",
        "--mtime=@0",
        "--owner=0",
        "--group=0",
        "-cf",
        layer,
        "-C",
        root,
        ".",
      ]);
      if (tar.code !== 0) throw new Error(`tar failed: ${tar.stderr}`);
      const ref = `${registry.host}/${repository}:${tag}-${slug}`;
      await craneOk(["append", "--oci-empty-base", "-f", layer, "-t", ref]);
      // mutate prints the new reference (…@sha256:…) on stdout.
      const mutated = (await craneOk(["mutate", "--set-platform", platform, ref])).trim();
      manifests[platform] = mutated.slice(mutated.lastIndexOf("@") + 1);
    }
    const tagged = `${registry.host}/${repository}:${tag}`;
    const args = ["index", "append", "-t", tagged];
    for (const digest of Object.values(manifests)) args.push("-m", `${registry.host}/${repository}@${digest}`);
    await craneOk(args);
    const digest = (await craneOk(["digest", tagged])).trim();
    return { tagged, byDigest: `${registry.host}/${repository}@${digest}`, digest, manifests };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface IndexManifest {
  mediaType?: string;
  manifests: { digest: string; mediaType: string; platform?: { os: string; architecture: string; variant?: string } }[];
}

/** The raw manifest (index or image) of a reference, parsed. */
export async function manifestOf(reference: string): Promise<IndexManifest & Record<string, unknown>> {
  return JSON.parse(await craneOk(["manifest", reference]));
}

/** `os/arch[/variant]` of every image in an index. */
export async function platformsOf(reference: string): Promise<string[]> {
  const index = await manifestOf(reference);
  return index.manifests
    .map((m) => m.platform)
    .filter((p) => p !== undefined)
    .map((p) => [p.os, p.architecture, p.variant].filter(Boolean).join("/"))
    .sort();
}
