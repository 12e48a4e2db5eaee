// The K8sDeploy version: ONE number for every part, the root package.json's "version". The bundle
// (scripts/bundle.mjs) replaces __K8SDEPLOY_VERSION__ with it; the tsc build and the tests read
// the root package.json (two levels above src/ and dist/).
import { readFileSync } from "node:fs";

declare const __K8SDEPLOY_VERSION__: string | undefined;

let cached: string | undefined;

export function k8sdeployVersion(): string {
  if (cached !== undefined) return cached;
  if (typeof __K8SDEPLOY_VERSION__ === "string") {
    cached = __K8SDEPLOY_VERSION__;
  } else {
    try {
      const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
        version?: unknown;
      };
      cached = typeof pkg.version === "string" ? pkg.version : "0.0.0-unknown";
    } catch {
      cached = "0.0.0-unknown";
    }
  }
  return cached;
}
