// A list of values as tags (namespaces, workloads, conditions), or what an empty list means.
import { For, Show } from "solid-js";

export function ScopeTags(props: { values: string[]; any?: string; anyClass?: string }) {
  return (
    <Show when={props.values.length > 0} fallback={<span class={props.anyClass ?? "muted"}>{props.any ?? "Any"}</span>}>
      <span class="tags">
        <For each={props.values}>{(v) => <code class="tag">{v}</code>}</For>
      </span>
    </Show>
  );
}

/** The Namespaces and Workloads cells of a row whose access is limited to some (or any). */
export function ScopeCells(props: { namespaces: string[]; workloads: string[] }) {
  return (
    <>
      <td data-label="Namespaces">
        <ScopeTags values={props.namespaces} />
      </td>
      <td data-label="Workloads">
        <ScopeTags values={props.workloads} />
      </td>
    </>
  );
}
