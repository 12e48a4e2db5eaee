// The Deployments page's filters, read from and written to the URL (?agent=&namespace=&state=).
import { createMemo } from "solid-js";
import { stateFromSlug, stateInfo } from "../lib/format.js";
import { search, setSearchParams } from "../lib/router.js";
import type { FollowFilter } from "../state/follow-deployments.js";

export function parseFilter(q: URLSearchParams): FollowFilter {
  const states = (q.get("state") ?? "")
    .split(",")
    .map((s) => stateFromSlug(s.trim()))
    .filter((s) => s !== undefined);
  return { agentId: q.get("agent") ?? "", namespace: q.get("namespace") ?? "", states: [...new Set(states)] };
}

export function useDeploymentFilters() {
  const filter = createMemo<FollowFilter>(() => parseFilter(search()), parseFilter(search()), {
    equals: (a, b) =>
      a.agentId === b.agentId && a.namespace === b.namespace && a.states.join(",") === b.states.join(","),
  });
  const set = (update: Partial<FollowFilter>) => {
    const next = { ...filter(), ...update };
    setSearchParams({
      agent: next.agentId,
      namespace: next.namespace.trim(),
      state: next.states.map((s) => stateInfo(s).slug).join(","),
    });
  };
  const active = () => filter().agentId !== "" || filter().namespace !== "" || filter().states.length > 0;
  const clear = () => setSearchParams({ agent: undefined, namespace: undefined, state: undefined });
  return { filter, set, active, clear };
}
