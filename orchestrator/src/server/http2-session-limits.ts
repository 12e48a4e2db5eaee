// Two of Node's HTTP/2 guards against hostile peers close the whole connection — GOAWAY
// INTERNAL_ERROR, every call still open on it fails on the client with INTERNAL ("Session closed
// with error code 2") — on what an honest client does under overload. The calls on that connection
// that this server carried out then lose their answers: a caller told "failed" whose deploy runs.
// Both are raised here to limits an honest client does not reach, while the work a hostile one can
// cause stays bounded by max_concurrent_streams, the admission limit and the auth rate limit.
//
// 1. Stream resets (nghttp2's "Rapid Reset" protection; Node's streamResetBurst/streamResetRate:
//    1000 resets, then 33/s). Every call whose deadline passes is reset by its client. Measured
//    here: a flood at three times what a replica handles, with 1 s deadlines, resets ~4 000 streams
//    a second. The limit here (10 000/s, bursts of 100 000) still cuts a client that resets far faster.
//
// 2. Refused streams (Node's maxSessionRejectedStreams, default 100, against CVE-2019-9514). Node
//    refuses a new stream with RST_STREAM ENHANCE_YOUR_CALM (the client's RESOURCE_EXHAUSTED
//    "Bandwidth exhausted or memory limit exceeded") while the session holds max_concurrent_streams
//    streams — counting streams that already ended on the client's side but whose server half is not
//    yet released, which under a busy event loop is most of them. A client that keeps to the limit it
//    was told thus sees refusals, and one with calls queued sends the next at once; after 100 refusals
//    in a row Node's callback fails and the session is torn down (measured in the overload bench, server side:
//    ERR_HTTP2_ERROR "The user callback function failed" from onSessionInternalError, with hundreds of
//    calls on it). A refusal happens before any stream exists here — before the handler, so it is
//    load shed before any side effect — and costs one HEADERS decode and one RST_STREAM. The run of
//    refusals an honest client causes is bounded by the calls it has queued, not by a small count, so
//    the limit is raised to MAX_REJECTED_STREAMS; a peer that does not read the refusals is still cut
//    by nghttp2's outbound-queue flood limit.
//
// grpc-js passes no such options to http2.createServer, so they are set on the server's options
// (Node keeps them under Symbol(options) and reads them for every new session) right after
// bindAsync, before any client connects (grpc-server.test.ts); test/load-defects.test.ts shows the
// refused-streams one under overload.
import type * as http2 from "node:http2";

export const STREAM_RESET_BURST = 100_000;
export const STREAM_RESET_RATE = 10_000;
export const MAX_REJECTED_STREAMS = 1_000_000;

/** The options object Node reads for every new session of `server`. */
export function sessionOptionsOf(server: http2.Http2Server): Record<string, unknown> {
  const key = Object.getOwnPropertySymbols(server).find((s) => s.description === "options");
  const options = key ? (server as unknown as Record<symbol, Record<string, unknown>>)[key] : undefined;
  if (!options || typeof options !== "object") {
    throw new Error("cannot set the HTTP/2 session limits: Node no longer keeps the server options");
  }
  return options;
}

export function raiseSessionLimits(servers: http2.Http2Server[]): void {
  for (const server of servers) {
    const options = sessionOptionsOf(server);
    options.streamResetBurst = STREAM_RESET_BURST;
    options.streamResetRate = STREAM_RESET_RATE;
    options.maxSessionRejectedStreams = MAX_REJECTED_STREAMS;
  }
}
