// The orchestrator's gRPC URL used in copy-paste snippets, editable (the browser only knows the
// HTTP address it was served from).
import { createUniqueId } from "solid-js";
import { defaultGrpcUrl, grpcUrl, setGrpcUrl } from "../state/server-url.js";

export function ServerUrlField() {
  const id = createUniqueId();
  return (
    <div class="field">
      <label for={id}>Orchestrator gRPC URL (as the cluster reaches it)</label>
      <input
        id={id}
        type="url"
        value={grpcUrl()}
        placeholder={defaultGrpcUrl()}
        spellcheck={false}
        onInput={(e) => setGrpcUrl(e.currentTarget.value)}
        aria-describedby={`${id}-hint`}
      />
      <p id={`${id}-hint`} class="hint">
        <code>https://host:port</code> when the orchestrator has TLS, <code>http://host:port</code> on private networks.
        The snippet below updates as you type.
      </p>
    </div>
  );
}
