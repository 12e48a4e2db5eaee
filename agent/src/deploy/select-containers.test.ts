import { FailureReason } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import test from "ava";
import { ExecutorError } from "../executor.js";
import { listContainers, selectContainers } from "./select-containers.js";

const spec = {
  containers: [
    { name: "web", image: "ghcr.io/acme/web:1.0" },
    { name: "proxy", image: "envoyproxy/envoy:v1.30" },
    { name: "web-debug", image: "ghcr.io/acme/web:debug" },
  ],
  initContainers: [{ name: "migrate", image: "ghcr.io/acme/migrate:1.0" }],
};
const WHERE = 'deployment "web" in namespace "default"';

test("named containers, init included, in workload order", (t) => {
  t.deepEqual(selectContainers(spec, ["migrate", "web", "web"], "ghcr.io/acme/web:2.0", WHERE), [
    { container: "web", image: "ghcr.io/acme/web:1.0", init: false },
    { container: "migrate", image: "ghcr.io/acme/migrate:1.0", init: true },
  ]);
});

test("named container may get an image from another repository", (t) => {
  t.deepEqual(selectContainers(spec, ["proxy"], "ghcr.io/acme/envoy:1", WHERE), [
    { container: "proxy", image: "envoyproxy/envoy:v1.30", init: false },
  ]);
});

test("missing named container: CONTAINER_NOT_FOUND naming it and listing the others", (t) => {
  const err = t.throws(() => selectContainers(spec, ["web", "nope"], "ghcr.io/acme/web:2.0", WHERE), {
    instanceOf: ExecutorError,
  });
  t.is(err?.reason, FailureReason.FAILURE_REASON_CONTAINER_NOT_FOUND);
  t.is(
    err?.message,
    'container "nope" not found in deployment "web" in namespace "default"; it has: web (ghcr.io/acme/web:1.0), proxy (envoyproxy/envoy:v1.30), web-debug (ghcr.io/acme/web:debug), init container migrate (ghcr.io/acme/migrate:1.0)',
  );
});

test("by repository: every matching container, normalization applied", (t) => {
  t.deepEqual(
    selectContainers(spec, [], `ghcr.io/acme/web@sha256:${"c".repeat(64)}`, WHERE).map((c) => c.container),
    ["web", "web-debug"],
  );
  t.deepEqual(
    selectContainers(spec, [], "docker.io/envoyproxy/envoy:v1.31", WHERE).map((c) => c.container),
    ["proxy"],
  );
  t.deepEqual(
    selectContainers(spec, [], "ghcr.io/acme/migrate:2", WHERE).map((c) => c.container),
    ["migrate"],
  );
  t.deepEqual(
    selectContainers({ containers: [{ name: "n", image: "nginx" }] }, [], "docker.io/library/nginx:1.27", WHERE),
    [{ container: "n", image: "nginx", init: false }],
  );
});

test("by repository: no match lists containers and images", (t) => {
  const err = t.throws(() => selectContainers(spec, [], "redis:7", WHERE), { instanceOf: ExecutorError });
  t.is(err?.reason, FailureReason.FAILURE_REASON_CONTAINER_NOT_FOUND);
  t.regex(
    err?.message ?? "",
    /^no container of deployment "web" in namespace "default" runs an image of repository docker\.io\/library\/redis; it has: web \(ghcr\.io\/acme\/web:1\.0\), proxy/,
  );
  t.regex(err?.message ?? "", /init container migrate \(ghcr\.io\/acme\/migrate:1\.0\)/);
});

test("unparseable current images never match", (t) => {
  t.throws(() => selectContainers({ containers: [{ name: "x", image: "NOT VALID" }] }, [], "nginx", WHERE), {
    instanceOf: ExecutorError,
  });
});

test("listContainers", (t) => {
  t.is(listContainers([]), "no containers");
  t.is(listContainers([{ container: "a", image: "", init: false }]), "a (no image)");
});
