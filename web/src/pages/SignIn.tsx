// Sign in with the admin token. The token is checked with a real call before it is kept.

import { Code } from "@connectrpc/connect";
import { createSignal, onMount, Show } from "solid-js";
import { admin } from "../api/clients.js";
import { errorMessage, isCode } from "../api/errors.js";
import { Brand, ThemeToggle } from "../components/Layout.js";
import { markFirstContent } from "../lib/perf.js";
import { signIn, signOutReason } from "../state/session.js";

export function SignIn() {
  const [value, setValue] = createSignal("");
  const [error, setError] = createSignal("");
  const [busy, setBusy] = createSignal(false);
  let input: HTMLInputElement | undefined;
  onMount(() => {
    document.title = "Sign in · K8sDeploy";
    input?.focus();
    markFirstContent();
  });

  const submit = async (e: SubmitEvent) => {
    e.preventDefault();
    const candidate = value().trim();
    if (candidate === "") {
      setError("Enter the admin token.");
      input?.focus();
      return;
    }
    setBusy(true);
    setError("");
    try {
      await admin.listAgents({}, { headers: { authorization: `Bearer ${candidate}` } });
      signIn(candidate);
    } catch (err) {
      setError(
        isCode(err, Code.Unauthenticated)
          ? "The orchestrator did not accept this token. Check for missing characters or extra spaces."
          : errorMessage(err),
      );
      input?.select();
    } finally {
      setBusy(false);
    }
  };

  return (
    <main id="main" class="signin">
      <div class="signin-top">
        <ThemeToggle />
      </div>
      <form class="card signin-card" onSubmit={submit} novalidate>
        <h1>
          <Brand />
        </h1>
        <p class="muted">Sign in with the orchestrator's admin token.</p>
        <Show when={signOutReason()}>
          <p class="notice" role="status">
            {signOutReason()}
          </p>
        </Show>
        <label for="admin-token">Admin token</label>
        <input
          id="admin-token"
          ref={input}
          type="password"
          name="token"
          autocomplete="current-password"
          spellcheck={false}
          value={value()}
          onInput={(e) => setValue(e.currentTarget.value)}
          aria-invalid={error() !== ""}
          aria-describedby="admin-token-help admin-token-error"
        />
        <p id="admin-token-help" class="hint">
          It is <code>K8SDEPLOY_ADMIN_TOKEN</code>, or the <code>admin-token</code> file in the orchestrator's data
          directory when that variable is unset. It stays in this browser tab only.
        </p>
        <div id="admin-token-error">
          <Show when={error()}>
            <p class="inline-error" role="alert">
              {error()}
            </p>
          </Show>
        </div>
        <button type="submit" class="btn btn-primary btn-block" disabled={busy()}>
          {busy() ? "Checking…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
