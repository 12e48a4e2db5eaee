// The namespace and workload allowlists that deploy keys and trust policies share: what an admin may
// write into them.
import { validateDns1123Label, validateDns1123Subdomain } from "@k8sdeploy/proto/contract/names.js";

const MAX_SCOPE_ENTRIES = 100;

/** What is wrong with the allowlists, one message per problem naming the field (empty when fine). */
export function scopeProblems(scope: { namespaces: string[]; workloads: string[] }): string[] {
  const problems: string[] = [];
  if (scope.namespaces.length > MAX_SCOPE_ENTRIES) problems.push(`namespaces: at most ${MAX_SCOPE_ENTRIES}`);
  if (scope.workloads.length > MAX_SCOPE_ENTRIES) problems.push(`workloads: at most ${MAX_SCOPE_ENTRIES}`);
  scope.namespaces.forEach((ns, i) => {
    const p = validateDns1123Label(ns, `namespaces[${i}]`);
    if (p) problems.push(p);
  });
  scope.workloads.forEach((w, i) => {
    const p = validateDns1123Subdomain(w, `workloads[${i}]`);
    if (p) problems.push(p);
  });
  return problems;
}
