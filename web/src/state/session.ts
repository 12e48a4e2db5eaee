// The admin token for this browser tab. Kept in sessionStorage: it survives reloads of the tab
// but not closing it, and other tabs sign in on their own.
import { createSignal } from "solid-js";

const KEY = "k8sdeploy.adminToken";

function stored(): string {
  try {
    return sessionStorage.getItem(KEY) ?? "";
  } catch {
    return "";
  }
}

const [token, setToken] = createSignal(stored());
const [signOutReason, setSignOutReason] = createSignal("");

/** The admin token, or "" when signed out. */
export { signOutReason, token };

export const signedIn = (): boolean => token() !== "";

export function signIn(value: string): void {
  try {
    sessionStorage.setItem(KEY, value);
  } catch {
    // Storage may be disabled: the session then lasts until reload.
  }
  setSignOutReason("");
  setToken(value);
}

/** Forgets the token; `reason` is shown on the sign-in page. */
export function signOut(reason = ""): void {
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    // ignore
  }
  setSignOutReason(reason);
  setToken("");
}
