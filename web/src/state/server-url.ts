// The orchestrator's public gRPC URL, as agents and the GitHub Action must dial it. The browser
// only knows the HTTP address, so the default is a guess (same host, port 50051) the user can
// correct; the correction is remembered in localStorage.
import { createSignal } from "solid-js";

const KEY = "k8sdeploy.grpcUrl";

export function defaultGrpcUrl(): string {
  const scheme = location.protocol === "https:" ? "https" : "http";
  const host = location.hostname.includes(":") ? `[${location.hostname}]` : location.hostname;
  return `${scheme}://${host}:50051`;
}

function saved(): string {
  try {
    return localStorage.getItem(KEY) ?? "";
  } catch {
    return "";
  }
}

const [grpcUrl, setGrpcUrlSignal] = createSignal(saved() || defaultGrpcUrl());

export { grpcUrl };

export function setGrpcUrl(value: string): void {
  const trimmed = value.trim();
  try {
    if (trimmed === "" || trimmed === defaultGrpcUrl()) localStorage.removeItem(KEY);
    else localStorage.setItem(KEY, trimmed);
  } catch {
    // ignore
  }
  setGrpcUrlSignal(trimmed);
}
