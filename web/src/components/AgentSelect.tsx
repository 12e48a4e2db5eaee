// The "Agent" field of a form or browser: the agents that can be chosen, none chosen at first.
import type { Agent } from "@k8sdeploy/proto/es/k8sdeploy/v1/admin_pb.js";
import { For } from "solid-js";

export function AgentSelect(props: {
  id: string;
  agents: Agent[];
  value: string;
  onChange: (id: string) => void;
  required?: boolean;
}) {
  return (
    <div class="field">
      <label for={props.id}>Agent</label>
      <select
        id={props.id}
        value={props.value}
        onChange={(e) => props.onChange(e.currentTarget.value)}
        required={props.required}
      >
        <option value="">Choose an agent…</option>
        <For each={props.agents}>
          {(a) => (
            <option value={a.id} selected={a.id === props.value}>
              {a.name}
            </option>
          )}
        </For>
      </select>
    </div>
  );
}
