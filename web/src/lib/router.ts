// A minimal client-side router: the location as a signal, pushState navigation, query-string
// helpers for URL-synced filters, and delegated handling of same-origin <a href="/…"> clicks.
import { createSignal } from "solid-js";

interface Place {
  path: string;
  search: string;
}

const current = (): Place => ({ path: location.pathname, search: location.search });
const [place, setPlace] = createSignal<Place>(current());

window.addEventListener("popstate", () => setPlace(current()));

export const pathname = (): string => place().path;
export const search = (): URLSearchParams => new URLSearchParams(place().search);

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  const url = new URL(to, location.origin);
  const target = url.pathname + url.search + url.hash;
  if (target === location.pathname + location.search + location.hash) return;
  if (options.replace) history.replaceState(null, "", target);
  else history.pushState(null, "", target);
  setPlace(current());
  if (!options.replace) window.scrollTo(0, 0);
}

/** Changes query parameters of the current page (replacing history: filters are not steps). */
export function setSearchParams(updates: Record<string, string | undefined>): void {
  const params = new URLSearchParams(location.search);
  for (const [name, value] of Object.entries(updates)) {
    if (value === undefined || value === "") params.delete(name);
    else params.set(name, value);
  }
  const query = params.toString();
  navigate(`${location.pathname}${query ? `?${query}` : ""}`, { replace: true });
}

/** Handles clicks on same-origin links without a full page load. */
export function interceptLinkClicks(event: MouseEvent): void {
  if (
    event.defaultPrevented ||
    event.button !== 0 ||
    event.metaKey ||
    event.ctrlKey ||
    event.shiftKey ||
    event.altKey
  ) {
    return;
  }
  const anchor = (event.target as Element | null)?.closest?.("a");
  if (!anchor || anchor.target || anchor.hasAttribute("download")) return;
  const href = anchor.getAttribute("href");
  if (!href?.startsWith("/") || href.startsWith("//")) return;
  event.preventDefault();
  navigate(href);
}
