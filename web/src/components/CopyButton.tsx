// Copies text to the clipboard, with a fallback for pages served over plain http (where
// navigator.clipboard is missing) and a visible, announced confirmation.
import { createSignal, onCleanup } from "solid-js";

async function copyText(text: string): Promise<boolean> {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // fall through to the legacy path
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

export function CopyButton(props: { text: string; label?: string }) {
  const [state, setState] = createSignal<"idle" | "copied" | "failed">("idle");
  let timer: ReturnType<typeof setTimeout> | undefined;
  onCleanup(() => clearTimeout(timer));
  const copy = async () => {
    setState((await copyText(props.text)) ? "copied" : "failed");
    clearTimeout(timer);
    timer = setTimeout(() => setState("idle"), 2000);
  };
  return (
    <button type="button" class="btn btn-small" onClick={copy} aria-live="polite">
      {state() === "copied" ? "Copied ✓" : state() === "failed" ? "Select and copy" : (props.label ?? "Copy")}
    </button>
  );
}

/** A block of text (a command, a secret) with a copy button. */
export function CopyBlock(props: { text: string; label: string; testId?: string; secret?: boolean }) {
  return (
    <div class="copy-block">
      <div class="copy-block-head">
        <span class="copy-block-label">{props.label}</span>
        <CopyButton text={props.text} />
      </div>
      <pre class={props.secret ? "secret" : undefined} tabindex="0">
        <code data-testid={props.testId}>{props.text}</code>
      </pre>
    </div>
  );
}
