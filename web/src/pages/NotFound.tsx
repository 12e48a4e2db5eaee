import { EmptyState } from "../components/Feedback.js";
import { PageHeader } from "../components/Layout.js";
import { pageTitle } from "../lib/page-title.js";

export function NotFound() {
  pageTitle("Not found");
  return (
    <>
      <PageHeader title="Page not found" />
      <EmptyState title="There is nothing at this address.">
        <p>
          Go to <a href="/deployments">Deployments</a>, <a href="/agents">Agents</a> or <a href="/keys">Deploy keys</a>.
        </p>
      </EmptyState>
    </>
  );
}
