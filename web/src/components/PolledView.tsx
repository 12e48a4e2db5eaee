// A fetched list's states in one place: the error (with a retry), a spinner until the first
// answer, what an empty list means, then the list itself (often a table).
import type { JSX } from "solid-js";
import { For, Show } from "solid-js";
import { DataTable } from "./DataTable.js";
import { InlineError, Loading } from "./Feedback.js";

export interface ListSource {
  error: () => string;
  /** True until the first answer (or error). */
  loading: () => boolean;
  /** Retries after an error; without it the error has no button. */
  refresh?: () => Promise<void>;
}

export function PolledView(props: {
  source: ListSource;
  count: number;
  loadingLabel: string;
  /** Shown when the list is empty (and, unless `emptyOnError`, the last fetch did not fail). */
  empty: JSX.Element;
  emptyOnError?: boolean;
  children: JSX.Element;
}) {
  const retry = () => {
    const refresh = props.source.refresh;
    return refresh ? () => void refresh() : undefined;
  };
  return (
    <>
      <InlineError message={props.source.error()} onRetry={retry()} />
      <Show when={!props.source.loading()} fallback={<Loading label={props.loadingLabel} />}>
        <Show
          when={props.count > 0}
          fallback={<Show when={props.emptyOnError || !props.source.error()}>{props.empty}</Show>}
        >
          {props.children}
        </Show>
      </Show>
    </>
  );
}

/** A polled list as a table (see DataTable), one row per item. */
export function PolledTable<T>(props: {
  source: ListSource & { data: () => T[] | undefined };
  loadingLabel: string;
  empty: JSX.Element;
  emptyOnError?: boolean;
  label?: string;
  labelledBy?: string;
  columns: string[];
  actions?: boolean;
  children: (item: T) => JSX.Element;
}) {
  return (
    <PolledView
      source={props.source}
      count={props.source.data()?.length ?? 0}
      loadingLabel={props.loadingLabel}
      empty={props.empty}
      emptyOnError={props.emptyOnError}
    >
      <DataTable label={props.label} labelledBy={props.labelledBy} columns={props.columns} actions={props.actions}>
        <For each={props.source.data()}>{(item) => props.children(item)}</For>
      </DataTable>
    </PolledView>
  );
}
