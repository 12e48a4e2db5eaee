// The orchestrator's public gRPC URL, as agents and the GitHub Action must dial it: the one the
// orchestrator is configured with (K8SDEPLOY_PUBLIC_URL, served in /dashboard-config.json). The
// browser only knows the HTTP address it was served from, which is not that URL, so nothing is
// guessed: when it is not configured the snippets show a placeholder until the user types one
// (kept for this page view only, so a configured URL is never shadowed by an old entry).
import { createSignal } from "solid-js";
import { dashboardConfig } from "./dashboard-config.js";

export const GRPC_URL_PLACEHOLDER = "<ORCHESTRATOR_GRPC_URL>";

const [typed, setTyped] = createSignal<string | undefined>();

/** The configured public URL ("" while loading or when K8SDEPLOY_PUBLIC_URL is unset). */
export function configuredGrpcUrl(): string {
  return dashboardConfig()?.publicGrpcUrl ?? "";
}

/** What the snippets use: what the user typed, else the configured URL, else "". */
export function grpcUrl(): string {
  return typed() ?? configuredGrpcUrl();
}

export function setGrpcUrl(value: string): void {
  setTyped(value.trim());
}
