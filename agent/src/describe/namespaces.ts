// The namespaces the agent can see: name, phase, creation time; sorted by name.

import type { Namespace } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import type { CoreV1Api } from "@kubernetes/client-node";
import { toExecutorError } from "../kube.js";

/** Throws ExecutorError (PERMISSION_DENIED naming "list namespaces", KUBERNETES_API…). */
export async function describeNamespaces(core: CoreV1Api): Promise<Namespace[]> {
  const out: Namespace[] = [];
  let cont: string | undefined;
  try {
    do {
      const page = await core.listNamespace(cont ? { limit: 500, _continue: cont } : { limit: 500 });
      for (const ns of page.items) {
        const n: Namespace = { name: ns.metadata?.name ?? "", phase: ns.status?.phase ?? "" };
        const created = toDate(ns.metadata?.creationTimestamp);
        if (created) n.createdAt = created;
        out.push(n);
      }
      cont = page.metadata?._continue || undefined;
    } while (cont);
  } catch (err) {
    throw toExecutorError(err, { verb: "list", resource: "namespaces" });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function toDate(v: Date | string | undefined): Date | undefined {
  if (v === undefined) return undefined;
  const d = v instanceof Date ? v : new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d;
}
