#!/usr/bin/env node
// The `k8sdeploy` bin. Commands live in cli/*.ts.
import { createProgram } from "./cli/program.js";

// grpc-js passes the target host as TLS servername even when it is an IP address, so every
// https://<ip> call would print Node's DEP0123 warning. Drop that one; print the rest as Node does.
process.removeAllListeners("warning");
process.on("warning", (warning: Error & { code?: string }) => {
  if (warning.code === "DEP0123") return;
  process.stderr.write(
    `(node:${process.pid}) ${warning.code ? `[${warning.code}] ` : ""}${warning.name}: ${warning.message}\n`,
  );
});

await createProgram().parseAsync(process.argv);
