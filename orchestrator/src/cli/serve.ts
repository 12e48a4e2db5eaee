// `k8sdeploy serve`
import type { Command } from "commander";
import { loadConfig } from "../config.js";
import { reportError } from "./output.js";

export function registerServeCommand(program: Command): void {
  program
    .command("serve")
    .description("run the orchestrator (configured by K8SDEPLOY_* variables: see orchestrator/CONFIG.md)")
    .action(async () => {
      let config: ReturnType<typeof loadConfig>;
      try {
        config = loadConfig(process.env);
      } catch (err) {
        process.exit(reportError(err));
      }
      try {
        // Loaded here so the admin commands do not pay for the whole server stack.
        const { serve } = await import("../serve.js");
        await serve(config);
      } catch (err) {
        // serve() already logged the details; gRPC/HTTP handles may still be open: exit hard.
        process.exit(reportError(err));
      }
    });
}
