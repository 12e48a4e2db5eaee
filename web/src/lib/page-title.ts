// The browser tab's title for a page, set once it mounts.
import { onMount } from "solid-js";

export function pageTitle(title: string): void {
  onMount(() => {
    document.title = `${title} · K8sDeploy`;
  });
}
