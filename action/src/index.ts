// Entry point of the bundled action (action.yml `runs.main: dist/index.js`).
import * as core from "@actions/core";
import { run } from "./main.js";

try {
  await run();
} catch (error) {
  // run() reports every expected failure itself; this is for bugs.
  core.setFailed(`Unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
}
