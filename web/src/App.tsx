// Routes: sign-in when there is no token, else the layout with one page per path.
import { createEffect, Match, on, Show, Switch } from "solid-js";
import { Layout } from "./components/Layout.js";
import { interceptLinkClicks, navigate, pathname } from "./lib/router.js";
import { Agents } from "./pages/Agents.js";
import { Cluster } from "./pages/Cluster.js";
import { DeployKeys } from "./pages/DeployKeys.js";
import { DeploymentDetail } from "./pages/DeploymentDetail.js";
import { Deployments } from "./pages/Deployments.js";
import { NotFound } from "./pages/NotFound.js";
import { SignIn } from "./pages/SignIn.js";
import { TrustPolicies } from "./pages/TrustPolicies.js";
import { Webhooks } from "./pages/Webhooks.js";
import { signedIn } from "./state/session.js";
import { syncThemeAttribute } from "./state/theme.js";

const detailId = () => /^\/deployments\/([^/]+)\/?$/.exec(pathname())?.[1];

export function App() {
  syncThemeAttribute();
  document.addEventListener("click", interceptLinkClicks);

  // After client-side navigation, move focus to the new page's heading (screen readers announce
  // it; keyboard users start from the top), but not on the first load.
  createEffect(
    on(
      pathname,
      () => {
        queueMicrotask(() => document.querySelector<HTMLElement>("main h1")?.focus({ preventScroll: true }));
      },
      { defer: true },
    ),
  );

  createEffect(() => {
    if (signedIn() && pathname() === "/") navigate("/deployments", { replace: true });
  });

  return (
    <Show when={signedIn()} fallback={<SignIn />}>
      <Layout>
        <Switch fallback={<NotFound />}>
          <Match when={pathname() === "/deployments" || pathname() === "/deployments/"}>
            <Deployments />
          </Match>
          <Match when={detailId()} keyed>
            {(id) => <DeploymentDetail id={decodeURIComponent(id)} />}
          </Match>
          <Match when={pathname().startsWith("/agents")}>
            <Agents />
          </Match>
          <Match when={pathname().startsWith("/keys")}>
            <DeployKeys />
          </Match>
          <Match when={pathname().startsWith("/trust")}>
            <TrustPolicies />
          </Match>
          <Match when={pathname().startsWith("/cluster")}>
            <Cluster />
          </Match>
          <Match when={pathname().startsWith("/webhooks")}>
            <Webhooks />
          </Match>
        </Switch>
      </Layout>
    </Show>
  );
}
