// What was just created, shown once above the page (with its secret, if any): the heading takes
// focus so that screen readers announce it, and the button closes the panel.
import type { JSX } from "solid-js";
import { onMount } from "solid-js";

export function CreatedPanel(props: {
  headingId: string;
  testId: string;
  title: JSX.Element;
  notice: JSX.Element;
  doneLabel?: string;
  onDone: () => void;
  /** Extra attributes of the section (test hooks such as data-agent-id). */
  attrs?: Record<string, string>;
  children?: JSX.Element;
}) {
  let heading: HTMLHeadingElement | undefined;
  onMount(() => heading?.focus());
  return (
    <section class="card reveal" aria-labelledby={props.headingId} data-testid={props.testId} {...props.attrs}>
      <h2 id={props.headingId} ref={heading} tabindex="-1">
        {props.title}
      </h2>
      <p class="notice">{props.notice}</p>
      {props.children}
      <div class="actions">
        <button type="button" class="btn btn-primary" onClick={() => props.onDone()}>
          {props.doneLabel ?? "I have copied it"}
        </button>
      </div>
    </section>
  );
}
