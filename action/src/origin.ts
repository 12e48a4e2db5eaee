// Where a deployment comes from, for the orchestrator's audit trail, read from the runner's GITHUB_* variables.
import { MAX_ORIGIN_FIELD_LENGTH } from "@k8sdeploy/proto/contract/limits.js";
import type { Origin } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";

function field(value: string | undefined): string {
  return (value ?? "").trim().slice(0, MAX_ORIGIN_FIELD_LENGTH);
}

/**
 * URL of the workflow run: `${GITHUB_SERVER_URL}/${GITHUB_REPOSITORY}/actions/runs/${GITHUB_RUN_ID}`, plus
 * `/attempts/N` when the attempt is known. Empty when the repository or run id is missing.
 */
export function runUrl(env: NodeJS.ProcessEnv = process.env): string {
  const repository = field(env.GITHUB_REPOSITORY);
  const runId = field(env.GITHUB_RUN_ID);
  if (repository === "" || runId === "") return "";
  const server = (field(env.GITHUB_SERVER_URL) || "https://github.com").replace(/\/+$/, "");
  const attempt = field(env.GITHUB_RUN_ATTEMPT);
  const url = `${server}/${repository}/actions/runs/${runId}${attempt !== "" ? `/attempts/${attempt}` : ""}`;
  return url.slice(0, MAX_ORIGIN_FIELD_LENGTH);
}

/** The origin of this run; every field is "" when its variable is unset (e.g. outside GitHub). */
export function originFromEnv(env: NodeJS.ProcessEnv = process.env): Origin {
  return {
    repository: field(env.GITHUB_REPOSITORY),
    sha: field(env.GITHUB_SHA),
    ref: field(env.GITHUB_REF),
    actor: field(env.GITHUB_ACTOR),
    runUrl: runUrl(env),
    workflow: field(env.GITHUB_WORKFLOW),
  };
}
