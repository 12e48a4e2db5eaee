import * as core from "@actions/core";
import { type Deployment, DeploymentState, FailureReason } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import test from "ava";
import { progressLine } from "./main.js";
import { addReport, escapeHtml, formatDuration, type Report } from "./summary.js";

const created = new Date("2026-11-26T12:00:00Z");
const deployment = {
  id: "dep_1",
  state: DeploymentState.DEPLOYMENT_STATE_FAILED,
  message: "Rollout failed",
  failure: { reason: FailureReason.FAILURE_REASON_IMAGE_PULL, message: 'container "web": <ImagePullBackOff>' },
  createdAt: created,
  previousImages: [{ container: "web", image: "web:1.2.2", init: false }],
} as Deployment;

const report: Report = {
  namespace: "shop",
  kindName: "Deployment",
  workload: "web",
  image: "web:1.2.3",
  containers: ["web"],
  deployment,
  events: [
    { seq: 1, time: created, state: DeploymentState.DEPLOYMENT_STATE_QUEUED, message: "Queued" },
    {
      seq: 2,
      time: new Date(created.getTime() + 83_000),
      state: DeploymentState.DEPLOYMENT_STATE_FAILED,
      message: "Rollout failed",
      failure: deployment.failure,
    },
  ],
  status: "failed",
  message: "IMAGE_PULL: x",
  waited: true,
  origin: {
    repository: "acme/shop",
    sha: "abc",
    ref: "refs/heads/main",
    actor: "o<c>t",
    runUrl: "https://x/y",
    workflow: "CI",
  },
  startedAt: 0,
  finishedAt: 1000,
};

test("the summary has the deployment table and the timeline, HTML-escaped", (t) => {
  const html = addReport(core.summary.emptyBuffer(), report).stringify();
  core.summary.emptyBuffer();
  t.true(html.startsWith("<h3>❌ K8sDeploy: Deployment shop/web → web:1.2.3</h3>"));
  t.true(html.includes("<tr><td>Deployment</td><td><code>dep_1</code></td></tr>"));
  t.true(html.includes("<tr><td>Containers</td><td><code>web</code></td></tr>"));
  t.true(html.includes("<tr><td>Duration</td><td>1m 23s</td></tr>"));
  t.true(html.includes("<td><code>IMAGE_PULL</code>: container &quot;web&quot;: &lt;ImagePullBackOff&gt;</td>"));
  t.true(html.includes("web: <code>web:1.2.2</code>"));
  t.true(html.includes("by o&lt;c&gt;t"));
  t.true(html.includes('<a href="https://x/y">run</a>'));
  t.true(html.includes("<td>2</td><td>12:01:23</td><td>failed</td>"));
  t.false(html.includes("<ImagePullBackOff>"));
  t.notRegex(html, /<td><\/tr>/);
});

test("progress lines", (t) => {
  t.is(
    progressLine({
      seq: 3,
      time: new Date("2026-11-26T12:00:01Z"),
      state: DeploymentState.DEPLOYMENT_STATE_IN_PROGRESS,
      message: "2 of 3 replicas updated",
    }),
    "[12:00:01] in_progress: 2 of 3 replicas updated",
  );
  t.is(
    progressLine({
      seq: 3,
      time: new Date("2026-11-26T12:00:01Z"),
      state: DeploymentState.DEPLOYMENT_STATE_IN_PROGRESS,
      message: "",
      replicas: { desired: 3, updated: 1, ready: 1, available: 0 },
    }),
    "[12:00:01] in_progress: 1/3 updated, 1 ready, 0 available",
  );
});

test("helpers", (t) => {
  t.is(escapeHtml(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  t.is(formatDuration(42_400), "42s");
  t.is(formatDuration(3_725_000), "1h 02m");
});
