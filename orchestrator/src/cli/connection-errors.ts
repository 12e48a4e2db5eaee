// Turns grpc-js's connection failures ("No connection established. Last error: Protocol error …
// Resolution note:") into one line that says what is wrong and what to do. grpc-js reports a
// plaintext client talking to a TLS port, and a gRPC client talking to an HTTP/1.1 port, both as a
// bare "Protocol error"; for those the CLI looks at the port itself (one short TCP exchange) to
// tell which it is.

import * as net from "node:net";
import * as grpc from "@grpc/grpc-js";
import { isServiceError } from "./admin-client.js";
import type { ClientConfig } from "./client-config.js";

export type PortKind = "http1" | "tls" | "unknown";

/** Sends an HTTP/1.1 request and looks at the first bytes of the answer. */
export async function probePort(target: string, timeoutMs = 2_000): Promise<PortKind> {
  const match = /^\[?(.*?)\]?:(\d+)$/.exec(target);
  if (!match) return "unknown";
  const [, host = "", port = "0"] = match;
  return await new Promise<PortKind>((resolve) => {
    const socket = net.connect({ host, port: Number(port) });
    let settled = false;
    const done = (kind: PortKind) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(kind);
    };
    socket.setTimeout(timeoutMs, () => done("unknown"));
    socket.on("error", () => done("unknown"));
    socket.on("connect", () => {
      socket.write(`GET /healthz HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    });
    socket.once("data", (chunk: Buffer) => {
      if (chunk.subarray(0, 7).toString("latin1") === "HTTP/1.") done("http1");
      // A TLS record (alert 0x15 or handshake 0x16) with a TLS version.
      else if ((chunk[0] === 0x15 || chunk[0] === 0x16) && chunk[1] === 0x03) done("tls");
      else done("unknown");
    });
    // A TLS server that cannot parse a plaintext request often just closes the connection.
    socket.on("end", () => done("tls"));
  });
}

const HTTP_PORT_HINT =
  "it answers HTTP/1.1, not gRPC: that is probably the orchestrator's HTTP port (dashboard, Connect, probes); use its gRPC port (K8SDEPLOY_GRPC_LISTEN, default 50051)";

/** One line for a failed call, or undefined when it is not a connection problem. */
export async function explainConnectionError(err: unknown, config: ClientConfig): Promise<string | undefined> {
  if (!isServiceError(err)) return undefined;
  const at = `the orchestrator at ${config.server}`;
  const details = err.details || err.message;
  if (err.code === grpc.status.DEADLINE_EXCEEDED && /Waiting for LB pick|connection|resolution/i.test(details)) {
    return `cannot reach ${at}: no answer in time (a firewall may drop the packets; check host and port)`;
  }
  if (err.code !== grpc.status.UNAVAILABLE) return undefined;
  if (/ECONNREFUSED/.test(details)) {
    return `cannot reach ${at}: connection refused (is \`k8sdeploy serve\` running, and is ${config.target} its gRPC port?)`;
  }
  if (/Name resolution failed|ENOTFOUND|EAI_AGAIN/.test(details)) {
    return `cannot reach ${at}: the host name does not resolve (check --server / K8SDEPLOY_SERVER)`;
  }
  if (/EHOSTUNREACH|ENETUNREACH|ETIMEDOUT/.test(details)) {
    return `cannot reach ${at}: no route to the host (check the address and the network)`;
  }
  if (/wrong version number|packet length too long|unknown protocol|http request/i.test(details)) {
    // TLS client, non-TLS server.
    if ((await probePort(config.target)) === "http1") return `cannot use ${at}: ${HTTP_PORT_HINT}`;
    return `cannot use ${at}: the server does not speak TLS; use http://${config.target} (or give the orchestrator K8SDEPLOY_TLS_CERT_FILE/KEY_FILE)`;
  }
  if (/self[- ]signed|unable to (get|verify)|certificate has expired|CERT_|unknown ca/i.test(details)) {
    const why = /certificate has expired/i.test(details) ? "has expired" : "is not signed by a CA this client trusts";
    return `cannot use ${at}: its TLS certificate ${why}; set K8SDEPLOY_CA_FILE to the PEM CA that signed it`;
  }
  if (/does not match certificate|altnames|ERR_TLS_CERT_ALTNAME/i.test(details)) {
    return `cannot use ${at}: its TLS certificate is not issued for ${config.target.replace(/:\d+$/, "")} (use the host name the certificate names)`;
  }
  if (
    /Protocol error|Failed to connect|Received HTTP status code|Connection dropped|ECONNRESET|RST_STREAM/i.test(
      details,
    ) &&
    !config.tls
  ) {
    const kind = await probePort(config.target);
    if (kind === "http1") return `cannot use ${at}: ${HTTP_PORT_HINT}`;
    if (kind === "tls") return `cannot use ${at}: the server expects TLS; use https://${config.target}`;
  }
  if (/No connection established|Connection dropped|ECONNRESET/.test(details)) {
    return `cannot reach ${at}: the connection failed (${details
      .replace(/^No connection established\. Last error: /, "")
      .replace(/\. Resolution note:.*$/s, "")
      .trim()})`;
  }
  return undefined;
}
