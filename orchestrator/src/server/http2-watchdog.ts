// Closes HTTP/2 sessions that stopped working. On a connection error (DATA on an idle stream, a bad
// HPACK block, an oversize frame, …) nghttp2 sends GOAWAY and stops reading, but Node (20) neither
// closes the socket nor tells JavaScript, so the socket lingered until grpc-js's keepalive gave
// up (30 s + 20 s or more). Node exposes no "connection error" event or state, so the watchdog
// probes instead: a session without open streams is pinged every PROBE_INTERVAL_MS, and one
// that does not acknowledge within ACK_TIMEOUT_MS (a session in that state never can) and sent
// nothing else meanwhile is destroyed (a busy event loop must not mistake a slow read for a dead peer:
// under overload that closed live connections, failing every call on them with INTERNAL). Sessions with open streams are left to keepalive and the agent heartbeat check;
// an attacker's broken connection has none.
import type * as http2 from "node:http2";
import type { Logger } from "pino";

export const PROBE_INTERVAL_MS = 2000;
export const ACK_TIMEOUT_MS = 3000;

export function watchSession(
  session: http2.ServerHttp2Session,
  log: Logger,
  timing: { probeIntervalMs: number; ackTimeoutMs: number } = {
    probeIntervalMs: PROBE_INTERVAL_MS,
    ackTimeoutMs: ACK_TIMEOUT_MS,
  },
): void {
  let openStreams = 0;
  let probing = false;
  session.on("stream", (stream: http2.ServerHttp2Stream) => {
    openStreams += 1;
    stream.once("close", () => {
      openStreams -= 1;
    });
  });
  const probe = () => {
    if (probing || openStreams > 0 || session.destroyed || session.closed) return;
    probing = true;
    const bytesRead = session.socket?.bytesRead ?? 0;
    const deadline = setTimeout(() => {
      // A late timer (a busy event loop) may fire before the ack that already arrived is read: let
      // pending I/O run first, and spare a peer that sent anything since the ping.
      setImmediate(() => {
        if (!probing || session.destroyed) return;
        if ((session.socket?.bytesRead ?? 0) > bytesRead) {
          probing = false;
          return;
        }
        log.info(
          { peer: session.socket?.remoteAddress },
          "HTTP/2 connection does not answer pings (protocol error or dead peer): closing it",
        );
        session.destroy();
      });
    }, timing.ackTimeoutMs);
    deadline.unref();
    const onAck = (err: Error | null) => {
      probing = false;
      clearTimeout(deadline);
      if (err && !session.destroyed) session.destroy();
    };
    try {
      if (!session.ping(onAck)) onAck(null);
    } catch {
      // ERR_HTTP2_PING_LENGTH / ERR_HTTP2_INVALID_SESSION: the session is going away anyway.
      clearTimeout(deadline);
      probing = false;
    }
  };
  const timer = setInterval(probe, timing.probeIntervalMs);
  timer.unref();
  session.once("close", () => clearInterval(timer));
}

/** Watches every session of the given http2 servers (grpc-js's, see ping-policy.ts). */
export function watchSessions(servers: http2.Http2Server[], log: Logger): void {
  for (const server of servers) server.on("session", (session: http2.ServerHttp2Session) => watchSession(session, log));
}
