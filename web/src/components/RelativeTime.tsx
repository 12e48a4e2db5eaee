// A <time> showing "5 min ago" that stays current, with the exact time on hover.
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { Show } from "solid-js";
import { absoluteTime, relativeTime, toDate } from "../lib/format.js";
import { useNow } from "../state/clock.js";

export function RelativeTime(props: { value: Timestamp | undefined; fallback?: string }) {
  const now = useNow();
  const date = () => toDate(props.value);
  return (
    <Show when={date()} fallback={<span class="muted">{props.fallback ?? "—"}</span>}>
      {(d) => (
        <time datetime={d().toISOString()} title={absoluteTime(d())}>
          {relativeTime(d(), now())}
        </time>
      )}
    </Show>
  );
}
