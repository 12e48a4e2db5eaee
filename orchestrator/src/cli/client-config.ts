// Configuration of the admin CLI commands (the client side), read and validated in one place.
//
//   K8SDEPLOY_SERVER       http://host:port (plaintext) or https://host:port (TLS, system roots);
//                          default http://127.0.0.1:50051
//   K8SDEPLOY_CA_FILE      PEM CA bundle that signs the server certificate (https only)
//   K8SDEPLOY_ADMIN_TOKEN  admin token; when unset, `<K8SDEPLOY_DATA_DIR or .k8sdeploy>/admin-token`
//                          (the file `k8sdeploy serve` generates) is read if present
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { ADMIN_TOKEN_FILE } from "../config.js";

export class ClientConfigError extends Error {
  override readonly name = "ClientConfigError";
}

export const DEFAULT_SERVER = "http://127.0.0.1:50051";

export interface ClientConfig {
  /** The server URL as given (normalised). */
  server: string;
  /** grpc-js target `host:port`. */
  target: string;
  tls: boolean;
  /** Contents of K8SDEPLOY_CA_FILE, if set. */
  ca: Buffer | undefined;
  /** Never print this. */
  adminToken: string;
  /** Where the token came from: "K8SDEPLOY_ADMIN_TOKEN" or the file path. */
  adminTokenSource: string;
}

const blank = (v: string | undefined): v is undefined => v === undefined || v.trim() === "";

/** Command-line flags that win over the environment. */
export interface ClientOverrides {
  /** `--server`. */
  server?: string | undefined;
  /** `--token`. */
  token?: string | undefined;
}

export function loadClientConfig(env: NodeJS.ProcessEnv = process.env, overrides: ClientOverrides = {}): ClientConfig {
  const fromFlag = !blank(overrides.server);
  const raw = fromFlag
    ? (overrides.server ?? "").trim()
    : blank(env.K8SDEPLOY_SERVER)
      ? DEFAULT_SERVER
      : env.K8SDEPLOY_SERVER.trim();
  const source = fromFlag ? "--server" : "K8SDEPLOY_SERVER";
  const bad = (why: string) =>
    new ClientConfigError(`${source}: ${JSON.stringify(raw)} ${why} (expected http://host:port or https://host:port)`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw bad("is not a URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw bad(`has scheme ${url.protocol}`);
  if (!url.hostname) throw bad("has no host");
  if (url.username || url.password) throw bad("must not contain credentials");
  if ((url.pathname && url.pathname !== "/") || url.search || url.hash) throw bad("must not have a path or query");
  const tls = url.protocol === "https:";
  const port = url.port || (tls ? "443" : "80");
  const target = `${url.hostname}:${port}`;

  let ca: Buffer | undefined;
  if (!blank(env.K8SDEPLOY_CA_FILE)) {
    const file = path.resolve(env.K8SDEPLOY_CA_FILE.trim());
    if (!tls) throw new ClientConfigError(`K8SDEPLOY_CA_FILE is set but ${source} is not an https:// URL`);
    try {
      ca = readFileSync(file);
    } catch (e) {
      throw new ClientConfigError(
        `K8SDEPLOY_CA_FILE: ${JSON.stringify(file)} cannot be read (${(e as NodeJS.ErrnoException).code ?? e})`,
      );
    }
    if (!ca.toString("utf8").includes("-----BEGIN CERTIFICATE-----")) {
      throw new ClientConfigError(`K8SDEPLOY_CA_FILE: ${JSON.stringify(file)} holds no PEM certificate`);
    }
  }

  const { token, source: tokenSource } = blank(overrides.token)
    ? adminToken(env)
    : { token: (overrides.token ?? "").trim(), source: "--token" };
  if (!/^[\x21-\x7e]+$/.test(token)) {
    // Never echo the token.
    throw new ClientConfigError(`admin token from ${tokenSource} must be printable ASCII without spaces`);
  }
  return {
    server: `${url.protocol}//${target}`,
    target,
    tls,
    ca,
    adminToken: token,
    adminTokenSource: tokenSource,
  };
}

function adminToken(env: NodeJS.ProcessEnv): { token: string; source: string } {
  if (!blank(env.K8SDEPLOY_ADMIN_TOKEN))
    return { token: env.K8SDEPLOY_ADMIN_TOKEN.trim(), source: "K8SDEPLOY_ADMIN_TOKEN" };
  const dir = path.resolve(blank(env.K8SDEPLOY_DATA_DIR) ? ".k8sdeploy" : env.K8SDEPLOY_DATA_DIR.trim());
  const file = path.join(dir, ADMIN_TOKEN_FILE);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      throw new ClientConfigError(
        `no admin token: set K8SDEPLOY_ADMIN_TOKEN, or K8SDEPLOY_DATA_DIR to the server's data directory (${JSON.stringify(file)} does not exist)`,
      );
    }
    throw new ClientConfigError(`no admin token: ${JSON.stringify(file)} cannot be read (${code ?? e})`);
  }
  const token = text.trim();
  if (!token) throw new ClientConfigError(`no admin token: ${JSON.stringify(file)} is empty`);
  return { token, source: file };
}
