#!/usr/bin/env node
// The `k8sdeploy` command. npm links bins at install time, before anything is built, so the bin
// is this committed file and the program is the compiled dist/cli.js.
try {
  await import("../dist/cli.js");
} catch (err) {
  if (err?.code === "ERR_MODULE_NOT_FOUND" && String(err.message).includes("dist/cli.js")) {
    console.error("k8sdeploy is not built yet: run `npm run build` (or `npm start`) in the repository first");
    process.exit(1);
  }
  throw err;
}
