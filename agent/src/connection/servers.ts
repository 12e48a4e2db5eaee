// Orchestrator endpoints: URL parsing → grpc-js target and credentials, and round-robin failover.
import * as grpc from "@grpc/grpc-js";
import { AgentServiceClient } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";

export interface ServerEndpoint {
  /** The URL as configured, normalised (`https://host:port`). */
  readonly url: string;
  /** grpc-js target, `host:port` (IPv6 hosts keep their brackets). */
  readonly target: string;
  /** `https:` → TLS, `http:` → plaintext HTTP/2 (h2c). */
  readonly tls: boolean;
  readonly host: string;
  readonly port: number;
}

/** Parses one `http(s)://host[:port]` URL; throws an Error whose message says what is wrong. */
export function parseServerUrl(raw: string): ServerEndpoint {
  const text = raw.trim();
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`"${text}" is not a URL (expected http://host:port or https://host:port)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`"${text}" must use http:// (plaintext) or https:// (TLS), not ${url.protocol}//`);
  }
  if (url.username !== "" || url.password !== "") {
    throw new Error(
      `"${url.protocol}//${url.host}" must not contain credentials (the token goes in K8SDEPLOY_AGENT_TOKEN)`,
    );
  }
  if (url.hostname === "") throw new Error(`"${text}" has no host`);
  if ((url.pathname !== "" && url.pathname !== "/") || url.search !== "" || url.hash !== "") {
    throw new Error(`"${text}" must not have a path, query or fragment (gRPC needs host and port only)`);
  }
  const tls = url.protocol === "https:";
  const port = url.port === "" ? (tls ? 443 : 80) : Number(url.port);
  return {
    url: `${url.protocol}//${url.hostname}:${port}`,
    target: `${url.hostname}:${port}`,
    tls,
    host: url.hostname,
    port,
  };
}

/** Parses a comma-separated list of URLs (empty items are ignored). */
export function parseServerList(raw: string): ServerEndpoint[] {
  return raw
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map(parseServerUrl);
}

/** True for localhost / loopback hosts, where plaintext does not leave the machine (or pod). */
export function isLoopback(endpoint: ServerEndpoint): boolean {
  const h = endpoint.host.toLowerCase();
  return h === "localhost" || h === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(h);
}

export function channelCredentials(endpoint: ServerEndpoint, ca?: Buffer): grpc.ChannelCredentials {
  return endpoint.tls ? grpc.credentials.createSsl(ca ?? null) : grpc.credentials.createInsecure();
}

/**
 * Channel options. Keepalive pings every 30 s (below the usual 60 s load-balancer idle timeout),
 * also while no call is active. A local subchannel pool gives every client its own connection and
 * reconnect state, so the agent's own backoff (not grpc-js's hidden one, up to 120 s) decides when
 * to dial again.
 */
export function channelOptions(userAgent: string): grpc.ChannelOptions {
  return {
    "grpc.keepalive_time_ms": 30_000,
    "grpc.keepalive_timeout_ms": 10_000,
    "grpc.keepalive_permit_without_calls": 1,
    "grpc.use_local_subchannel_pool": 1,
    "grpc.primary_user_agent": userAgent,
    // Nothing reads channelz in the agent; without this grpc-js keeps its bookkeeping anyway.
    "grpc.enable_channelz": 0,
  };
}

export function createAgentClient(endpoint: ServerEndpoint, ca: Buffer | undefined, userAgent: string) {
  return new AgentServiceClient(endpoint.target, channelCredentials(endpoint, ca), channelOptions(userAgent));
}

/**
 * Round-robin over the configured servers. `advance()` moves to the next one and reports whether
 * a full round of failed attempts has been completed (then the caller backs off).
 */
export class ServerRotation {
  private index = 0;
  private failuresInRound = 0;

  constructor(readonly endpoints: readonly ServerEndpoint[]) {
    if (endpoints.length === 0) throw new Error("at least one server is required");
  }

  current(): ServerEndpoint {
    return this.endpoints[this.index]!;
  }

  /** Records a failed or lost connection to the current server and moves to the next one. */
  fail(): { next: ServerEndpoint; roundComplete: boolean } {
    this.failuresInRound++;
    this.index = (this.index + 1) % this.endpoints.length;
    const roundComplete = this.failuresInRound >= this.endpoints.length;
    if (roundComplete) this.failuresInRound = 0;
    return { next: this.current(), roundComplete };
  }

  /** Moves to the next server without counting a failure (after a drain). */
  skip(): ServerEndpoint {
    this.failuresInRound = 0;
    this.index = (this.index + 1) % this.endpoints.length;
    return this.current();
  }

  /** A connection was accepted: the next failure starts a new round. */
  connected(): void {
    this.failuresInRound = 0;
  }
}
