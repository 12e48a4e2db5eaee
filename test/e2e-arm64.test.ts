// The happy path with the agent bundle running on real arm64 Node 24 under qemu user-mode
// emulation: the same single file a Raspberry Pi cluster would run.
import { existsSync } from "node:fs";
import test from "ava";
import { runBundledAction } from "./support/action.js";
import { agentInfo, githubEnv, node24, waitConnected } from "./support/e2e.js";
import { createDeployment, createNamespace, deleteNamespace, deploymentImages } from "./support/kube.js";
import { agentBundleCheck } from "./support/preflight.js";
import { type Stack, startStack } from "./support/stack.js";

const QEMU = "/usr/bin/qemu-aarch64-static";
const SYSROOT = "/usr/aarch64-linux-gnu";

let stack: Stack | undefined;
let namespace: string | undefined;

test.after.always(async () => {
  await stack?.stop();
  if (namespace) await deleteNamespace(namespace);
});

test("happy path with the agent on arm64 Node 24 (qemu-user)", async (t) => {
  agentBundleCheck();
  if (!existsSync(QEMU) || !existsSync(SYSROOT)) {
    t.fail("qemu-user-static and the arm64 cross libraries are missing: `.ci/run` installs them (see README)");
    return;
  }
  t.timeout(240_000);
  stack = await startStack({ replicas: 1 });
  namespace = await createNamespace("e2e-arm64");
  await createDeployment(namespace, "pi", [{ name: "app", image: "registry.example/acme/pi:1" }]);
  const agent = await stack.createAgent("raspberry");
  const { key } = await stack.createKey(agent.id);
  const replica = stack.replicas[0]!;
  stack.startAgent({
    token: agent.token,
    servers: [replica.grpcAddress],
    node: [QEMU, "-L", SYSROOT, node24("arm64")],
  });
  await waitConnected(stack, agent.id, undefined, 120_000);
  const info = (await agentInfo(stack, agent.id)) as { arch?: string } | undefined;
  t.is(info?.arch, "arm64", JSON.stringify(info));
  const result = await runBundledAction({
    inputs: {
      server: `http://${replica.grpcAddress}`,
      key,
      namespace,
      deployment: "pi",
      image: "registry.example/acme/pi:2",
      timeout: "120",
    },
    env: githubEnv("2001"),
    node: node24(),
    timeoutMs: 200_000,
  });
  t.is(result.outputs.status, "succeeded", result.stdout);
  t.deepEqual(await deploymentImages(namespace, "pi"), { app: "registry.example/acme/pi:2" });
});
