// Light/dark theme: follows the system (prefers-color-scheme) until the user picks one with the
// toggle; the pick is kept in localStorage. The effective theme is `data-theme` on <html>
// (index.html sets it before the first paint, this keeps it in sync afterwards).
import { createEffect, createSignal } from "solid-js";

export type Theme = "light" | "dark";

const KEY = "k8sdeploy.theme";
const media = typeof matchMedia === "function" ? matchMedia("(prefers-color-scheme: dark)") : undefined;

function savedTheme(): Theme | undefined {
  try {
    const value = localStorage.getItem(KEY);
    return value === "light" || value === "dark" ? value : undefined;
  } catch {
    return undefined;
  }
}

const [saved, setSaved] = createSignal<Theme | undefined>(savedTheme());
const [systemDark, setSystemDark] = createSignal(media?.matches ?? false);
media?.addEventListener("change", (e) => setSystemDark(e.matches));

export const theme = (): Theme => saved() ?? (systemDark() ? "dark" : "light");

export function setTheme(value: Theme): void {
  try {
    localStorage.setItem(KEY, value);
  } catch {
    // ignore: the choice then lasts for this page only
  }
  setSaved(value);
}

export function toggleTheme(): void {
  setTheme(theme() === "dark" ? "light" : "dark");
}

/** Call once inside the app's root: mirrors the theme onto <html data-theme>. */
export function syncThemeAttribute(): void {
  createEffect(() => {
    document.documentElement.dataset.theme = theme();
  });
}
