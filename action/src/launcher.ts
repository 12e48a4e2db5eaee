// What the runner starts (action.yml `runs.main: dist/index.js`): turns on Node's compile cache,
// then loads the action (dist/action.js, built from index.ts). Compiling the 2 MiB bundle is a
// third of the action's start-up; with the cache a runner that keeps its tool cache or /tmp
// between jobs (self-hosted runners) skips it from the second job on. It must happen here, in a
// file of its own: a module is compiled whole before any of its code runs.
import module from "node:module";
import { join } from "node:path";

try {
  const toolCache = process.env.RUNNER_TOOL_CACHE;
  // Node ≥ 22.1 (a default import: on older Node a named one would fail to link); without a
  // directory it uses the OS temporary directory.
  const { enableCompileCache } = module as { enableCompileCache?: (dir?: string) => unknown };
  enableCompileCache?.(toolCache ? join(toolCache, "k8sdeploy-compile-cache") : undefined);
} catch {
  // A cache that cannot be written costs nothing but the speed-up.
}
// A variable, so that the bundler leaves the file to be loaded at run time.
const action = "./action.js";
await import(action);
