import type { DeployCommand } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import { WorkloadKind } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import test from "ava";
import { validateDeployCommand } from "./validate.js";

const ok: DeployCommand = {
  deploymentId: "dep_01HXYZ",
  namespace: "default",
  kind: WorkloadKind.WORKLOAD_KIND_DEPLOYMENT,
  workload: "web",
  containers: [],
  image: "ghcr.io/acme/web:1.2.3",
  timeoutSeconds: 0,
  rollbackOnFailure: false,
  pinDigest: false,
  origin: undefined,
};

test("a valid command", (t) => {
  t.is(validateDeployCommand(ok), undefined);
  t.is(validateDeployCommand({ ...ok, containers: ["web", "migrate"], timeoutSeconds: 3600 }), undefined);
});

test("every problem is reported", (t) => {
  const msg = validateDeployCommand({
    ...ok,
    deploymentId: "",
    namespace: "Default",
    workload: "web_1",
    kind: WorkloadKind.WORKLOAD_KIND_UNSPECIFIED,
    image: "Nginx",
    containers: ["Web"],
    timeoutSeconds: 3601,
  });
  t.truthy(msg);
  for (const part of [
    /deployment id "" must be/,
    /namespace "Default": must be a lowercase RFC 1123 label/,
    /workload "web_1": must be a lowercase RFC 1123 subdomain/,
    /workload kind 0 is not supported/,
    /invalid image reference "Nginx"/,
    /container "Web": must be/,
    /timeout_seconds 3601 is above the maximum of 3600/,
  ]) {
    t.regex(msg ?? "", part);
  }
});

test("too many containers", (t) => {
  t.regex(
    validateDeployCommand({ ...ok, containers: Array.from({ length: 33 }, (_, i) => `c${i}`) }) ?? "",
    /33 containers named; at most 32/,
  );
});
