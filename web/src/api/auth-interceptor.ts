// Adds the session's admin token to every call, and signs out when the orchestrator rejects it
// (Connect `unauthenticated`, HTTP 401), wherever that happens: unary calls and streams alike.
import { Code, ConnectError, type Interceptor, type StreamResponse } from "@connectrpc/connect";
import { signOut, token } from "../state/session.js";

const EXPIRED = "The orchestrator no longer accepts your admin token. Sign in again.";

function rejectedSessionToken(err: unknown, sentToken: string): void {
  if (sentToken !== "" && err instanceof ConnectError && err.code === Code.Unauthenticated && token() === sentToken) {
    signOut(EXPIRED);
  }
}

async function* watchStream<T>(messages: AsyncIterable<T>, sentToken: string): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (err) {
    rejectedSessionToken(err, sentToken);
    throw err;
  }
}

export const authInterceptor: Interceptor = (next) => async (req) => {
  // A caller that sets its own Authorization (the sign-in check) keeps it.
  let sent = "";
  if (!req.header.has("authorization")) {
    sent = token();
    if (sent !== "") req.header.set("authorization", `Bearer ${sent}`);
  }
  try {
    const res = await next(req);
    if (!res.stream) return res;
    return { ...res, message: watchStream(res.message, sent) } as StreamResponse;
  } catch (err) {
    rejectedSessionToken(err, sent);
    throw err;
  }
};
