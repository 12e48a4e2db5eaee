// Performance marks for measuring time to first render: `k8sdeploy:app-rendered` once the app
// shell is in the DOM, `k8sdeploy:first-content` once the first page shows its data (or the
// sign-in form). Read them with performance.getEntriesByName(); times are from navigation start.
import { createEffect } from "solid-js";

let contentMarked = false;

export function markAppRendered(): void {
  performance.mark("k8sdeploy:app-rendered");
}

export function markFirstContent(): void {
  if (contentMarked) return;
  contentMarked = true;
  // After the browser has laid out the new content.
  requestAnimationFrame(() => performance.mark("k8sdeploy:first-content"));
}

/** Marks first content once `ready` (the page's data has arrived, or failed to). */
export function markFirstContentWhen(ready: () => unknown): void {
  createEffect(() => {
    if (ready()) markFirstContent();
  });
}
