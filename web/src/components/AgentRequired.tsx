// What needs an agent (a deploy key, a trust policy, a webhook) shows how to get one until there is one.
import type { JSX } from "solid-js";
import { Show } from "solid-js";
import { EmptyState } from "./Feedback.js";

export function AgentRequired(props: { when: boolean; why: JSX.Element; children: JSX.Element }) {
  return (
    <Show
      when={props.when}
      fallback={
        <EmptyState title="Register an agent first">
          <p>{props.why}</p>
        </EmptyState>
      }
    >
      {props.children}
    </Show>
  );
}
