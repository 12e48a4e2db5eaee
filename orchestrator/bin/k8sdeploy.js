#!/usr/bin/env node
import { existsSync } from "node:fs";

// The `k8sdeploy` command. npm links bins at install time, before anything is built, so the bin
// is this committed file and the program is the compiled dist/cli.js.
const program = new URL("../dist/cli.js", import.meta.url);
if (!existsSync(program)) {
  console.error("k8sdeploy is not built yet: run `npm run build` (or `npm start`) in the repository first");
  process.exit(1);
}
await import(program.href);
