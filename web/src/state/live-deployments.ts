// The live deployment list behind the Deployments page: a snapshot from ListDeployments kept
// current by WatchDeployments (see follow-deployments.ts), merged by id, newest change wins.
import type { Deployment } from "@k8sdeploy/proto/es/k8sdeploy/v1/types_pb.js";
import { createEffect, createMemo, createSignal, on, onCleanup } from "solid-js";
import { createStore, reconcile } from "solid-js/store";
import { admin } from "../api/clients.js";
import { errorMessage } from "../api/errors.js";
import { toMillis } from "../lib/format.js";
import { type FollowFilter, type FollowStatus, followDeployments } from "./follow-deployments.js";

/** True when `next` is at least as recent as `current`. */
export function supersedes(next: Deployment, current: Deployment | undefined): boolean {
  if (!current) return true;
  const a = toMillis(next.updatedAt);
  const b = toMillis(current.updatedAt);
  return a > b || (a === b && next.state >= current.state);
}

export function newestFirst(a: Deployment, b: Deployment): number {
  return toMillis(b.createdAt) - toMillis(a.createdAt) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

function onlineOnce(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      window.removeEventListener("online", done);
      signal.removeEventListener("abort", done);
      resolve();
    };
    window.addEventListener("online", done);
    signal.addEventListener("abort", done);
  });
}

export function createLiveDeployments(filter: () => FollowFilter) {
  const [byId, setById] = createSignal(new Map<string, Deployment>(), { equals: false });
  const [status, setStatus] = createSignal<FollowStatus>({ kind: "connecting" });
  const [loaded, setLoaded] = createSignal(false);
  const [listError, setListError] = createSignal("");
  const [nextPageToken, setNextPageToken] = createSignal("");
  const [loadingMore, setLoadingMore] = createSignal(false);
  const [flashes, setFlashes] = createSignal(new Set<string>(), { equals: false });
  const flashTimers = new Map<string, ReturnType<typeof setTimeout>>();
  onCleanup(() => {
    for (const t of flashTimers.values()) clearTimeout(t);
  });
  const flash = (id: string) => {
    clearTimeout(flashTimers.get(id));
    setFlashes(flashes().add(id));
    flashTimers.set(
      id,
      setTimeout(() => {
        flashTimers.delete(id);
        const set = flashes();
        set.delete(id);
        setFlashes(set);
      }, 1600),
    );
  };

  const merge = (deployments: Deployment[]) => {
    const map = byId();
    let changed = false;
    for (const d of deployments) {
      if (supersedes(d, map.get(d.id))) {
        map.set(d.id, d);
        changed = true;
      }
    }
    if (changed) setById(map);
  };

  createEffect(
    on(filter, (f) => {
      const ctl = new AbortController();
      setById(new Map());
      setLoaded(false);
      setListError("");
      setNextPageToken("");
      let firstSnapshot = true;
      void followDeployments(
        {
          watch: (request, signal) => admin.watchDeployments(request, { signal }),
          list: (request, signal) => admin.listDeployments(request, { signal }),
        },
        f,
        ctl.signal,
        {
          snapshot: (response) => {
            merge(response.deployments);
            if (firstSnapshot) setNextPageToken(response.nextPageToken);
            firstSnapshot = false;
            setListError("");
            setLoaded(true);
          },
          snapshotError: (message) => {
            setListError(message);
            setLoaded(true);
          },
          change: (entry) => {
            if (!entry.deployment) return;
            merge([entry.deployment]);
            flash(entry.deployment.id);
          },
          status: setStatus,
        },
        { wake: onlineOnce },
      );
      onCleanup(() => ctl.abort());
    }),
  );

  const sorted = createMemo(() => {
    const states = filter().states;
    return [...byId().values()].filter((d) => states.length === 0 || states.includes(d.state)).sort(newestFirst);
  });
  // Rows keep their identity (and DOM, and focus) across updates: changes land field by field.
  const [rows, setRows] = createStore<Deployment[]>([]);
  createEffect(() => setRows(reconcile(sorted(), { key: "id" })));
  const items = () => rows;

  const loadMore = async () => {
    const token = nextPageToken();
    if (token === "" || loadingMore()) return;
    setLoadingMore(true);
    try {
      const f = filter();
      const response = await admin.listDeployments({
        agentId: f.agentId,
        namespace: f.namespace,
        states: f.states,
        pageSize: 50,
        pageToken: token,
      });
      merge(response.deployments);
      setNextPageToken(response.nextPageToken);
      setListError("");
    } catch (err) {
      setListError(errorMessage(err));
    } finally {
      setLoadingMore(false);
    }
  };

  /** True for a moment after a row changed through the live feed, for a highlight. */
  const flashing = (id: string) => flashes().has(id);

  return { items, status, loaded, listError, nextPageToken, loadingMore, loadMore, flashing };
}
