// Test helpers for Prometheus text and PromQL: which sample names a scrape holds, and which metric
// names an expression reads (so a dashboard can be checked against real scrapes).

/** Names of every sample line in a text exposition (`foo_bucket`, `foo_sum`, … included). */
export function sampleNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{|\s)/.exec(line);
    if (m?.[1]) names.add(m[1]);
  }
  return names;
}

/**
 * Every metric name a scrape exports: its sample names, plus each family it declares with
 * `# TYPE` (a labelled counter nobody has incremented yet has no sample, but is exported), with a
 * histogram's `_bucket`, `_sum` and `_count` and a summary's `_sum` and `_count`.
 */
export function exportedMetricNames(text: string): Set<string> {
  const names = sampleNames(text);
  for (const m of text.matchAll(/^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)$/gm)) {
    const [, name = "", type] = m;
    names.add(name);
    if (type === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(`${name}${s}`);
    if (type === "summary") for (const s of ["_sum", "_count"]) names.add(`${name}${s}`);
  }
  return names;
}

/** The value of the first sample `name{…labels}` whose labels include `labels`. */
export function sampleValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split("\n")) {
    if (!line.startsWith(name) || !/[{\s]/.test(line[name.length] ?? "")) continue;
    const m = /^[^{\s]+(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const have = Object.fromEntries([...(m[1] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[2]);
  }
  return undefined;
}

const PROMQL_WORDS = new Set([
  // aggregations and their modifiers
  "sum",
  "min",
  "max",
  "avg",
  "count",
  "stddev",
  "stdvar",
  "topk",
  "bottomk",
  "quantile",
  "count_values",
  "group",
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "bool",
  "and",
  "or",
  "unless",
  "offset",
  // functions used in dashboards
  "rate",
  "irate",
  "increase",
  "delta",
  "deriv",
  "histogram_quantile",
  "scalar",
  "vector",
  "abs",
  "clamp_min",
  "clamp_max",
  "time",
  "timestamp",
  "label_replace",
  "label_join",
  "sort",
  "sort_desc",
  "absent",
  "changes",
  "resets",
  "max_over_time",
  "min_over_time",
  "avg_over_time",
  "sum_over_time",
  "last_over_time",
  "round",
  "ceil",
  "floor",
  "inf",
  "nan",
]);

/** Metric names an expression selects (strings, label matchers, groupings and ranges removed). */
export function promqlMetricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\$\w+/g, " ");
  const names = new Set<string>();
  for (const m of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const word = m[0];
    if (PROMQL_WORDS.has(word.toLowerCase())) continue;
    // A function call (name followed by an opening parenthesis) is not a metric.
    if (/^\s*\(/.test(stripped.slice((m.index ?? 0) + word.length))) continue;
    if (/^\d/.test(word)) continue;
    names.add(word);
  }
  return [...names];
}

/** Every PromQL expression of a Grafana dashboard (panel targets, nested rows, templating). */
export function dashboardExpressions(dashboard: unknown): { panel: string; expr: string }[] {
  const out: { panel: string; expr: string }[] = [];
  const visit = (node: unknown, panel: string) => {
    if (Array.isArray(node)) {
      for (const n of node) visit(n, panel);
      return;
    }
    if (node === null || typeof node !== "object") return;
    const record = node as Record<string, unknown>;
    const title = typeof record.title === "string" ? record.title : panel;
    if (typeof record.expr === "string") out.push({ panel: title, expr: record.expr });
    for (const value of Object.values(record)) visit(value, title);
  };
  visit(dashboard, "");
  return out;
}
