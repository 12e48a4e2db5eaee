import test from "ava";
import {
  ANNOTATION_CHANGE_CAUSE,
  ANNOTATION_DEPLOYMENT_CREATED_AT,
  ANNOTATION_DEPLOYMENT_ID,
  ANNOTATION_ORIGIN,
  ANNOTATION_PREVIOUS_IMAGES,
  changeCause,
  parsePreviousImages,
  parseRolledBack,
  rolledBackAnnotation,
} from "./annotations.js";
import { buildImagePatch, deployPatch } from "./patch.js";

const previous = [
  { container: "web", image: "ghcr.io/acme/web:1", init: false },
  { container: "migrate", image: "ghcr.io/acme/web:1", init: true },
];

test("deploy patch: images by name, annotations on workload and template, optimistic lock", (t) => {
  const body = buildImagePatch(
    deployPatch(
      {
        deploymentId: "dep_123",
        image: "ghcr.io/acme/web:2",
        origin: {
          repository: "acme/web",
          sha: "abc1234def",
          ref: "refs/heads/main",
          actor: "octo",
          runUrl: "https://x",
          workflow: "",
        },
      },
      previous,
      "dep_100",
      "42",
    ),
  );
  t.deepEqual(body, {
    metadata: {
      resourceVersion: "42",
      annotations: {
        [ANNOTATION_DEPLOYMENT_CREATED_AT]: null,
        [ANNOTATION_DEPLOYMENT_ID]: "dep_123",
        [ANNOTATION_ORIGIN]: JSON.stringify({
          repository: "acme/web",
          sha: "abc1234def",
          ref: "refs/heads/main",
          actor: "octo",
          runUrl: "https://x",
        }),
        [ANNOTATION_CHANGE_CAUSE]: "k8sdeploy dep_123: acme/web@abc1234 by octo",
        [ANNOTATION_PREVIOUS_IMAGES]: JSON.stringify(previous),
        "k8sdeploy.dev/previous-template-deployment-id": "dep_100",
        "k8sdeploy.dev/rolled-back": null,
      },
    },
    spec: {
      template: {
        metadata: { annotations: { [ANNOTATION_DEPLOYMENT_ID]: "dep_123" } },
        spec: {
          containers: [{ name: "web", image: "ghcr.io/acme/web:2" }],
          initContainers: [{ name: "migrate", image: "ghcr.io/acme/web:2" }],
        },
      },
    },
  });
});

test("plain image patch has no metadata or initContainers when not needed", (t) => {
  t.deepEqual(buildImagePatch({ images: [{ container: "agent", image: "a:2", init: false }] }), {
    spec: { template: { spec: { containers: [{ name: "agent", image: "a:2" }] } } },
  });
});

test("change-cause without origin names the image", (t) => {
  t.is(changeCause("dep_1", "nginx:1.27", undefined), "k8sdeploy dep_1: image nginx:1.27");
  t.is(
    changeCause("dep_1", "nginx", { repository: "", sha: "", ref: "", actor: "bob", runUrl: "", workflow: "" }),
    "k8sdeploy dep_1: by bob",
  );
});

test("annotation round trips and malformed values", (t) => {
  t.deepEqual(parsePreviousImages(JSON.stringify(previous)), previous);
  t.is(parsePreviousImages("not json"), undefined);
  t.is(parsePreviousImages('[{"container":1}]'), undefined);
  t.is(parsePreviousImages(undefined), undefined);
  t.deepEqual(parseRolledBack(rolledBackAnnotation("dep_1", { reason: 1, message: "m" })), {
    deploymentId: "dep_1",
    failure: { reason: 1, message: "m" },
  });
  t.is(parseRolledBack("{}"), undefined);
});
