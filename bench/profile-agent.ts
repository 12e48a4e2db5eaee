// Where the agent's memory and start-up time go: runs the agent bundle (built with a source map by
// `node agent/scripts/bundle.mjs --sourcemap`) on Node 24 against an orchestrator (memory store) and
// the test bed's Kubernetes, then
//   - start-up: a V8 CPU profile from spawn to "connected", self time by package (via the source map);
//   - idle: a heap snapshot after --idle seconds, self size by constructor and closures by package;
//   - variants: idle RSS (and by mapping, /proc/<pid>/smaps) and start → connected for each --variant:
//     Node flags and VAR=value env, instead of agent/node-runtime ("" = plain node).
// Writes bench/profiles/agent-<time>.json and prints the summary.
//   npx tsx bench/profile-agent.ts [--idle 12] [--variant "--lite-mode" --variant "MALLOC_ARENA_MAX=2 --lite-mode"]
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { SourceMap } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { agentBundle } from "../test/support/stack.js";
import { repoRoot } from "../test/support/tools.js";
import { createAgents } from "./lib/clients.js";
import { benchDir, sleep, stopChild, track, until } from "./lib/processes.js";
import { mib, sample } from "./lib/procstat.js";
import { summarizeProfile } from "./lib/profile.js";
import { median } from "./lib/stats.js";
import { ADMIN_TOKEN, startSut } from "./lib/sut.js";
import { agentEnv, agentNodeRuntime, node24 } from "./scenarios/agent.js";

const opts = new Command()
  .option("--idle <seconds>", "idle time before sampling", "12")
  .option(
    "--variant <opts>",
    "Node flags and VAR=value env of a variant, instead of agent/node-runtime (repeatable)",
    (v, a: string[]) => [...a, v],
    [],
  )
  .option("--repeat <n>", "run the variants this many times, in turn (medians reported)", "1")
  .option("--no-profiles", "variants only")
  .parse()
  .opts<{ idle: string; variant: string[]; repeat: string; profiles: boolean }>();
const idleMs = Number(opts.idle) * 1000;

const mapFile = `${agentBundle}.map`;
if (opts.profiles && (!existsSync(mapFile) || statSync(mapFile).mtimeMs < statSync(agentBundle).mtimeMs))
  throw new Error(`${mapFile} is missing or older than the bundle: run \`node agent/scripts/bundle.mjs --sourcemap\``);
const kubeconfig = process.env.KUBECONFIG ?? "";
if (!kubeconfig) throw new Error('KUBECONFIG is not set: eval "$(npm run --silent testbed -- env)"');

function packageOf(source: string): string {
  const nm = source.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const rest = source.slice(nm + "node_modules/".length).split("/");
    const pkg = rest[0]?.startsWith("@") ? `${rest[0]}/${rest[1]}` : (rest[0] ?? source);
    if (pkg === "@kubernetes/client-node") {
      const gen = /dist\/gen\/(apis|models|types)\/(\w+)/.exec(source);
      if (gen) return `client-node gen/${gen[1]}${gen[1] === "models" ? "" : `/${gen[2]}`}`;
    }
    return pkg;
  }
  const m = /\/(agent|proto)\/(?:dist\/)?(.*)$/.exec(source);
  return m ? `${m[1]}/${m[2]?.split("/")[0]}` : source;
}

const sourceMap = opts.profiles ? new SourceMap(JSON.parse(readFileSync(mapFile, "utf8"))) : undefined;
/** Package of a 0-based line/column of the bundle. */
function locate(line: number, column: number): string {
  const entry = sourceMap?.findEntry(line, column);
  return entry && "originalSource" in entry && entry.originalSource ? packageOf(entry.originalSource) : "(bundle)";
}

const sut = await startSut({ store: "memory" });
const node = node24();
const runtime = agentNodeRuntime();
const baseFlags = runtime.flags;
const report: Record<string, unknown> = {
  command: `npx tsx bench/profile-agent.ts ${process.argv.slice(2).join(" ")}`,
  node: execFileSync(node, ["--version"], { encoding: "utf8" }).trim(),
  nodeRuntime: runtime,
  at: new Date().toISOString(),
};

async function runOnce(nodeFlags: string[], env: Record<string, string>, args: string[], idle: number) {
  const [agent] = await createAgents(sut.address, ADMIN_TOKEN, 1);
  const t0 = performance.now();
  const child = track(
    spawn(node, [...nodeFlags, ...args, agentBundle], {
      env: { ...agentEnv(sut.address, agent!.token, kubeconfig), ...env },
      stdio: ["ignore", "ignore", "pipe"],
    }),
  );
  let text = "";
  let connectedMs = 0;
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    text += d;
    if (!connectedMs && text.includes("connected to the orchestrator")) connectedMs = performance.now() - t0;
  });
  await until(() => connectedMs > 0 || child.exitCode !== null, "connected", 30_000, 5);
  if (!connectedMs) throw new Error(`agent exited:\n${text.slice(-2000)}`);
  await sleep(idle);
  const rss = mib(sample(child.pid!).rssBytes);
  return { child, connectedMs, rss, smaps: smapsRss(child.pid!), output: () => text };
}

/** RSS by kind of mapping (/proc/<pid>/smaps), MiB: the node binary, other files, malloc, anonymous. */
function smapsRss(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  let kind = "anonymous (V8 heap, thread stacks, large mallocs)";
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) {
      const name = head[1] ?? "";
      kind =
        name === "[heap]"
          ? "malloc heap ([heap])"
          : name.endsWith("/node")
            ? "node binary (text, data)"
            : name.startsWith("/")
              ? "other files (libc, …)"
              : name.startsWith("[")
                ? `${name}`
                : "anonymous (V8 heap, thread stacks, large mallocs)";
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) out[kind] = (out[kind] ?? 0) + Number(rss[1]) / 1024;
  }
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, Math.round(v * 10) / 10]));
}

if (opts.profiles) {
  // Start-up: stop right after "connected", so the profile covers the start only.
  const cpuDir = mkdtempSync(join(tmpdir(), "k8sd-agent-cpu-"));
  const start = await runOnce(
    baseFlags,
    runtime.env,
    ["--cpu-prof", `--cpu-prof-dir=${cpuDir}`, "--cpu-prof-interval=200"],
    0,
  );
  await stopChild(start.child, "SIGTERM");
  const file = readdirSync(cpuDir).find((f) => f.endsWith(".cpuprofile"));
  if (!file) throw new Error("no CPU profile written");
  const profile = JSON.parse(readFileSync(join(cpuDir, file), "utf8"));
  // Attribute bundle frames to their source package.
  for (const n of profile.nodes) {
    if (n.callFrame.url.endsWith("k8sdeploy-agent.mjs"))
      n.callFrame.url = `bundle:${locate(n.callFrame.lineNumber, n.callFrame.columnNumber)}`;
  }
  const cpu = summarizeProfile(profile, 25);
  report.startup = { connectedMs: Math.round(start.connectedMs), profileMs: Math.round(cpu.totalMs), ...cpu };

  // Idle heap snapshot.
  const snapDir = mkdtempSync(join(tmpdir(), "k8sd-agent-heap-"));
  const idle = await runOnce(
    baseFlags,
    runtime.env,
    ["--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${snapDir}`],
    idleMs,
  );
  const mem = idle.rss;
  idle.child.kill("SIGUSR2");
  await until(() => readdirSync(snapDir).some((f) => f.endsWith(".heapsnapshot")), "heap snapshot", 60_000, 200);
  await sleep(3000); // written synchronously by the agent; wait until it is complete
  await stopChild(idle.child, "SIGTERM");
  const snapFile = join(snapDir, readdirSync(snapDir).find((f) => f.endsWith(".heapsnapshot"))!);
  report.idleSmapsMiB = idle.smaps;
  report.idleHeap = {
    rssMiB: Math.round(mem * 10) / 10,
    ...summarizeSnapshot(JSON.parse(readFileSync(snapFile, "utf8"))),
  };
}

const runs = new Map<string, { rssMiB: number[]; connectedMs: number[]; smaps: Record<string, number> }>();
for (let round = 0; round < Number(opts.repeat); round++) {
  for (const v of opts.variant) {
    const words = v.split(" ").filter(Boolean);
    const env = Object.fromEntries(
      words.filter((w) => /^[A-Z_]+=/.test(w)).map((w) => [w.slice(0, w.indexOf("=")), w.slice(w.indexOf("=") + 1)]),
    );
    const flags = words.filter((w) => !/^[A-Z_]+=/.test(w));
    // V8 flags such as --lite-mode are refused in NODE_OPTIONS: they go on the command line, as in the image.
    const r = await runOnce(flags, env, [], idleMs);
    await stopChild(r.child, "SIGTERM");
    const acc = runs.get(v) ?? { rssMiB: [], connectedMs: [], smaps: r.smaps };
    acc.rssMiB.push(Math.round(r.rss * 10) / 10);
    acc.connectedMs.push(Math.round(r.connectedMs));
    runs.set(v, acc);
    console.log(`${v.padEnd(70)} rss ${r.rss.toFixed(1)} MiB  connected ${r.connectedMs.toFixed(0)} ms`);
  }
}
const variants = [...runs.entries()].map(([variant, r]) => ({
  variant,
  rssMiB: median(r.rssMiB),
  connectedMs: median(r.connectedMs),
  runs: r,
}));
if (variants.length) report.variants = variants;
await sut.stop();

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]]; location_fields: string[] } };
  nodes: number[];
  strings: string[];
  locations: number[];
}

function summarizeSnapshot(s: Snapshot) {
  const f = s.snapshot.meta.node_fields;
  const width = f.length;
  const [iType, iName, iSize] = ["type", "name", "self_size"].map((k) => f.indexOf(k)) as [number, number, number];
  const types = s.snapshot.meta.node_types[0];
  const byType = new Map<string, number>();
  const byCtor = new Map<string, { bytes: number; count: number }>();
  let total = 0;
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + iType]!]!;
    const size = s.nodes[i + iSize]!;
    total += size;
    byType.set(type, (byType.get(type) ?? 0) + size);
    const name =
      type === "object" || type === "closure" || type === "hidden" || type === "code" || type === "array"
        ? `${type}: ${s.strings[s.nodes[i + iName]!]!.slice(0, 60)}`
        : type;
    const e = byCtor.get(name) ?? { bytes: 0, count: 0 };
    e.bytes += size;
    e.count++;
    byCtor.set(name, e);
  }
  // Closures by the package their code comes from (snapshot locations: node index, script, line, column).
  const lf = s.snapshot.meta.location_fields;
  const closuresByPackage = new Map<string, number>();
  for (let i = 0; i < s.locations.length; i += lf.length) {
    const pkg = locate(s.locations[i + 2]!, s.locations[i + 3]!);
    closuresByPackage.set(pkg, (closuresByPackage.get(pkg) ?? 0) + 1);
  }
  const top = <T>(m: Map<string, T>, key: (v: T) => number, n: number) =>
    [...m.entries()].sort((a, b) => key(b[1]) - key(a[1])).slice(0, n);
  const kib = (b: number) => Math.round(b / 1024);
  return {
    totalKiB: kib(total),
    byTypeKiB: Object.fromEntries(top(byType, (v) => v, 20).map(([k, v]) => [k, kib(v)])),
    byConstructor: top(byCtor, (v) => v.bytes, 30).map(([k, v]) => ({ name: k, kib: kib(v.bytes), count: v.count })),
    closuresByPackage: Object.fromEntries(top(closuresByPackage, (v) => v, 20)),
  };
}

mkdirSync(join(benchDir, "profiles"), { recursive: true });
const out = join(benchDir, "profiles", `agent-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
console.log(JSON.stringify(report, null, 2));
console.error(`wrote ${out} (repo ${repoRoot})`);
process.exit(0);
