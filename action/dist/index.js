// K8sDeploy GitHub Action, bundled by action/scripts/bundle.mjs. Do not edit: run `npm run --workspace action bundle`.

// action/src/launcher.ts
import module from "node:module";
import { join } from "node:path";
try {
  const toolCache = process.env.RUNNER_TOOL_CACHE;
  const { enableCompileCache } = module;
  enableCompileCache?.(toolCache ? join(toolCache, "k8sdeploy-compile-cache") : void 0);
} catch {
}
var action = "./action.js";
await import(action);
