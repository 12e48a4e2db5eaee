// One implementation per RPC, written against these transport-neutral shapes; the gRPC
// (grpc-js) and Connect adapters translate calls into them.

export interface CallContext {
  /** Raw `authorization` header/metadata value, if any. */
  authorization: string | undefined;
  /** Aborted when the client goes away or the server shuts down. */
  signal: AbortSignal;
  /** When the caller stops waiting (ms since the epoch), if it said. */
  deadline?: number | undefined;
  /** The client's address (`ip` or `ip:port`), for audit logs; undefined when unknown. */
  peer?: string | undefined;
}

export type UnaryHandler<Req, Res> = (request: Req, ctx: CallContext) => Promise<Res>;
export type ServerStreamHandler<Req, Res> = (request: Req, ctx: CallContext) => AsyncIterable<Res>;
