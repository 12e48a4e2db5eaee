// The "Allowed namespaces" and "Allowed workloads" inputs of a form that limits access (empty: any).
import { TextField } from "./TextField.js";

export function ScopeFields(props: {
  /** The inputs' ids are `${idPrefix}-namespaces` and `${idPrefix}-workloads`. */
  idPrefix: string;
  namespaces: string;
  onNamespaces: (value: string) => void;
  workloads: string;
  onWorkloads: (value: string) => void;
  describedBy?: string;
}) {
  return (
    <>
      <TextField
        id={`${props.idPrefix}-namespaces`}
        label="Allowed namespaces"
        placeholder="Any namespace"
        value={props.namespaces}
        onInput={props.onNamespaces}
        describedBy={props.describedBy}
      />
      <TextField
        id={`${props.idPrefix}-workloads`}
        label="Allowed workloads"
        placeholder="Any workload"
        value={props.workloads}
        onInput={props.onWorkloads}
        describedBy={props.describedBy}
      />
    </>
  );
}
