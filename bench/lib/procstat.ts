// Process figures from /proc (Linux): resident memory and CPU time, sampled by pid, plus the
// machine's load average so that every figure can be judged against how busy the machine was.
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";

const CLOCK_TICKS = 100; // USER_HZ on Linux (getconf CLK_TCK), the unit of utime/stime

export interface ProcSample {
  at: number;
  rssBytes: number;
  /** utime + stime in seconds. */
  cpuSeconds: number;
}

export function sample(pid: number): ProcSample {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rssKb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? Number.NaN);
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may contain spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return { at: Date.now(), rssBytes: rssKb * 1024, cpuSeconds: (utime + stime) / CLOCK_TICKS };
}

/** CPU use between two samples, in percent of one core. */
export function cpuPercent(a: ProcSample, b: ProcSample): number {
  return ((b.cpuSeconds - a.cpuSeconds) / ((b.at - a.at) / 1000)) * 100;
}

export const mib = (bytes: number) => bytes / 1024 / 1024;

export function load(): [number, number, number] {
  const [a = 0, b = 0, c = 0] = loadavg();
  return [a, b, c];
}

/** Samples `pid` every `everyMs` for `ms`; returns the samples (first and last included). */
export async function watch(pid: number, ms: number, everyMs = 1000): Promise<ProcSample[]> {
  const samples = [sample(pid)];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, Math.min(everyMs, Math.max(1, end - Date.now()))));
    samples.push(sample(pid));
  }
  return samples;
}
