// The dashboard's responsive table: headers as column names (an unnamed last column holds the row's
// buttons), rows given as children; and the cell that holds those buttons on one line.
import type { JSX } from "solid-js";
import { For, Show } from "solid-js";
import { Badge } from "./Badge.js";

export function DataTable(props: {
  columns: string[];
  /** Adds a last column, named only for screen readers, for the row's buttons. */
  actions?: boolean;
  label?: string;
  labelledBy?: string;
  /** Extra classes of the table. */
  class?: string;
  children: JSX.Element;
}) {
  return (
    <div class="table-wrap">
      <table
        class={props.class ? `table responsive ${props.class}` : "table responsive"}
        aria-label={props.label}
        aria-labelledby={props.labelledBy}
      >
        <thead>
          <tr>
            <For each={props.columns}>{(c) => <th scope="col">{c}</th>}</For>
            <Show when={props.actions}>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </Show>
          </tr>
        </thead>
        <tbody>{props.children}</tbody>
      </table>
    </div>
  );
}

export function RowActions(props: { children: JSX.Element }) {
  return (
    <td class="row-actions">
      <div class="row-actions-inner">{props.children}</div>
    </td>
  );
}

/** A row's small button (e.g. "Delete" with class "btn-danger-outline"). */
export function RowButton(props: { class?: string; onClick: () => void; children: JSX.Element }) {
  return (
    <button
      type="button"
      class={props.class ? `btn btn-small ${props.class}` : "btn btn-small"}
      onClick={() => props.onClick()}
    >
      {props.children}
    </button>
  );
}

/**
 * The row's delete (or revoke) button, asking first; once the row is `removed` (listed with the
 * deleted ones), a badge that says so instead.
 */
export function RemoveAction(props: { label: string; removed?: boolean; removedLabel?: string; onClick: () => void }) {
  return (
    <RowActions>
      <Show when={!props.removed} fallback={<Badge tone="neutral" icon="⊘" label={props.removedLabel ?? ""} />}>
        <RowButton class="btn-danger-outline" onClick={props.onClick}>
          {props.label}
        </RowButton>
      </Show>
    </RowActions>
  );
}
