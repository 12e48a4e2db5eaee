// The test bed itself: a second, private instance comes up with a Ready node and a 1.36 server,
// and `down` stops exactly the processes `up` started.
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import test from "ava";
import { repoRoot } from "./support/action.js";

const run = promisify(execFile);
const script = join(repoRoot, "scripts", "testbed", "testbed.sh");

/** Alive and not a zombie waiting to be reaped. */
function running(pid: number): boolean {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    return !/^State:\s+Z/m.test(status);
  } catch {
    return false;
  }
}

const external = process.env.K8SDEPLOY_TESTBED_KIND === "external";

(external ? test.skip : test)("up brings a private control plane up; down stops exactly its processes", async (t) => {
  t.timeout(300_000);
  const state = join(await mkdtemp(join(tmpdir(), "k8sd-tb-")), "state");
  const env = { ...process.env, K8SDEPLOY_TESTBED_STATE: state };
  // Whatever happens (a failed `up` included), nothing of the private test bed outlives the test.
  t.teardown(async () => {
    if (existsSync(state)) await run("bash", [script, "down"], { env }).catch(() => {});
  });
  await run("bash", [script, "up"], { env, maxBuffer: 16 * 1024 * 1024 });
  const pidDir = join(state, "pids");
  const pids = readdirSync(pidDir).map((f) => Number(readFileSync(join(pidDir, f), "utf8").trim()));
  t.true(pids.length >= 7, `pids: ${pids.join(",")}`);
  t.true(pids.every(running));
  const { stdout: exports } = await run("bash", [script, "env"], { env });
  const kubeconfig = /export KUBECONFIG=['"]?([^'"\n]+)/.exec(exports)?.[1] ?? "";
  t.true(existsSync(kubeconfig), exports);
  const { stdout: nodes } = await run("kubectl", ["--kubeconfig", kubeconfig, "get", "nodes", "--no-headers"]);
  t.regex(nodes, /\sReady\s/);
  const { stdout: version } = await run("kubectl", ["--kubeconfig", kubeconfig, "version", "-o", "json"]);
  t.regex(JSON.parse(version).serverVersion.gitVersion, /^v1\.36\./);
  // The registry: authenticated TLS on the exported address, with the exported CA.
  const value = (name: string) => new RegExp(`export ${name}=['"]?([^'"\n]+)`).exec(exports)?.[1] ?? "";
  const { stdout: code } = await run("curl", [
    ...["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", value("K8SDEPLOY_TEST_REGISTRY_CA")],
    ...["-u", `${value("K8SDEPLOY_TEST_REGISTRY_USER")}:${value("K8SDEPLOY_TEST_REGISTRY_PASSWORD")}`],
    `https://${value("K8SDEPLOY_TEST_REGISTRY")}/v2/`,
  ]);
  t.is(code, "200", exports);

  await run("bash", [script, "down"], { env });
  const deadline = Date.now() + 15_000;
  while (pids.some(running) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
  t.deepEqual(pids.filter(running), [], "processes left running after down");
  t.false(existsSync(state));
});
