// One webhook request: POST over node:http(s) with a bounded time, no redirects, no keep-alive,
// and an address check on every connection (webhook-url.ts). node:http rather than fetch because
// its `lookup` option is where the resolved address can be checked before connecting (fetch's
// undici dispatcher options would need the undici package as a dependency).
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from "node:dns";
import * as http from "node:http";
import * as https from "node:https";
import { isIP } from "node:net";
import { refusedAddress } from "./webhook-url.js";

/** Longest part of a response body kept (for the delivery log's error text). */
const SNIPPET_BYTES = 512;

export class PostError extends Error {
  constructor(
    readonly kind: "timeout" | "network_error" | "refused",
    message: string,
  ) {
    super(message);
    this.name = "PostError";
  }
}

export interface PostResult {
  status: number;
  /** The start of the body (text), for error messages. */
  snippet: string;
  retryAfter: string | undefined;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

function guardedLookup(allowLoopback: boolean) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      const allowed = addresses.filter((a) => refusedAddress(a.address, allowLoopback) === undefined);
      if (allowed.length === 0) {
        const reason = refusedAddress(addresses[0]?.address ?? "", allowLoopback) ?? "no address";
        return callback(
          Object.assign(new PostError("refused", `${hostname} resolves to ${reason}`), { code: "EREFUSED" }),
          [],
        );
      }
      if (options.all) return callback(null, allowed);
      const first = allowed[0] as LookupAddress;
      return callback(null, first.address, first.family);
    });
  };
}

export function postWebhook(
  url: URL,
  body: string,
  headers: Record<string, string>,
  options: { timeoutMs: number; allowLoopback: boolean },
): Promise<PostResult> {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (isIP(host)) {
    const refused = refusedAddress(host, options.allowLoopback);
    if (refused) return Promise.reject(new PostError("refused", refused));
  }
  const transport = url.protocol === "https:" ? https : http;
  return new Promise<PostResult>((resolve, reject) => {
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const request = transport.request(url, {
      method: "POST",
      agent: false,
      lookup: guardedLookup(options.allowLoopback) as never,
      headers: { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(body) },
    });
    const timer = setTimeout(() => {
      finish(() => reject(new PostError("timeout", `no answer within ${options.timeoutMs / 1000} s`)));
      request.destroy();
    }, options.timeoutMs);
    request.on("response", (response) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const done = () =>
        finish(() =>
          resolve({
            status: response.statusCode ?? 0,
            snippet: Buffer.concat(chunks).toString("utf8").slice(0, SNIPPET_BYTES),
            retryAfter: response.headers["retry-after"],
          }),
        );
      response.on("data", (chunk: Buffer) => {
        if (size < SNIPPET_BYTES) chunks.push(chunk.subarray(0, SNIPPET_BYTES - size));
        size += chunk.length;
        // The status is what matters: stop reading a large body.
        if (size >= SNIPPET_BYTES) {
          done();
          response.destroy();
        }
      });
      response.on("end", done);
      response.on("error", done);
    });
    request.on("error", (err: Error) => {
      finish(() =>
        reject(
          err instanceof PostError
            ? err
            : new PostError(
                "network_error",
                err.message || ((err as NodeJS.ErrnoException).code ?? "connection failed"),
              ),
        ),
      );
    });
    request.end(body);
  });
}
