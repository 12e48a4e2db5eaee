// A labelled text input bound to a value, with an optional hint below it (described-by).
import type { JSX } from "solid-js";
import { Show } from "solid-js";

export function TextField(props: {
  id: string;
  label: string;
  value: string;
  onInput: (value: string) => void;
  placeholder?: string;
  type?: string;
  required?: boolean;
  maxlength?: string;
  invalid?: boolean;
  /** The field's class ("field" unless told, e.g. "field grow"). */
  class?: string;
  /** A hint rendered below the input as `${id}-hint`. */
  hint?: JSX.Element;
  /** The id of a hint elsewhere (one shared by several fields). */
  describedBy?: string;
}) {
  const hintId = () => `${props.id}-hint`;
  return (
    <div class={props.class ?? "field"}>
      <label for={props.id}>{props.label}</label>
      <input
        id={props.id}
        type={props.type}
        required={props.required}
        maxlength={props.maxlength}
        placeholder={props.placeholder}
        value={props.value}
        onInput={(e) => props.onInput(e.currentTarget.value)}
        aria-describedby={props.describedBy ?? (props.hint ? hintId() : undefined)}
        aria-invalid={props.invalid}
      />
      <Show when={props.hint}>
        <p id={hintId()} class="hint">
          {props.hint}
        </p>
      </Show>
    </div>
  );
}
