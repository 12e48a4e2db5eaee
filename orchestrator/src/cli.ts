#!/usr/bin/env node
// The `k8sdeploy` bin. Commands live in cli/*.ts.
import { createProgram } from "./cli/program.js";
import { processWarnings } from "./log.js";

// grpc-js passes the target host as TLS servername even when it is an IP address, so every
// https://<ip> call would print Node's DEP0123 warning. Drop that one; print the rest as Node does
// (the admin commands), or as JSON log lines once `serve` has its logger (routeProcessWarnings).
// Node emits warnings on the next tick, so replacing its listener here also catches the ones that
// loading the modules above caused.
process.removeAllListeners("warning");
process.on("warning", (warning: Error & { code?: string }) => {
  if (warning.code === "DEP0123") return;
  processWarnings.handle(warning);
});

await createProgram().parseAsync(process.argv);
