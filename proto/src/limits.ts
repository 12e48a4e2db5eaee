// Bounds shared by the orchestrator (validation) and the agent (defence in depth).
export const DEFAULT_TIMEOUT_SECONDS = 300;
export const MAX_TIMEOUT_SECONDS = 3600;
export const MAX_IMAGE_LENGTH = 512;
export const MAX_CONTAINERS = 32;
export const MAX_IDEMPOTENCY_KEY_LENGTH = 128;
export const MAX_ORIGIN_FIELD_LENGTH = 512;
/** Longest queue timeout a Deploy may ask for (7 days). */
export const MAX_QUEUE_TIMEOUT_SECONDS = 604_800;
/** Longest cancel reason. */
export const MAX_CANCEL_REASON_LENGTH = 256;

// What an agent may report (agent.proto documents these bounds). The orchestrator truncates longer
// text with a visible marker and drops list entries beyond the counts; the agent keeps within them.
export const MAX_REPORTED_MESSAGE_LENGTH = 4096;
export const MAX_REPORTED_IMAGES = 64;
export const MAX_DESCRIBE_ITEMS = 5000;
/** Events stored per deployment; later progress events are dropped from the timeline (final ones never). */
export const MAX_EVENTS_PER_DEPLOYMENT = 1000;
