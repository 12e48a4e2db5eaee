// The orchestrator's dashboard settings (GET /dashboard-config.json), read once per page load.
import { createSignal } from "solid-js";

export interface DashboardConfig {
  githubServerUrl: string;
  /** K8SDEPLOY_PUBLIC_URL; "" when unset. */
  publicGrpcUrl: string;
  /** K8SDEPLOY_OIDC_ISSUER. */
  oidcIssuer: string;
}

const [config, setConfig] = createSignal<DashboardConfig | undefined>();
let started = false;

async function load(): Promise<void> {
  const res = await fetch("/dashboard-config.json", { headers: { accept: "application/json" } });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  const body = (await res.json()) as Partial<DashboardConfig>;
  if (typeof body.githubServerUrl !== "string") throw new Error("no githubServerUrl");
  setConfig({
    githubServerUrl: body.githubServerUrl,
    publicGrpcUrl: typeof body.publicGrpcUrl === "string" ? body.publicGrpcUrl : "",
    oidcIssuer: typeof body.oidcIssuer === "string" ? body.oidcIssuer : "",
  });
}

/** The settings; undefined while loading or when they could not be read (then no GitHub links). */
export function dashboardConfig(): DashboardConfig | undefined {
  if (!started) {
    started = true;
    load().catch((err: unknown) => console.warn("dashboard config could not be read:", err));
  }
  return config();
}
