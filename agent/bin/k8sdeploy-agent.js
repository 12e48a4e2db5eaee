#!/usr/bin/env node
import { existsSync } from "node:fs";

// The `k8sdeploy-agent` command. npm links bins at install time, before anything is built, so the
// bin is this committed file and the program is the compiled dist/main.js.
const program = new URL("../dist/main.js", import.meta.url);
if (!existsSync(program)) {
  console.error("k8sdeploy-agent is not built yet: run `npm run build` in the repository first");
  process.exit(1);
}
await import(program.href);
