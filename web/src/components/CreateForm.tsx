// A card form that creates something: heading, what it does, the fields, the last error and the
// submit button (disabled while the request runs).
import type { JSX } from "solid-js";
import { InlineError } from "./Feedback.js";

export function SubmitButton(props: { pending: boolean; label: string; pendingLabel: string }) {
  return (
    <button type="submit" class="btn btn-primary" disabled={props.pending}>
      {props.pending ? props.pendingLabel : props.label}
    </button>
  );
}

export function CreateForm(props: {
  headingId: string;
  title: string;
  intro: JSX.Element;
  action: { pending: () => boolean; error: () => string };
  submitLabel: string;
  pendingLabel: string;
  onSubmit: (e: SubmitEvent) => void;
  children: JSX.Element;
}) {
  return (
    <form class="card" onSubmit={(e) => props.onSubmit(e)} aria-labelledby={props.headingId}>
      <h2 id={props.headingId}>{props.title}</h2>
      <p class="muted">{props.intro}</p>
      {props.children}
      <InlineError message={props.action.error()} />
      <div class="actions">
        <SubmitButton pending={props.action.pending()} label={props.submitLabel} pendingLabel={props.pendingLabel} />
      </div>
    </form>
  );
}
