// Kubernetes object names, validated as the API server does (apimachinery validation
// IsDNS1123Label / IsDNS1123Subdomain), with messages that say what is allowed.

const DNS1123_LABEL = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;
export const DNS1123_LABEL_MAX_LENGTH = 63;
export const DNS1123_SUBDOMAIN_MAX_LENGTH = 253;

function show(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
}

/**
 * Returns an error message when `value` is not an RFC 1123 label (namespace, container name),
 * e.g. `namespace "Foo": must be a lowercase RFC 1123 label (…)`; undefined when it is valid.
 */
export function validateDns1123Label(value: string, field: string): string | undefined {
  if (typeof value !== "string" || value.length === 0) return `${field} is required`;
  if (value.length <= DNS1123_LABEL_MAX_LENGTH && DNS1123_LABEL.test(value)) return undefined;
  return `${field} ${show(value)}: must be a lowercase RFC 1123 label (a-z, 0-9, '-', at most ${DNS1123_LABEL_MAX_LENGTH} characters, starting and ending with a letter or digit)`;
}

/**
 * Returns an error message when `value` is not an RFC 1123 subdomain (most object names, e.g.
 * Deployment names); undefined when it is valid.
 */
export function validateDns1123Subdomain(value: string, field: string): string | undefined {
  if (typeof value !== "string" || value.length === 0) return `${field} is required`;
  if (value.length <= DNS1123_SUBDOMAIN_MAX_LENGTH && DNS1123_SUBDOMAIN.test(value)) return undefined;
  return `${field} ${show(value)}: must be a lowercase RFC 1123 subdomain (a-z, 0-9, '-' and '.', at most ${DNS1123_SUBDOMAIN_MAX_LENGTH} characters, each dot-separated part starting and ending with a letter or digit)`;
}
