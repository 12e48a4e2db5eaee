// The server-enforced minimum interval between client keepalive pings, which grpc-js (1.14)
// does not implement. Like gRPC C-core and Go servers, a client that pings more often than the
// minimum collects strikes; past MAX_STRIKES the connection gets GOAWAY(ENHANCE_YOUR_CALM,
// "too_many_pings") and is closed. Pings that arrive while calls exchange data count too: the
// agent's pings are periodic, so this only catches clients configured below the minimum.
import * as http2 from "node:http2";
import type * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";

export const MAX_STRIKES = 2;

/** grpc-js keeps its http2 servers in a private map; the exact pinned version is checked by tests. */
export function http2ServersOf(server: grpc.Server): http2.Http2Server[] {
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map)) {
    throw new Error("cannot enforce the keepalive minimum: grpc-js no longer exposes its http2 servers");
  }
  return [...servers.keys()] as http2.Http2Server[];
}

export function watchPings(session: http2.ServerHttp2Session, minIntervalMs: number, log: Logger): void {
  let last = 0;
  let strikes = 0;
  session.on("ping", () => {
    const now = Date.now();
    if (last !== 0 && now - last < minIntervalMs) {
      strikes += 1;
      if (strikes > MAX_STRIKES) {
        log.warn(
          { peer: session.socket?.remoteAddress, minIntervalMs },
          "client pings more often than K8SDEPLOY_KEEPALIVE_MIN_SECONDS allows; closing its connection",
        );
        session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, 0, Buffer.from("too_many_pings"));
        session.destroy();
        return;
      }
    } else {
      strikes = 0;
    }
    last = now;
  });
}

/** Call right after bindAsync, before clients connect. */
export function enforcePingPolicy(server: grpc.Server, minIntervalMs: number, log: Logger): void {
  for (const http2Server of http2ServersOf(server)) {
    http2Server.on("session", (session: http2.ServerHttp2Session) => watchPings(session, minIntervalMs, log));
  }
}
