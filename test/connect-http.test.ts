// The admin API over plain HTTP + JSON (the Connect protocol, as the dashboard speaks it) on the
// orchestrator's HTTP port: no token or a wrong one is a Connect `unauthenticated` error (HTTP
// 401 with a JSON body), the admin token works, and server streams carry JSON envelopes.
import test from "ava";
import { type Orchestrator, startOrchestrator } from "./support/orchestrator.js";

const ADMIN_TOKEN = `admin-${"c0ffee".repeat(8)}`;
let orch: Orchestrator;

test.before(async () => {
  orch = await startOrchestrator({ env: { K8SDEPLOY_ADMIN_TOKEN: ADMIN_TOKEN } });
});

test.after.always(async () => {
  await orch?.stop();
});

const url = (method: string) => `${orch.httpUrl}/k8sdeploy.v1.AdminService/${method}`;

function post(method: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(url(method), {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

test("ListAgents without a token: 401 and a Connect error JSON with code unauthenticated", async (t) => {
  const res = await post("ListAgents", {});
  t.is(res.status, 401);
  t.regex(res.headers.get("content-type") ?? "", /^application\/json/);
  const body = (await res.json()) as { code?: string; message?: string };
  t.is(body.code, "unauthenticated");
  t.is(typeof body.message, "string");
  t.false(JSON.stringify(body).includes(ADMIN_TOKEN));
});

test("ListAgents with a wrong token: 401 unauthenticated, the token not echoed", async (t) => {
  const res = await post("ListAgents", {}, { authorization: "Bearer not-the-admin-token-0123456789" });
  t.is(res.status, 401);
  const text = await res.text();
  t.is((JSON.parse(text) as { code?: string }).code, "unauthenticated");
  t.false(text.includes("not-the-admin-token"));
});

test("ListAgents with the admin token: 200 and a JSON ListAgentsResponse", async (t) => {
  const created = await post("CreateAgent", { name: "http-json" }, { authorization: `Bearer ${ADMIN_TOKEN}` });
  t.is(created.status, 200);
  const { agent, token } = (await created.json()) as { agent: { id: string; name: string }; token: string };
  t.regex(agent.id, /^agt_/);
  t.regex(token, /^kda_/);

  const res = await post("ListAgents", {}, { authorization: `Bearer ${ADMIN_TOKEN}` });
  t.is(res.status, 200);
  t.regex(res.headers.get("content-type") ?? "", /^application\/json/);
  const body = (await res.json()) as { agents?: { id: string; name: string; connectionState?: string }[] };
  const listed = body.agents?.find((a) => a.id === agent.id);
  t.is(listed?.name, "http-json");
  t.is(listed?.connectionState, "CONNECTION_STATE_NEVER_CONNECTED");
});

test("a server stream (WatchDeployments) without a token ends with an unauthenticated error", async (t) => {
  const envelope = (flags: number, json: string) => {
    const payload = Buffer.from(json);
    const head = Buffer.alloc(5);
    head.writeUInt8(flags, 0);
    head.writeUInt32BE(payload.length, 1);
    return Buffer.concat([head, payload]);
  };
  const res = await fetch(url("WatchDeployments"), {
    method: "POST",
    headers: { "content-type": "application/connect+json", "connect-protocol-version": "1" },
    body: envelope(0, "{}"),
  });
  const raw = Buffer.from(await res.arrayBuffer());
  // Connect streams report errors in the end-of-stream envelope (flag 0x02), or as an HTTP error.
  if (res.status === 200) {
    t.true(raw.length >= 5);
    t.is(raw.readUInt8(0) & 0x02, 0x02);
    const end = JSON.parse(raw.subarray(5).toString()) as { error?: { code?: string } };
    t.is(end.error?.code, "unauthenticated");
  } else {
    t.is(res.status, 401);
    t.regex(raw.toString(), /unauthenticated/);
  }
});
