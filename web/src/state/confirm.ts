// A confirm-then-act dialog's state: what it is about (open while set), and the action it runs
// on confirm (pending, last error). `dialog` spreads onto <ConfirmDialog>.
import { createSignal } from "solid-js";
import { createAction } from "./action.js";

export function createConfirm<T>(work: (target: T) => Promise<void>) {
  const [target, setTarget] = createSignal<T>();
  const action = createAction();
  const close = () => setTarget(undefined);
  const confirm = async () => {
    const t = target();
    if (t === undefined) return;
    await action.run(() => work(t));
  };
  return {
    target,
    /** Opens the dialog about `t`, without the previous attempt's error. */
    ask: (t: T) => {
      action.setError("");
      setTarget(() => t);
    },
    close,
    dialog: {
      get open() {
        return target() !== undefined;
      },
      get busy() {
        return action.pending();
      },
      get error() {
        return action.error();
      },
      onConfirm: () => void confirm(),
      onCancel: close,
    },
  };
}
