// Loading, empty and error states.
import { type JSX, Show } from "solid-js";

export function Loading(props: { label: string }) {
  return (
    <p class="loading" role="status">
      <span class="spinner" aria-hidden="true" />
      {props.label}
    </p>
  );
}

export function EmptyState(props: { title: string; children?: JSX.Element }) {
  return (
    <div class="empty">
      <p class="empty-title">{props.title}</p>
      <Show when={props.children}>
        <div class="empty-body">{props.children}</div>
      </Show>
    </div>
  );
}

export function InlineError(props: { message: string; onRetry?: () => void; retryLabel?: string }) {
  return (
    <Show when={props.message}>
      <div class="inline-error" role="alert">
        <span class="inline-error-icon" aria-hidden="true">
          !
        </span>
        <span class="inline-error-text">{props.message}</span>
        <Show when={props.onRetry}>
          <button type="button" class="btn btn-small" onClick={() => props.onRetry?.()}>
            {props.retryLabel ?? "Try again"}
          </button>
        </Show>
      </div>
    </Show>
  );
}
