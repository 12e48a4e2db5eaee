// Shows whether the live feed is connected, and when it retries.
import { Match, Switch } from "solid-js";
import { useNow } from "../state/clock.js";
import type { FollowStatus } from "../state/follow-deployments.js";

export function LiveIndicator(props: { status: FollowStatus }) {
  const now = useNow();
  return (
    <span class="live" data-live={props.status.kind}>
      <Switch>
        <Match when={props.status.kind === "live"}>
          <span class="live-dot" aria-hidden="true" />
          Live
        </Match>
        <Match when={props.status.kind === "connecting"}>
          <span class="live-dot" aria-hidden="true" />
          Connecting…
        </Match>
        <Match when={props.status.kind === "reconnecting" && props.status}>
          {(s) => {
            const st = s() as Extract<FollowStatus, { kind: "reconnecting" }>;
            const secs = () => Math.max(0, Math.ceil((st.retryAt - now()) / 1000));
            return (
              <span title={st.error}>
                <span class="live-dot" aria-hidden="true" />
                Disconnected — retrying{secs() > 0 ? ` in ${secs()} s` : "…"}
              </span>
            );
          }}
        </Match>
        <Match when={props.status.kind === "stopped"}>
          <span class="live-dot" aria-hidden="true" />
          Not live
        </Match>
      </Switch>
    </span>
  );
}
