// V1LabelSelector → the `labelSelector` query string the API understands.
import type { V1LabelSelector } from "@kubernetes/client-node";

/**
 * Renders matchLabels and matchExpressions as `a=b,c in (x,y),!d`. Throws on an empty selector
 * (it would select every pod of the namespace) and on an operator it does not know.
 */
export function labelSelectorToString(selector: V1LabelSelector | undefined): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(selector?.matchLabels ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
    parts.push(`${k}=${v}`);
  }
  for (const e of selector?.matchExpressions ?? []) {
    const values = [...(e.values ?? [])].sort().join(",");
    switch (e.operator) {
      case "In":
        parts.push(`${e.key} in (${values})`);
        break;
      case "NotIn":
        parts.push(`${e.key} notin (${values})`);
        break;
      case "Exists":
        parts.push(e.key);
        break;
      case "DoesNotExist":
        parts.push(`!${e.key}`);
        break;
      default:
        throw new Error(`unsupported label selector operator ${JSON.stringify(e.operator)}`);
    }
  }
  if (parts.length === 0) throw new Error("the workload has an empty pod selector");
  return parts.join(",");
}
