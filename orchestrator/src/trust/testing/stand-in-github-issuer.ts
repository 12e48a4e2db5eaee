// A STAND-IN for GitHub's OIDC token service, because GitHub cannot be reached from here. It is a
// real HTTP server on loopback that plays both of GitHub's parts:
//   - the issuer (token.actions.githubusercontent.com): `/.well-known/openid-configuration` and
//     `/.well-known/jwks` with its RS256 public keys;
//   - the runner's token endpoint (ACTIONS_ID_TOKEN_REQUEST_URL): `GET /token?audience=…` with
//     `Authorization: Bearer <ACTIONS_ID_TOKEN_REQUEST_TOKEN>` answers `{"value": "<jwt>"}`, as
//     @actions/core's getIDToken expects, with GitHub's claim names and a fresh `jti` each time.
// Tests set the claims the next tokens carry, mint broken tokens (expired, foreign, `alg: none`,
// HS256 signed with the public key) and rotate keys.
import { createHmac, randomBytes, randomUUID } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from "jose";

export interface GithubClaims {
  repository: string;
  repository_id: string;
  repository_owner: string;
  ref: string;
  sha: string;
  environment?: string;
  workflow_ref: string;
  job_workflow_ref: string;
  actor: string;
  run_id: string;
  run_attempt: string;
  event_name: string;
}

interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

async function newKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
  const kid = randomBytes(8).toString("hex");
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" } };
}

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

export function defaultClaims(repository = "acme/web"): GithubClaims {
  const [owner = "acme"] = repository.split("/");
  return {
    repository,
    repository_id: "424242",
    repository_owner: owner,
    ref: "refs/heads/main",
    sha: "0123456789abcdef0123456789abcdef01234567",
    workflow_ref: `${repository}/.github/workflows/deploy.yml@refs/heads/main`,
    job_workflow_ref: `${repository}/.github/workflows/deploy.yml@refs/heads/main`,
    actor: "octocat",
    run_id: "1001",
    run_attempt: "1",
    event_name: "push",
  };
}

export class StandInGithubIssuer {
  /** Claims of the tokens the token endpoint issues next. */
  claims: GithubClaims = defaultClaims();
  /** Token lifetime in seconds (GitHub's are minutes). */
  lifetimeSeconds = 300;
  /** Every request the server answered, by path (e.g. how often the JWKS was fetched). */
  readonly requests: string[] = [];
  /** Bearer the token endpoint requires (ACTIONS_ID_TOKEN_REQUEST_TOKEN). */
  readonly requestToken = `stand-in-runner-${randomBytes(16).toString("hex")}`;
  /** Every token the token endpoint issued, so tests can check none was logged. */
  readonly issued: string[] = [];

  private constructor(
    private readonly server: http.Server,
    readonly url: string,
    private keys: SigningKey[],
  ) {}

  static async start(): Promise<StandInGithubIssuer> {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const issuer = new StandInGithubIssuer(server, `http://127.0.0.1:${port}`, [await newKey()]);
    server.on("request", (req, res) => void issuer.handle(req, res));
    return issuer;
  }

  /** ACTIONS_ID_TOKEN_REQUEST_URL / _TOKEN for the action's environment. */
  runnerEnv(): Record<string, string> {
    return {
      ACTIONS_ID_TOKEN_REQUEST_URL: `${this.url}/token?api-version=2.0`,
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: this.requestToken,
    };
  }

  /** JWKS fetches so far. */
  jwksFetches(): number {
    return this.requests.filter((r) => r === "/.well-known/jwks").length;
  }

  /** A new signing key replaces the old one in the JWKS (GitHub's key rotation). */
  async rotate(): Promise<void> {
    this.keys = [await newKey()];
  }

  /** A correctly signed token with the current claims, overridden by `extra` (undefined removes). */
  async mint(
    audience: string | string[] = "k8sdeploy",
    extra: Record<string, unknown> = {},
    options: { key?: "current" | "unpublished"; header?: Record<string, unknown> } = {},
  ): Promise<string> {
    const key = options.key === "unpublished" ? await newKey() : this.keys[0];
    if (!key) throw new Error("no signing key");
    const now = Math.floor(Date.now() / 1000);
    const payload: JWTPayload = {
      jti: randomUUID(),
      sub: `repo:${this.claims.repository}:ref:${this.claims.ref}`,
      aud: audience,
      iss: this.url,
      iat: now,
      nbf: now - 5,
      exp: now + this.lifetimeSeconds,
      ...this.claims,
    };
    for (const [name, value] of Object.entries(extra)) {
      if (value === undefined) delete payload[name];
      else payload[name] = value;
    }
    return await new SignJWT(payload)
      .setProtectedHeader({ alg: "RS256", kid: key.kid, typ: "JWT", ...options.header })
      .sign(key.privateKey);
  }

  /** An unsigned token (`alg: none`) with valid-looking claims. */
  async mintUnsigned(audience = "k8sdeploy"): Promise<string> {
    const [, payload] = (await this.mint(audience)).split(".");
    return `${b64url({ alg: "none", typ: "JWT" })}.${payload}.`;
  }

  /** The classic key-confusion forgery: HS256 with the issuer's public key (as JWK JSON) as the secret. */
  async mintHs256WithPublicKey(audience = "k8sdeploy"): Promise<string> {
    const key = this.keys[0];
    if (!key) throw new Error("no signing key");
    const [, payload] = (await this.mint(audience)).split(".");
    const head = b64url({ alg: "HS256", typ: "JWT", kid: key.kid });
    const signature = createHmac("sha256", JSON.stringify(key.publicJwk))
      .update(`${head}.${payload}`)
      .digest("base64url");
    return `${head}.${payload}.${signature}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.url);
    this.requests.push(url.pathname);
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (url.pathname === "/.well-known/openid-configuration") {
      json(200, {
        issuer: this.url,
        jwks_uri: `${this.url}/.well-known/jwks`,
        subject_types_supported: ["public", "pairwise"],
        response_types_supported: ["id_token"],
        id_token_signing_alg_values_supported: ["RS256"],
        claims_supported: ["sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref", "repository", "environment"],
      });
      return;
    }
    if (url.pathname === "/.well-known/jwks") {
      json(200, { keys: this.keys.map((k) => k.publicJwk) });
      return;
    }
    if (url.pathname === "/token") {
      if (req.headers.authorization !== `Bearer ${this.requestToken}`) {
        json(401, { message: "bad ACTIONS_ID_TOKEN_REQUEST_TOKEN" });
        return;
      }
      const token = await this.mint(url.searchParams.get("audience") ?? "k8sdeploy");
      this.issued.push(token);
      json(200, { count: 1, value: token });
      return;
    }
    json(404, { message: "not found" });
  }
}
