// A modal confirmation built on <dialog>: focus is trapped and Escape cancels natively.
import { createEffect, createUniqueId, type JSX, Show } from "solid-js";

export interface ConfirmDialogProps {
  open: boolean;
  title: string;
  confirmLabel: string;
  danger?: boolean;
  busy?: boolean;
  error?: string;
  onConfirm: () => void;
  onCancel: () => void;
  children?: JSX.Element;
}

export function ConfirmDialog(props: ConfirmDialogProps) {
  let dialog: HTMLDialogElement | undefined;
  const titleId = `dialog-title-${createUniqueId()}`;
  createEffect(() => {
    if (!dialog) return;
    if (props.open && !dialog.open) dialog.showModal();
    if (!props.open && dialog.open) dialog.close();
  });
  return (
    <dialog
      ref={dialog}
      class="dialog"
      aria-labelledby={titleId}
      onCancel={(e) => {
        e.preventDefault();
        if (!props.busy) props.onCancel();
      }}
    >
      <form
        method="dialog"
        onSubmit={(e) => {
          e.preventDefault();
          props.onConfirm();
        }}
      >
        <h2 id={titleId}>{props.title}</h2>
        <div class="dialog-body">{props.children}</div>
        <Show when={props.error}>
          <p class="inline-error" role="alert">
            {props.error}
          </p>
        </Show>
        <div class="dialog-actions">
          <button type="button" class="btn" onClick={() => props.onCancel()} disabled={props.busy}>
            Cancel
          </button>
          <button type="submit" class={props.danger ? "btn btn-danger" : "btn btn-primary"} disabled={props.busy}>
            {props.busy ? "Working…" : props.confirmLabel}
          </button>
        </div>
      </form>
    </dialog>
  );
}
