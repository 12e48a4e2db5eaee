// A form that creates something bound to one agent (a deploy key, a trust policy, a webhook): the
// chosen agent (the only one, preselected), whether there is any to choose, and a submit that
// refuses to run without one.
import type { Agent } from "@k8sdeploy/proto/es/k8sdeploy/v1/admin_pb.js";
import { createSignal } from "solid-js";
import { createAction } from "./action.js";
import { createAgentChoice } from "./agents.js";
import type { Polled } from "./polled.js";

export function createAgentForm(agents: Polled<Agent[]>, noAgentMessage: string) {
  const [agentId, setAgentId] = createSignal("");
  const active = createAgentChoice(agents, agentId, setAgentId);
  const action = createAction();
  return {
    agentId,
    setAgentId,
    /** The agents that can be chosen. */
    active,
    /** False once it is known that there is no agent to bind to. */
    canCreate: () => agents.loading() || active().length > 0,
    action,
    /** Spreads onto <AgentSelect>. */
    select: {
      get agents() {
        return active();
      },
      get value() {
        return agentId();
      },
      onChange: setAgentId,
      required: true,
    },
    onSubmit: (work: (agentId: string) => Promise<void>) => async (e: SubmitEvent) => {
      e.preventDefault();
      const id = agentId();
      if (id === "") {
        action.setError(noAgentMessage);
        return;
      }
      await action.run(() => work(id));
    },
  };
}
