// Status badges: always an icon and a word, colour only reinforces them.
import type { ConnectionState } from "@k8sdeploy/proto/es/k8sdeploy/v1/admin_pb.js";
import type { DeploymentState } from "@k8sdeploy/proto/es/k8sdeploy/v1/types_pb.js";
import { connectionInfo, stateInfo, type Tone } from "../lib/format.js";

export function Badge(props: { tone: Tone; icon: string; label: string; title?: string }) {
  return (
    <span class={`badge tone-${props.tone}`} title={props.title}>
      <span class="badge-icon" aria-hidden="true">
        {props.icon}
      </span>
      {props.label}
    </span>
  );
}

export function StateBadge(props: { state: DeploymentState }) {
  const info = () => stateInfo(props.state);
  return (
    <span class={`badge tone-${info().tone}`} data-state={info().slug}>
      <span class="badge-icon" aria-hidden="true">
        {info().icon}
      </span>
      {info().label}
    </span>
  );
}

export function ConnectionBadge(props: { state: ConnectionState; revoked: boolean }) {
  const info = () => connectionInfo(props.state, props.revoked);
  return <Badge tone={info().tone} icon={info().icon} label={info().label} />;
}
