// The orchestrator's gRPC URL used in copy-paste snippets: the configured K8SDEPLOY_PUBLIC_URL,
// editable for this page view; without one, an empty field that says how to configure it.
import { createUniqueId, Show } from "solid-js";
import { configuredGrpcUrl, grpcUrl, setGrpcUrl } from "../state/server-url.js";

export function ServerUrlField() {
  const id = createUniqueId();
  return (
    <div class="field">
      <label for={id}>Orchestrator gRPC URL (as the cluster and GitHub reach it)</label>
      <input
        id={id}
        type="url"
        value={grpcUrl()}
        placeholder="https://deploy.example.com:443"
        spellcheck={false}
        onInput={(e) => setGrpcUrl(e.currentTarget.value)}
        aria-describedby={`${id}-hint`}
        data-testid="grpc-url"
      />
      <Show
        when={configuredGrpcUrl()}
        fallback={
          <p id={`${id}-hint`} class="hint" data-testid="public-url-missing">
            The orchestrator has no <code>K8SDEPLOY_PUBLIC_URL</code>: set it to its gRPC URL (
            <code>https://host:port</code> with TLS, <code>http://host:port</code> on private networks) so that every
            snippet names it, or type it here. The snippet below updates as you type.
          </p>
        }
      >
        <p id={`${id}-hint`} class="hint">
          From the orchestrator's <code>K8SDEPLOY_PUBLIC_URL</code>. The snippet below updates if you change it here.
        </p>
      </Show>
    </div>
  );
}
