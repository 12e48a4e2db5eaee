// Test helper: a real HTTP server on 127.0.0.1 that receives webhook requests, records each one
// (headers, body, time) and answers what the test tells it (a status, a hang, or the default 204).
import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface ReceivedRequest {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

/** What to answer to the n-th request (0-based); "hang" never answers; `delayMs` answers late. */
export type Responder = (request: ReceivedRequest, n: number) => number | "hang" | { status: number; delayMs: number };

export interface WebhookReceiver {
  url: string;
  received: ReceivedRequest[];
  respond(responder: Responder): void;
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedRequest[]>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(responder: Responder = () => 204): Promise<WebhookReceiver> {
  const received: ReceivedRequest[] = [];
  let answer = responder;
  const hanging: ServerResponse[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const request = {
        path: req.url ?? "/",
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
        at: Date.now(),
      };
      received.push(request);
      const reply = answer(request, received.length - 1);
      if (reply === "hang") {
        hanging.push(res);
        return;
      }
      const { status, delayMs } = typeof reply === "number" ? { status: reply, delayMs: 0 } : reply;
      setTimeout(() => {
        res.writeHead(status, { "content-type": "text/plain" }).end(status >= 400 ? `error ${status}` : "");
      }, delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    respond: (next) => {
      answer = next;
    },
    async waitFor(count, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (received.length < count) {
        if (Date.now() > deadline) throw new Error(`received ${received.length} of ${count} webhook requests in time`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return received;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of hanging) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
