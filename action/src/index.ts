// The action, bundled into dist/action.js; the runner starts dist/index.js (launcher.ts), which loads it.
import * as core from "@actions/core";
import { run } from "./main.js";

try {
  await run();
} catch (error) {
  // run() reports every expected failure itself; this is for bugs.
  core.setFailed(`Unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
}
