// The HTTP/2 stream-reset rate limit of the gRPC port. nghttp2's "Rapid Reset" protection (Node's
// streamResetBurst/streamResetRate: 1000 resets, then 33/s) closes the whole connection with GOAWAY
// INTERNAL_ERROR once a client has cancelled that many streams. An honest client under overload
// does exactly that: every call whose deadline passes is reset. The connection's other calls then
// fail with INTERNAL ("Session closed with error code 2") — including calls this server carried
// out, whose answers are dropped with the connection: a caller told "failed" whose deploy runs.
// Measured here: a flood at three times what a replica handles, with 1 s deadlines, resets ~4 000
// streams a second. The limit here (10 000/s, bursts of 100 000) still cuts a client that resets far
// faster than that, while max_concurrent_streams, the admission limit and the auth rate limit bound
// the work reset streams can cause (a stream without a valid credential costs one failed lookup).
//
// grpc-js passes no such option to http2.createServer, so it is set on the server's options (Node
// keeps them under Symbol(options) and reads them for every new session) right after bindAsync,
// before any client connects; a test checks that it takes effect.
import type * as http2 from "node:http2";

export const STREAM_RESET_BURST = 100_000;
export const STREAM_RESET_RATE = 10_000;

export function raiseStreamResetLimit(servers: http2.Http2Server[]): void {
  for (const server of servers) {
    const key = Object.getOwnPropertySymbols(server).find((s) => s.description === "options");
    const options = key ? (server as unknown as Record<symbol, Record<string, unknown>>)[key] : undefined;
    if (!options || typeof options !== "object") {
      throw new Error("cannot set the HTTP/2 stream reset limit: Node no longer keeps the server options");
    }
    options.streamResetBurst = STREAM_RESET_BURST;
    options.streamResetRate = STREAM_RESET_RATE;
  }
}
