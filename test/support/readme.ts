// The README's install blocks, which the install tests run (so the README says what is tested).
// A block is the fenced code between `<!-- install:NAME -->` and `<!-- /install:NAME -->`.
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { repoRoot } from "./tools.js";

export function readmeBlock(name: string): string {
  const text = readFileSync(path.join(repoRoot, "README.md"), "utf8");
  const m = new RegExp(
    `<!-- install:${name} -->\\s*\`\`\`\\w*\\n([\\s\\S]*?)\\n\`\`\`\\s*<!-- /install:${name} -->`,
  ).exec(text);
  if (!m?.[1]) throw new Error(`README.md has no <!-- install:${name} --> code block`);
  return m[1];
}

/** Inserts `lines` after the first line equal to `after` (e.g. the heredoc's closing EOF). */
export function insertAfter(script: string, after: string, lines: string[]): string {
  const all = script.split("\n");
  const i = all.indexOf(after);
  if (i < 0) throw new Error(`no line "${after}" in:\n${script}`);
  all.splice(i + 1, 0, ...lines);
  return all.join("\n");
}

/** The line starting with `prefix`, also run first with `--dry-run=server` appended. */
export function withServerDryRun(script: string, prefix: string): string {
  return script
    .split("\n")
    .flatMap((l) => (l.startsWith(prefix) ? [`${l} --dry-run=server`, l] : [l]))
    .join("\n");
}
