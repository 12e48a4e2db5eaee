// A small client for the OCI distribution spec: resolves an image reference to its manifest digest
// and the platforms it offers, with anonymous, Basic and Bearer-token (WWW-Authenticate challenge)
// authentication, a custom CA, plain HTTP only for loopback or configured insecure registries, and
// HTTPS_PROXY/NO_PROXY (http.ts).
//
// Hand-written because the Node registry clients on npm did not fit: @snyk/docker-registry-v2-client
// runs on needle (no NO_PROXY handling of its own, no connect timeout, pulls a public-suffix
// list), docker-registry-client (Joyent) and its Renovate fork bring restify and bunyan. What the
// agent needs is two GETs (manifest, and the config blob for a single-platform image) and the
// token dance, which is little code over node:https.
import { createHash } from "node:crypto";
import type { RegistryCredential } from "./credentials.js";
import { createHttp, type Http, type HttpResponse } from "./http.js";
import { hostOf, isLoopbackRegistry, type RegistryImage } from "./reference.js";

export const MEDIA_TYPES = {
  ociIndex: "application/vnd.oci.image.index.v1+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
} as const;

const MANIFEST_ACCEPT = [
  MEDIA_TYPES.ociIndex,
  MEDIA_TYPES.dockerManifestList,
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.dockerManifest,
].join(", ");

/** The distribution spec allows registries to refuse manifests above 4 MiB. */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_CONFIG_BYTES = 1024 * 1024;
const MAX_ERROR_BYTES = 16 * 1024;

export interface Platform {
  os: string;
  architecture: string;
  variant?: string | undefined;
}

export interface ResolvedImage {
  /** `sha256:…` of the manifest the tag points at (the index, for a multi-platform image). */
  digest: string;
  mediaType: string;
  /** Platforms offered (attestation entries `unknown/unknown` left out); empty when unknown. */
  platforms: Platform[];
}

export type RegistryErrorKind = "not-found" | "unauthorized" | "unreachable" | "invalid";

export class RegistryError extends Error {
  override readonly name = "RegistryError";
  constructor(
    readonly kind: RegistryErrorKind,
    message: string,
    /** HTTP status, when the registry answered. */
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface RegistryClientOptions {
  /** Extra CA certificates (PEM) trusted besides the system roots. */
  caPem?: string | undefined;
  /** `host[:port]` of registries that may be spoken to over plain HTTP (HTTPS is tried first). */
  insecureRegistries?: readonly string[];
  /** TCP + TLS connect timeout, ms (default 3000). */
  connectTimeoutMs?: number;
  /** Where the proxy variables are read (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface ResolveOptions {
  credential?: RegistryCredential | undefined;
  signal?: AbortSignal | undefined;
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

interface Session {
  image: RegistryImage;
  scheme: "https" | "http";
  plainHttpAllowed: boolean;
  authorization: string | undefined;
  credential: RegistryCredential | undefined;
  signal: AbortSignal | undefined;
}

interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export class RegistryClient {
  private readonly http: Http;
  private readonly insecure: Set<string>;

  constructor(options: RegistryClientOptions = {}) {
    this.http = createHttp({
      caPem: options.caPem,
      connectTimeoutMs: options.connectTimeoutMs ?? 3000,
      ...(options.env ? { env: options.env } : {}),
    });
    this.insecure = new Set((options.insecureRegistries ?? []).map((r) => r.toLowerCase()));
  }

  close(): Promise<void> {
    return this.http.close();
  }

  /** True when plain HTTP may be used for this registry (loopback, or listed as insecure). */
  plainHttpAllowed(registry: string): boolean {
    return isLoopbackRegistry(registry) || this.insecure.has(registry.toLowerCase());
  }

  /**
   * Resolves the image's manifest: digest, media type and platforms. Throws RegistryError:
   * not-found (404), unauthorized (401/403 after authenticating, or credentials needed and none
   * given), unreachable (network, TLS, timeouts, 5xx, 429), invalid (an answer that is not a manifest).
   */
  async resolve(image: RegistryImage, options: ResolveOptions = {}): Promise<ResolvedImage> {
    const session: Session = {
      image,
      scheme: "https",
      plainHttpAllowed: this.plainHttpAllowed(image.registry),
      authorization: undefined,
      credential: options.credential,
      signal: options.signal,
    };
    const path = `/v2/${image.repository}/manifests/${image.reference}`;
    const res = await this.authorizedGet(session, path, MANIFEST_ACCEPT);
    if (res.status === 404) {
      throw new RegistryError(
        "not-found",
        `${image.display} not found: registry ${image.registry} has no ${image.digest ? "manifest" : "tag"} ${JSON.stringify(image.digest ?? image.tag)} in repository ${JSON.stringify(image.repository)} (${registryAnswer(res)})`,
        404,
      );
    }
    if (res.status < 200 || res.status > 299) throw this.unexpected(session, res, "the manifest");
    const digest = manifestDigest(res);
    if (image.digest && digest !== image.digest) {
      throw new RegistryError(
        "invalid",
        `registry ${image.registry} returned a manifest whose digest ${digest} is not ${image.digest}`,
      );
    }
    let manifest: Record<string, unknown>;
    try {
      manifest = JSON.parse(res.body.toString("utf8"));
    } catch {
      throw new RegistryError(
        "invalid",
        `registry ${image.registry} returned a manifest for ${image.display} that is not JSON`,
      );
    }
    const mediaType = String(header(res, "content-type") ?? manifest.mediaType ?? "")
      .split(";")[0]!
      .trim();
    if (Array.isArray(manifest.manifests)) {
      const platforms = (manifest.manifests as { platform?: Partial<Platform> }[])
        .map((m) => m.platform)
        .filter((p): p is Platform => typeof p?.os === "string" && typeof p.architecture === "string")
        .filter((p) => p.os !== "unknown" && p.architecture !== "unknown")
        .map((p) => ({ os: p.os, architecture: p.architecture, variant: p.variant }));
      return { digest, mediaType: mediaType || MEDIA_TYPES.ociIndex, platforms };
    }
    const config = manifest.config as { digest?: unknown } | undefined;
    if (typeof config?.digest !== "string") return { digest, mediaType, platforms: [] };
    const blob = await this.authorizedGet(
      session,
      `/v2/${image.repository}/blobs/${config.digest}`,
      "*/*",
      MAX_CONFIG_BYTES,
    );
    if (blob.status < 200 || blob.status > 299) throw this.unexpected(session, blob, "the image configuration");
    try {
      const c = JSON.parse(blob.body.toString("utf8")) as Partial<Platform>;
      if (typeof c.os === "string" && typeof c.architecture === "string") {
        return { digest, mediaType, platforms: [{ os: c.os, architecture: c.architecture, variant: c.variant }] };
      }
    } catch {
      // An unreadable configuration leaves the platform unknown; the digest is still good.
    }
    return { digest, mediaType, platforms: [] };
  }

  private unexpected(session: Session, res: Response, what: string): RegistryError {
    const where = `registry ${session.image.registry}`;
    if (res.status === 401 || res.status === 403) {
      return new RegistryError(
        "unauthorized",
        `${where} refused access to ${what}: ${registryAnswer(res)}`,
        res.status,
      );
    }
    if (res.status >= 500 || res.status === 429) {
      return new RegistryError("unreachable", `${where} answered ${registryAnswer(res)} for ${what}`, res.status);
    }
    return new RegistryError("invalid", `${where} answered ${registryAnswer(res)} for ${what}`, res.status);
  }

  /** GET with the session's authorization; on a 401 challenge, authenticates once and retries. */
  private async authorizedGet(
    session: Session,
    path: string,
    accept: string,
    limit = MAX_MANIFEST_BYTES,
  ): Promise<Response> {
    const first = await this.get(session, path, accept, limit);
    if (first.status !== 401) return first;
    const challenge = parseChallenge(header(first, "www-authenticate"));
    const who = session.credential ? `with the credentials of secret ${session.credential.secret}` : "anonymously";
    if (challenge === undefined || (challenge.scheme !== "basic" && challenge.scheme !== "bearer")) {
      throw new RegistryError(
        "unauthorized",
        `registry ${session.image.registry} refused the request ${who}: ${registryAnswer(first)}`,
        401,
      );
    }
    if (challenge.scheme === "basic") {
      if (!session.credential) {
        throw new RegistryError(
          "unauthorized",
          `registry ${session.image.registry} requires a login (Basic): ${registryAnswer(first)}`,
          401,
        );
      }
      session.authorization = `Basic ${basic(session.credential)}`;
    } else {
      session.authorization = `Bearer ${await this.token(session, challenge)}`;
    }
    const second = await this.get(session, path, accept, limit);
    if (second.status === 401 || second.status === 403) {
      throw new RegistryError(
        "unauthorized",
        `registry ${session.image.registry} refused ${session.image.repository} ${who}: ${registryAnswer(second)}`,
        second.status,
      );
    }
    return second;
  }

  /** The registry token flow: GET realm?service=…&scope=repository:<repo>:pull, Basic auth if we have credentials. */
  private async token(session: Session, challenge: Challenge): Promise<string> {
    const { image, credential } = session;
    const realm = challenge.params.realm;
    let url: URL;
    try {
      url = new URL(realm ?? "");
    } catch {
      throw new RegistryError("invalid", `registry ${image.registry} sent a Bearer challenge without a valid realm`);
    }
    if (url.protocol !== "https:" && !(url.protocol === "http:" && session.plainHttpAllowed)) {
      throw new RegistryError(
        "invalid",
        `registry ${image.registry} names a token service over plain HTTP (${url.origin}); refusing to send credentials there`,
      );
    }
    // As go-containerregistry does: a public registry must not send us (with its credentials) to
    // an address inside the cluster's networks.
    if (isPrivateAddress(url.hostname) && !isPrivateAddress(hostOf(image.registry))) {
      throw new RegistryError(
        "invalid",
        `registry ${image.registry} names a token service on a private address (${url.host}); refusing to send credentials there`,
      );
    }
    if (challenge.params.service) url.searchParams.set("service", challenge.params.service);
    url.searchParams.set("scope", challenge.params.scope ?? `repository:${image.repository}:pull`);
    const headers: Record<string, string> = { accept: "application/json" };
    if (credential) headers.authorization = `Basic ${basic(credential)}`;
    const res = await this.send(url, headers, MAX_ERROR_BYTES, session.signal);
    const who = credential ? `the credentials of secret ${credential.secret}` : "no credentials (anonymous)";
    if (res.status === 401 || res.status === 403) {
      throw new RegistryError(
        "unauthorized",
        `the token service of registry ${image.registry} (${url.origin}${url.pathname}) refused ${who}: ${registryAnswer(res)}`,
        res.status,
      );
    }
    if (res.status < 200 || res.status > 299) {
      const kind = res.status >= 500 || res.status === 429 ? "unreachable" : "invalid";
      throw new RegistryError(
        kind,
        `the token service of registry ${image.registry} answered ${registryAnswer(res)}`,
        res.status,
      );
    }
    try {
      const body = JSON.parse(res.body.toString("utf8")) as { token?: unknown; access_token?: unknown };
      const token = typeof body.token === "string" ? body.token : body.access_token;
      if (typeof token === "string" && token !== "") return token;
    } catch {
      // fall through
    }
    throw new RegistryError("invalid", `the token service of registry ${image.registry} returned no token`);
  }

  private async get(session: Session, path: string, accept: string, limit: number): Promise<Response> {
    const headers: Record<string, string> = { accept };
    if (session.authorization) headers.authorization = session.authorization;
    const url = new URL(`${session.scheme}://${session.image.apiHost}${path}`);
    let res: Response;
    try {
      res = await this.send(url, headers, limit, session.signal);
    } catch (err) {
      // Like Docker and containerd for insecure registries: HTTPS first, plain HTTP if that fails.
      if (
        session.scheme === "https" &&
        session.plainHttpAllowed &&
        err instanceof RegistryError &&
        err.kind === "unreachable"
      ) {
        session.scheme = "http";
        // An HTTPS server answers plain HTTP with 400 (Go's "Client sent an HTTP request to an
        // HTTPS server"): then the HTTPS error (usually TLS trust) is the one worth reporting.
        const plain = await this.get(session, path, accept, limit).catch(() => undefined);
        if (plain !== undefined && plain.status !== 400) return plain;
        session.scheme = "https";
      }
      throw err;
    }
    // Blobs are often served from elsewhere (object storage): follow one redirect, without our
    // Authorization header when it leaves the registry's origin.
    const location = header(res, "location");
    if (res.status >= 300 && res.status < 400 && typeof location === "string") {
      const next = new URL(location, url);
      const nextHeaders = { ...headers };
      if (next.origin !== url.origin) delete nextHeaders.authorization;
      res = await this.send(next, nextHeaders, limit, session.signal);
    }
    return res;
  }

  /** One HTTP GET; network failures become RegistryError "unreachable". */
  private async send(
    url: URL,
    headers: Record<string, string>,
    limit: number,
    signal: AbortSignal | undefined,
  ): Promise<Response> {
    let res: HttpResponse;
    try {
      res = await this.http.get(url, headers, signal);
    } catch (err) {
      throw new RegistryError("unreachable", `cannot reach ${url.protocol}//${url.host}: ${networkError(err)}`);
    }
    const cap = res.statusCode >= 200 && res.statusCode < 300 ? limit : MAX_ERROR_BYTES;
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > cap) {
          res.body.destroy();
          if (cap === MAX_ERROR_BYTES) break;
          throw new RegistryError("invalid", `${url.host} sent more than ${cap} bytes for ${url.pathname}`);
        }
        chunks.push(chunk as Buffer);
      }
    } catch (err) {
      if (err instanceof RegistryError) throw err;
      throw new RegistryError(
        "unreachable",
        `reading the answer of ${url.protocol}//${url.host} failed: ${networkError(err)}`,
      );
    }
    return { status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) };
  }
}

function header(res: Pick<Response, "headers">, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function basic(c: RegistryCredential): string {
  return Buffer.from(`${c.username}:${c.password}`).toString("base64");
}

function manifestDigest(res: Response): string {
  const fromHeader = header(res, "docker-content-digest");
  const computed = `sha256:${createHash("sha256").update(res.body).digest("hex")}`;
  // Trust our own hash when the header uses the same algorithm and disagrees (or is missing).
  if (typeof fromHeader === "string" && !fromHeader.startsWith("sha256:")) return fromHeader;
  return computed;
}

/** `Bearer realm="https://auth.example/token",service="registry",scope="repository:a:pull"` → parts. */
export function parseChallenge(value: string | undefined): Challenge | undefined {
  if (!value) return undefined;
  const m = /^\s*([A-Za-z]+)\s*(.*)$/.exec(value);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/g;
  for (let p = re.exec(m[2] ?? ""); p !== null; p = re.exec(m[2] ?? "")) {
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, "$1") : (p[3] ?? "");
  }
  return { scheme: m[1]!.toLowerCase(), params };
}

/** What the registry said: `401 UNAUTHORIZED: authentication required` (from the spec's error body). */
export function registryAnswer(res: Pick<Response, "status" | "body">): string {
  let detail = "";
  try {
    const parsed = JSON.parse(res.body.toString("utf8")) as {
      errors?: { code?: unknown; message?: unknown }[];
      details?: unknown;
    };
    const first = parsed.errors?.[0];
    if (first) detail = [first.code, first.message].filter((x) => typeof x === "string" && x !== "").join(": ");
    else if (typeof parsed.details === "string") detail = parsed.details;
  } catch {
    detail = res.body.toString("utf8").replace(/\s+/g, " ").trim();
  }
  if (detail.length > 200) detail = `${detail.slice(0, 197)}...`;
  return `HTTP ${res.status}${detail ? ` ${detail}` : ""}`;
}

/** A short, credential-free description of a network error. */
function networkError(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown; cause?: unknown; name?: unknown };
  const cause = e?.cause as { code?: unknown; message?: unknown } | undefined;
  const code = typeof cause?.code === "string" ? cause.code : typeof e?.code === "string" ? e.code : undefined;
  const message =
    typeof cause?.message === "string" ? cause.message : typeof e?.message === "string" ? e.message : String(err);
  if (e?.name === "AbortError" || e?.name === "TimeoutError" || code === "ABORT_ERR") return "timed out";
  const hint = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(String(code))
    ? " (TLS: is the registry's CA in K8SDEPLOY_REGISTRY_CA_FILE?)"
    : "";
  return `${code && !message.includes(code) ? `${code} ` : ""}${message}${hint}`;
}

/** IP literals of loopback, private (RFC 1918, fc00::/7) and link-local ranges; host names are not resolved. */
export function isPrivateAddress(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  const v4 = /^(\d{1,3})\.(\d{1,3})\.\d{1,3}\.\d{1,3}$/.exec(h);
  if (v4) {
    const [a, b] = [Number(v4[1]), Number(v4[2])];
    return (
      a === 10 || a === 127 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254)
    );
  }
  return h === "::1" || /^f[cd][0-9a-f]{2}:/.test(h) || /^fe[89ab][0-9a-f]:/.test(h);
}
