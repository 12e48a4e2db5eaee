// Dashboard build: `vite build` writes web/dist (served by the orchestrator's HTTP port).
// `vite` / `vite preview` proxy the Connect API to an orchestrator (K8SDEPLOY_WEB_API, default
// http://127.0.0.1:8080) so the app can be developed without building the orchestrator's static handler.
import { readFileSync } from "node:fs";
import { defineConfig } from "vite";
import solid from "vite-plugin-solid";

const api = process.env.K8SDEPLOY_WEB_API ?? "http://127.0.0.1:8080";
const proxy = {
  "/k8sdeploy.v1.AdminService": { target: api, changeOrigin: true },
  "/k8sdeploy.v1.DeployService": { target: api, changeOrigin: true },
};

// One version for every part of K8sDeploy: the root package.json's (shown in the footer).
const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
  version: string;
};

export default defineConfig({
  plugins: [solid()],
  define: { __K8SDEPLOY_VERSION__: JSON.stringify(version) },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    assetsDir: "assets",
    sourcemap: false,
    reportCompressedSize: true,
  },
  server: { proxy },
  preview: { proxy },
});
