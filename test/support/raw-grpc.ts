// A minimal gRPC unary call over node:http2, for what generated clients cannot send: arbitrary
// bytes as the request message, and a chosen source address (127.0.0.2, … are all loopback).
import * as http2 from "node:http2";
import * as net from "node:net";

export interface RawGrpcResult {
  /** grpc-status (undefined when the server sent none). */
  code: number | undefined;
  message: string;
  /** Response message bytes (unframed), if any. */
  body: Buffer;
}

export interface RawGrpcOptions {
  authorization?: string;
  /** Local address to connect from (default: the system's choice). */
  localAddress?: string;
  timeoutMs?: number;
}

/** Frames `message` (the 5-byte gRPC prefix) unless `raw` is given, which is sent as is. */
export function grpcFrame(message: Uint8Array): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

export function rawGrpcCall(
  address: string,
  path: string,
  payload: Buffer,
  options: RawGrpcOptions = {},
): Promise<RawGrpcResult> {
  const [host, port] = [
    address.slice(0, address.lastIndexOf(":")),
    Number(address.slice(address.lastIndexOf(":") + 1)),
  ];
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${address}`, {
      createConnection: () =>
        net.connect({ host, port, ...(options.localAddress ? { localAddress: options.localAddress } : {}) }),
    });
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error(`${path}: no answer within ${options.timeoutMs ?? 10_000} ms`));
    }, options.timeoutMs ?? 10_000);
    session.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    const headers: http2.OutgoingHttpHeaders = {
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
    };
    if (options.authorization) headers.authorization = options.authorization;
    const stream = session.request(headers);
    const chunks: Buffer[] = [];
    let code: number | undefined;
    let message = "";
    const take = (h: http2.IncomingHttpHeaders) => {
      if (h["grpc-status"] !== undefined) code = Number(h["grpc-status"]);
      if (h["grpc-message"] !== undefined) message = decodeURIComponent(String(h["grpc-message"]));
    };
    stream.on("response", take);
    stream.on("trailers", take);
    stream.on("data", (d: Buffer) => chunks.push(d));
    stream.on("error", () => {});
    stream.on("close", () => {
      clearTimeout(timer);
      session.close();
      const all = Buffer.concat(chunks);
      resolve({ code, message, body: all.length >= 5 ? all.subarray(5) : Buffer.alloc(0) });
    });
    stream.end(payload);
  });
}
