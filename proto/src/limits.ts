// Bounds shared by the orchestrator (validation) and the agent (defence in depth).
export const DEFAULT_TIMEOUT_SECONDS = 300;
export const MAX_TIMEOUT_SECONDS = 3600;
export const MAX_IMAGE_LENGTH = 512;
export const MAX_CONTAINERS = 32;
export const MAX_IDEMPOTENCY_KEY_LENGTH = 128;
export const MAX_ORIGIN_FIELD_LENGTH = 512;
