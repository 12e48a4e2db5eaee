// Fails early, with what to run, when the build outputs an end-to-end test needs are missing.
import { existsSync } from "node:fs";
import { bundlePath } from "./action.js";
import { agentBundle, cliPath } from "./stack.js";

export function agentBundleCheck(): void {
  for (const file of [agentBundle, cliPath, bundlePath]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first (npm test does)`);
  }
}
