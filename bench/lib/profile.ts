// Summarises a V8 CPU profile (`node --cpu-prof`): self time by package (or file) and by function,
// so that a row that misses its goal can say where the time goes.
//   npx tsx bench/lib/profile.ts <file.cpuprofile> [top]
import { readFileSync } from "node:fs";

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
    const { functionName, url, lineNumber } = node.callFrame;
    const p = packageOf(url);
    pkg.set(p, (pkg.get(p) ?? 0) + us);
    const f = `${functionName || "(anonymous)"} ${p}:${lineNumber + 1}`;
    fn.set(f, (fn.get(f) ?? 0) + us);
  }
  const sorted = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, v]) => [k, Math.round(v / 100) / 10] as [string, number]);
  return { totalMs: (profile.endTime - profile.startTime) / 1000, byPackage: sorted(pkg), byFunction: sorted(fn) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2];
  if (!file) throw new Error("usage: profile.ts <file.cpuprofile> [top]");
  const s = summarizeProfile(JSON.parse(readFileSync(file, "utf8")) as CpuProfile, Number(process.argv[3] ?? 20));
  console.log(`total ${s.totalMs.toFixed(0)} ms`);
  console.log("self time by package (ms):");
  for (const [k, v] of s.byPackage) console.log(`  ${v.toFixed(1).padStart(8)}  ${k}`);
  console.log("self time by function (ms):");
  for (const [k, v] of s.byFunction) console.log(`  ${v.toFixed(1).padStart(8)}  ${k}`);
}
