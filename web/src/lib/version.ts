// K8sDeploy's one version (the root package.json's), put in by vite.config.ts at build time (tests
// that import the snippets outside vite set the same global first).
declare const __K8SDEPLOY_VERSION__: string | undefined;

export const VERSION: string = typeof __K8SDEPLOY_VERSION__ === "string" ? __K8SDEPLOY_VERSION__ : "0.0.0-dev";
