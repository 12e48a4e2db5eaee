// reuseConnections (kube.ts) against the test bed's real kube-apiserver: API calls and watches share
// keep-alive TLS connections instead of a new connection and handshake per call (client-node's own
// behaviour, measured here for comparison in the same test).
import * as https from "node:https";
import { CoreV1Api, type KubeConfig, Watch } from "@kubernetes/client-node";
import test from "ava";
import { testKubeConfig } from "./deploy/testing/testbed-fixtures.js";
import { reuseConnections } from "./kube.js";

/** TCP+TLS connections any https.Agent opens while `fn` runs. */
async function connectionsDuring(fn: () => Promise<void>): Promise<number> {
  const proto = https.Agent.prototype as unknown as { createConnection: (...args: unknown[]) => unknown };
  const original = proto.createConnection;
  let opened = 0;
  proto.createConnection = function (this: unknown, ...args: unknown[]) {
    opened++;
    return original.apply(this, args);
  };
  try {
    await fn();
  } finally {
    proto.createConnection = original;
  }
  return opened;
}

async function twentyCallsAndAWatch(kc: KubeConfig): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  for (let i = 0; i < 10; i++) await core.readNamespace({ name: "default" });
  // A watch in between (it holds a connection of its own while it runs), then more calls.
  const watch = new Watch(kc);
  const seen = new Promise<void>((resolve) => {
    void watch
      .watch(
        "/api/v1/namespaces",
        { fieldSelector: "metadata.name=default" },
        () => resolve(),
        () => {},
      )
      .then((req) => seen.then(() => req.abort()));
  });
  await seen;
  for (let i = 0; i < 10; i++) await core.readNamespace({ name: "default" });
}

test.serial("API calls and watches share keep-alive connections (client-node alone opens one per call)", async (t) => {
  const plain = await connectionsDuring(() => twentyCallsAndAWatch(testKubeConfig()));
  const reused = await connectionsDuring(() => twentyCallsAndAWatch(reuseConnections(testKubeConfig())));
  t.log({ plain, reused });
  t.true(plain >= 21, `client-node alone: ${plain}`);
  t.true(reused <= 3, `with reuseConnections: ${reused}`);
});

test.serial("a client certificate that changes gets a connection of its own", (t) => {
  const kc = reuseConnections(testKubeConfig());
  const create = (kc as unknown as { createAgent: (c: unknown, o: https.AgentOptions) => https.Agent }).createAgent;
  const cluster = kc.getCurrentCluster();
  const a = create(cluster, { ca: "ca-1", cert: "cert-1" });
  t.is(create(cluster, { ca: "ca-1", cert: "cert-1" }), a);
  t.not(create(cluster, { ca: "ca-1", cert: "cert-2" }), a);
  t.true((a as unknown as { keepAlive: boolean }).keepAlive);
});
