// Summarises a V8 CPU profile (`node --cpu-prof`): self time by package (or file) and by function,
// so that a row that misses its goal can say where the time goes.
//   npx tsx bench/lib/profile.ts <file.cpuprofile> [top]
//   npx tsx bench/lib/profile.ts <file.cpuprofile> --by-second      busy / GC / idle per second
//   npx tsx bench/lib/profile.ts <file.cpuprofile> --window 3 14     self and inclusive time, seconds 3–14
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  totalMs: number;
  byPackage: [string, number][];
  byFunction: [string, number][];
}

function packageOf(url: string): string {
  if (url === "") return "(native / V8)";
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const rest = url.slice(nm + "node_modules/".length).split("/");
    return rest[0]?.startsWith("@") ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  if (url.startsWith("node:")) return url;
  const m = /\/(orchestrator|agent|proto|bench)\/(?:dist\/)?(.*)$/.exec(url);
  return m ? `${m[1]}/${m[2]}` : url;
}

/** `function package:line`, how a frame is named in every summary. */
function frameLabel(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  return `${functionName || "(anonymous)"} ${packageOf(url)}:${lineNumber + 1}`;
}

export function summarizeProfile(profile: CpuProfile, top = 15): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const pkg = new Map<string, number>();
  const fn = new Map<string, number>();
  for (const [id, us] of self) {
    const node = byId.get(id);
    if (!node) continue;
    const p = packageOf(node.callFrame.url);
    pkg.set(p, (pkg.get(p) ?? 0) + us);
    const f = frameLabel(node);
    fn.set(f, (fn.get(f) ?? 0) + us);
  }
  const sorted = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, v]) => [k, Math.round(v / 100) / 10] as [string, number]);
  return { totalMs: (profile.endTime - profile.startTime) / 1000, byPackage: sorted(pkg), byFunction: sorted(fn) };
}

/** Busy, GC and idle ms of the main thread in each `bucketMs` of the profile. */
export function busyByBucket(profile: CpuProfile, bucketMs = 1000): { busy: number; gc: number; idle: number }[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const out: { busy: number; gc: number; idle: number }[] = [];
  let t = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const d = profile.timeDeltas[i] ?? 0;
    t += d;
    const b = Math.floor(t / 1000 / bucketMs);
    for (let k = out.length; k <= b; k++) out.push({ busy: 0, gc: 0, idle: 0 });
    const name = byId.get(profile.samples[i]!)?.callFrame.functionName;
    const bucket = out[b]!;
    if (name === "(idle)") bucket.idle += d / 1000;
    else if (name === "(garbage collector)") bucket.gc += d / 1000;
    else bucket.busy += d / 1000;
  }
  return out;
}

/** Self and inclusive ms by function for the samples between `fromS` and `toS` seconds. */
export function windowSummary(profile: CpuProfile, fromS: number, toS: number, top = 40) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let t = 0;
  let totalMs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const d = (profile.timeDeltas[i] ?? 0) / 1000;
    t += d;
    if (t < fromS * 1000 || t > toS * 1000) continue;
    totalMs += d;
    const node = byId.get(profile.samples[i]!);
    if (!node) continue;
    const own = frameLabel(node);
    self.set(own, (self.get(own) ?? 0) + d);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const l = frameLabel(byId.get(id)!);
      if (seen.has(l)) continue;
      seen.add(l);
      inclusive.set(l, (inclusive.get(l) ?? 0) + d);
    }
  }
  const sorted = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
  return { totalMs, self: sorted(self), inclusive: sorted(inclusive) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { "by-second": { type: "boolean" }, window: { type: "string", multiple: true } },
  });
  const [file, topArg] = positionals;
  if (!file) throw new Error("usage: profile.ts <file.cpuprofile> [top] [--by-second] [--window FROM --window TO]");
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  if (values["by-second"]) {
    for (const [i, b] of busyByBucket(profile).entries()) {
      const cells = [b.busy.toFixed(0).padStart(5), b.gc.toFixed(0).padStart(4), b.idle.toFixed(0).padStart(5)];
      console.log(`${String(i).padStart(4)} s  busy ${cells[0]}  gc ${cells[1]}  idle ${cells[2]}`);
    }
    process.exit(0);
  }
  if (values.window) {
    const [from, to] = values.window.map(Number);
    const w = windowSummary(profile, from ?? 0, to ?? Number.POSITIVE_INFINITY, Number(topArg ?? 40));
    console.log(`window ${from}–${to} s: ${w.totalMs.toFixed(0)} ms sampled`);
    console.log("self (ms):");
    for (const [k, v] of w.self) console.log(`  ${v.toFixed(0).padStart(8)}  ${k}`);
    console.log("inclusive (ms):");
    for (const [k, v] of w.inclusive) console.log(`  ${v.toFixed(0).padStart(8)}  ${k}`);
    process.exit(0);
  }
  const s = summarizeProfile(profile, Number(topArg ?? 20));
  console.log(`total ${s.totalMs.toFixed(0)} ms`);
  console.log("self time by package (ms):");
  for (const [k, v] of s.byPackage) console.log(`  ${v.toFixed(1).padStart(8)}  ${k}`);
  console.log("self time by function (ms):");
  for (const [k, v] of s.byFunction) console.log(`  ${v.toFixed(1).padStart(8)}  ${k}`);
}
