// TLS on the HTTP port (K8SDEPLOY_HTTP_TLS_CERT_FILE/KEY_FILE): probes, metrics, the dashboard
// config and the Connect admin API answer over HTTPS with the configured certificate, plain HTTP
// gets no answer, and a half-configured pair stops start-up naming the missing variable.
import { readFileSync } from "node:fs";
import * as https from "node:https";
import type * as tls from "node:tls";
import test from "ava";
import { runCli, startOrchestrator } from "./support/orchestrator.js";
import { selfSignedCert, tempDir } from "./support/tools.js";

const ADMIN_TOKEN = `admin-${"5ec0".repeat(10)}`;

function get(url: string, ca: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}) {
  return new Promise<{ status: number; body: string; peerCert: tls.PeerCertificate }>((resolve, reject) => {
    const req = https.request(url, { ca, method: init.method ?? "GET", headers: init.headers }, (res) => {
      let body = "";
      const peerCert = (res.socket as tls.TLSSocket).getPeerCertificate();
      res.setEncoding("utf8").on("data", (d: string) => {
        body += d;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, peerCert }));
    });
    req.on("error", reject);
    req.end(init.body);
  });
}

test("the HTTP port serves HTTPS with the configured certificate", async (t) => {
  const { cert, key } = await selfSignedCert(await tempDir(), { name: "http" });
  const orch = await startOrchestrator({
    env: { K8SDEPLOY_ADMIN_TOKEN: ADMIN_TOKEN, K8SDEPLOY_HTTP_TLS_CERT_FILE: cert, K8SDEPLOY_HTTP_TLS_KEY_FILE: key },
  });
  try {
    t.true(orch.httpUrl.startsWith("https://"));
    t.true(orch.logEntries().some((e) => e.msg === "listening" && e.httpTls === true));
    const ca = readFileSync(cert, "utf8");
    const health = await get(`${orch.httpUrl}/healthz`, ca);
    t.is(health.status, 200);
    t.is(health.peerCert.subject?.CN, "localhost");
    t.is((await get(`${orch.httpUrl}/metrics`, ca)).status, 200);
    t.deepEqual(JSON.parse((await get(`${orch.httpUrl}/dashboard-config.json`, ca)).body), {
      githubServerUrl: "https://github.com",
      publicGrpcUrl: "",
      oidcIssuer: "https://token.actions.githubusercontent.com",
    });
    const agents = await get(`${orch.httpUrl}/k8sdeploy.v1.AdminService/ListAgents`, ca, {
      method: "POST",
      body: "{}",
      headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    t.is(agents.status, 200, agents.body);
    // Without the CA the certificate is refused; plain HTTP gets no HTTP answer.
    await t.throwsAsync(get(`${orch.httpUrl}/healthz`, ""), { message: /self-signed|unable to verify/ });
    const plain = await fetch(`http://${orch.httpAddress}/healthz`).then(
      (r) => `HTTP ${r.status}`,
      (err: Error) => `error: ${err.message}`,
    );
    t.regex(plain, /^error/);
  } finally {
    await orch.stop();
  }
});

test("only one of the HTTP TLS pair stops start-up naming the other", async (t) => {
  const { cert } = await selfSignedCert(await tempDir(), { name: "half" });
  const result = await runCli(["serve"], {
    env: {
      ...process.env,
      K8SDEPLOY_ADMIN_TOKEN: ADMIN_TOKEN,
      K8SDEPLOY_HTTP_TLS_CERT_FILE: cert,
      K8SDEPLOY_GRPC_LISTEN: "127.0.0.1:0",
      K8SDEPLOY_HTTP_LISTEN: "127.0.0.1:0",
    },
    timeoutMs: 20_000,
  });
  t.is(result.code, 1, result.stderr);
  t.regex(
    result.stderr,
    /K8SDEPLOY_HTTP_TLS_KEY_FILE: must be set when K8SDEPLOY_HTTP_TLS_CERT_FILE is set \(both or neither\)/,
  );
});
