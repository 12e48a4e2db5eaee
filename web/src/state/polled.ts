// A value fetched now and refreshed every `intervalMs` while the page is visible (and at once
// when it becomes visible again). Keeps the last good value when a refresh fails. Values are
// reconciled into a store by `id`, so a refresh that changes one row does not re-create the
// others (focus and text selection in the table survive polling). `refetchOn`, like
// createResource's source, refetches at once when what it reads changes (a "show deleted" toggle).
import { createEffect, createSignal, on, onCleanup } from "solid-js";
import { createStore, reconcile } from "solid-js/store";
import { errorMessage, isAbort } from "../api/errors.js";

export interface Polled<T> {
  data: () => T | undefined;
  error: () => string;
  /** True until the first answer (or error). */
  loading: () => boolean;
  refresh: () => Promise<void>;
}

export function createPolled<T>(
  fetcher: (signal: AbortSignal) => Promise<T>,
  intervalMs: number,
  refetchOn?: () => unknown,
): Polled<T> {
  const [state, setState] = createStore<{ value?: T }>({});
  const data = () => state.value;
  const [error, setError] = createSignal("");
  const [loading, setLoading] = createSignal(true);
  let disposed = false;
  let inflight: AbortController | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const schedule = () => {
    clearTimeout(timer);
    if (!disposed && intervalMs > 0 && document.visibilityState === "visible") {
      timer = setTimeout(() => void refresh(), intervalMs);
    }
  };

  const refresh = async () => {
    inflight?.abort();
    const ctl = new AbortController();
    inflight = ctl;
    try {
      const value = await fetcher(ctl.signal);
      if (ctl.signal.aborted) return;
      setState("value", reconcile(value, { key: "id" }));
      setError("");
    } catch (err) {
      if (ctl.signal.aborted || isAbort(err)) return;
      setError(errorMessage(err));
    } finally {
      if (inflight === ctl) {
        inflight = undefined;
        setLoading(false);
        schedule();
      }
    }
  };

  const onVisibility = () => {
    if (document.visibilityState === "visible") void refresh();
    else clearTimeout(timer);
  };
  document.addEventListener("visibilitychange", onVisibility);
  onCleanup(() => {
    disposed = true;
    clearTimeout(timer);
    inflight?.abort();
    document.removeEventListener("visibilitychange", onVisibility);
  });
  if (refetchOn) createEffect(on(refetchOn, () => void refresh(), { defer: true }));
  void refresh();
  return { data, error, loading, refresh };
}
