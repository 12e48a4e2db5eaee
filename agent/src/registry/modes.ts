// The pre-flight modes (K8SDEPLOY_PREFLIGHT), apart so that config.ts needs nothing else of registry/.
export const PREFLIGHT_MODES = ["lenient", "strict", "off"] as const;
export type PreflightMode = (typeof PREFLIGHT_MODES)[number];
