// The page frame: skip link, header with navigation, theme toggle and sign out, and <main>.
import { For, type JSX } from "solid-js";
import { pathname } from "../lib/router.js";
import { VERSION } from "../lib/version.js";
import { signOut } from "../state/session.js";
import { theme, toggleTheme } from "../state/theme.js";

const links = [
  { href: "/deployments", label: "Deployments", match: (p: string) => p === "/" || p.startsWith("/deployments") },
  { href: "/agents", label: "Agents", match: (p: string) => p.startsWith("/agents") },
  { href: "/keys", label: "Deploy keys", match: (p: string) => p.startsWith("/keys") },
  { href: "/trust", label: "Trust", match: (p: string) => p.startsWith("/trust") },
  { href: "/cluster", label: "Cluster", match: (p: string) => p.startsWith("/cluster") },
  { href: "/webhooks", label: "Webhooks", match: (p: string) => p.startsWith("/webhooks") },
];

export function ThemeToggle() {
  const next = () => (theme() === "dark" ? "light" : "dark");
  return (
    <button
      type="button"
      class="btn btn-ghost theme-toggle"
      onClick={toggleTheme}
      aria-label={`Switch to ${next()} theme`}
      title={`Switch to ${next()} theme`}
      data-testid="theme-toggle"
    >
      <span aria-hidden="true">{theme() === "dark" ? "☀" : "☾"}</span>
      <span class="theme-toggle-text">{theme() === "dark" ? "Light" : "Dark"}</span>
    </button>
  );
}

export function Brand() {
  return (
    <span class="brand">
      <span class="brand-mark" aria-hidden="true">
        K
      </span>
      K8sDeploy
    </span>
  );
}

export function Layout(props: { children: JSX.Element }) {
  return (
    <>
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        <a href="/deployments" class="brand-link" aria-label="K8sDeploy home">
          <Brand />
        </a>
        <nav aria-label="Main" class="nav">
          <ul>
            <For each={links}>
              {(link) => (
                <li>
                  <a href={link.href} aria-current={link.match(pathname()) ? "page" : undefined}>
                    {link.label}
                  </a>
                </li>
              )}
            </For>
          </ul>
        </nav>
        <div class="topbar-actions">
          <ThemeToggle />
          <button type="button" class="btn btn-ghost" onClick={() => signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabindex="-1">
        {props.children}
      </main>
      <footer class="footer muted small">
        <span data-testid="version">K8sDeploy v{VERSION}</span>
      </footer>
    </>
  );
}

export function PageHeader(props: { title: string; children?: JSX.Element; sub?: JSX.Element }) {
  return (
    <div class="page-header">
      <div>
        <h1 tabindex="-1">{props.title}</h1>
        {props.sub}
      </div>
      <div class="page-header-actions">{props.children}</div>
    </div>
  );
}
