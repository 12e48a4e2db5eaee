// The probe logic on a fake clock, and the endpoint over real HTTP on loopback.
import test from "ava";
import { AgentMetrics, CONTENT_TYPE } from "../observability/metrics.js";
import { startHealthServer } from "./health-server.js";
import { AgentHealth } from "./health-state.js";

function clock() {
  let t = 1_000_000;
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

test("ready only while connected (with a grace) and the API server answered recently", (t) => {
  const c = clock();
  const h = new AgentHealth({ now: c.now, readyGraceMs: 30_000, apiServerStaleMs: 90_000 });
  t.false(h.readiness().ok, "not ready before the first connection");
  h.apiServer(true);
  t.false(h.readiness().ok);
  h.connection("connecting", "https://o:443");
  h.connection("connected", "https://o:443");
  t.true(h.readiness().ok);
  h.connection("disconnected", "https://o:443");
  c.advance(10_000);
  t.true(h.readiness().ok, "a quick reconnect does not flap readiness");
  c.advance(25_000);
  const r = h.readiness();
  t.false(r.ok);
  t.false(r.checks.orchestrator?.ok);
  t.is(r.checks.orchestrator?.state, "disconnected");
  h.connection("connected", "https://o:443");
  h.apiServer(true);
  t.true(h.readiness().ok);
  c.advance(60_000);
  h.apiServer(false, "connect ECONNREFUSED");
  t.true(h.readiness().ok, "one failed API probe within the staleness window is tolerated");
  c.advance(31_000);
  const stale = h.readiness();
  t.false(stale.ok);
  t.false(stale.checks.apiServer?.ok);
  t.is(stale.checks.apiServer?.error, "connect ECONNREFUSED");
  h.apiServer(true);
  t.true(h.readiness().ok);
  h.shuttingDown();
  t.false(h.readiness().ok, "not ready while shutting down");
  t.true(h.liveness().ok, "but still live");
});

test("live while the connection loop makes progress, even with the orchestrator down", (t) => {
  const c = clock();
  const h = new AgentHealth({ now: c.now, livenessStaleMs: 300_000 });
  t.true(h.liveness().ok);
  for (let i = 0; i < 10; i++) {
    c.advance(60_000);
    h.connection("connecting", "https://o:443");
    h.connection("disconnected", "https://o:443");
  }
  t.true(h.liveness().ok, "retrying every minute for 10 minutes is alive");
  c.advance(299_000);
  t.true(h.liveness().ok);
  c.advance(2_000);
  t.false(h.liveness().ok, "no attempt for 5 minutes: the loop is wedged");
  h.connection("connecting", "https://o:443");
  h.connection("connected", "https://o:443");
  c.advance(3_600_000);
  t.true(h.liveness().ok, "a long-lived stream is alive");
});

test("the endpoint answers 200/503 with JSON on /livez and /readyz, 404 elsewhere", async (t) => {
  const h = new AgentHealth();
  const server = await startHealthServer(h, { host: "127.0.0.1", port: 0 });
  try {
    const base = `http://${server.address}`;
    const live = await fetch(`${base}/livez`);
    t.is(live.status, 200);
    t.is((await live.json()).status, "ok");
    const notReady = await fetch(`${base}/readyz`);
    t.is(notReady.status, 503);
    const body = await notReady.json();
    t.is(body.status, "failing");
    t.false(body.checks.orchestrator.ok);
    h.connection("connected", "https://o:443");
    h.apiServer(true);
    t.is((await fetch(`${base}/readyz`)).status, 200);
    t.is((await fetch(`${base}/metrics`)).status, 404, "no metrics unless given a renderer");
    t.is((await fetch(`${base}/readyz`, { method: "POST" })).status, 405);
  } finally {
    await server.close();
  }
});

test("/metrics serves the agent's Prometheus text next to the probes", async (t) => {
  const h = new AgentHealth();
  const metrics = new AgentMetrics("1.2.3", "arm64");
  metrics.setSources({ connected: () => true, apiServerOk: () => false, running: () => 2 });
  metrics.commands.inc({ type: "deploy", state: "succeeded" });
  metrics.deployDuration.observe({ state: "succeeded" }, 4);
  const server = await startHealthServer(
    h,
    { host: "127.0.0.1", port: 0 },
    {
      contentType: CONTENT_TYPE,
      render: () => metrics.render(),
    },
  );
  try {
    const res = await fetch(`http://${server.address}/metrics`);
    t.is(res.status, 200);
    t.is(res.headers.get("content-type"), CONTENT_TYPE);
    const text = await res.text();
    t.regex(text, /^k8sdeploy_agent_info\{version="1\.2\.3",arch="arm64"\} 1$/m);
    t.regex(text, /^k8sdeploy_agent_connected 1$/m);
    t.regex(text, /^k8sdeploy_agent_api_server_up 0$/m);
    t.regex(text, /^k8sdeploy_agent_commands_running 2$/m);
    t.regex(text, /^k8sdeploy_agent_commands_total\{type="deploy",state="succeeded"\} 1$/m);
    t.regex(text, /^k8sdeploy_agent_deploy_duration_seconds_bucket\{state="succeeded",le="2\.5"\} 0$/m);
    t.regex(text, /^k8sdeploy_agent_deploy_duration_seconds_bucket\{state="succeeded",le="5"\} 1$/m);
    t.regex(text, /^k8sdeploy_agent_deploy_duration_seconds_bucket\{state="succeeded",le="\+Inf"\} 1$/m);
    t.regex(text, /^k8sdeploy_agent_deploy_duration_seconds_sum\{state="succeeded"\} 4$/m);
    t.regex(text, /^# TYPE process_cpu_seconds_total counter$/m);
    t.regex(text, /^process_resident_memory_bytes \d+$/m);
    t.is((await fetch(`http://${server.address}/livez`)).status, 200);
  } finally {
    await server.close();
  }
});
