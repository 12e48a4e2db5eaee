#!/usr/bin/env node
// The `k8sdeploy-agent` command. npm links bins at install time, before anything is built, so the
// bin is this committed file and the program is the compiled dist/main.js.
try {
  await import("../dist/main.js");
} catch (err) {
  if (err?.code === "ERR_MODULE_NOT_FOUND" && String(err.message).includes("dist/main.js")) {
    console.error("k8sdeploy-agent is not built yet: run `npm run build` in the repository first");
    process.exit(1);
  }
  throw err;
}
