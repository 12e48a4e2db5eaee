// A shared "now" that ticks every second, so relative times ("12 s ago") stay current without
// each component running its own timer.
import { createSignal, getOwner, onCleanup } from "solid-js";

const [now, setNow] = createSignal(Date.now());
let users = 0;
let timer: ReturnType<typeof setInterval> | undefined;

/** Reactive current time in ms; keeps ticking while any component that called it is mounted. */
export function useNow(): () => number {
  if (getOwner()) {
    users += 1;
    if (timer === undefined) {
      setNow(Date.now());
      timer = setInterval(() => setNow(Date.now()), 1000);
    }
    onCleanup(() => {
      users -= 1;
      if (users === 0 && timer !== undefined) {
        clearInterval(timer);
        timer = undefined;
      }
    });
  }
  return now;
}
