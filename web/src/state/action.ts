// One user action at a time (a form submit, a confirm dialog): whether it is running and the
// message of its last failure, shown where it happened.
import { createSignal } from "solid-js";
import { errorMessage } from "../api/errors.js";

export function createAction() {
  const [pending, setPending] = createSignal(false);
  const [error, setError] = createSignal("");
  const run = async (work: () => Promise<void>): Promise<void> => {
    setPending(true);
    setError("");
    try {
      await work();
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setPending(false);
    }
  };
  return { pending, error, setError, run };
}
