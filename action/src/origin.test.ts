import test from "ava";
import { originFromEnv, runUrl } from "./origin.js";

const env = {
  GITHUB_REPOSITORY: "acme/shop",
  GITHUB_SHA: "0123456789abcdef0123456789abcdef01234567",
  GITHUB_REF: "refs/tags/v1.2.3",
  GITHUB_ACTOR: "octocat",
  GITHUB_SERVER_URL: "https://github.com",
  GITHUB_RUN_ID: "987654321",
  GITHUB_RUN_ATTEMPT: "3",
  GITHUB_WORKFLOW: "Release",
};

test("origin fields come from the runner's variables", (t) => {
  t.deepEqual(originFromEnv(env), {
    repository: "acme/shop",
    sha: "0123456789abcdef0123456789abcdef01234567",
    ref: "refs/tags/v1.2.3",
    actor: "octocat",
    runUrl: "https://github.com/acme/shop/actions/runs/987654321/attempts/3",
    workflow: "Release",
  });
});

test("run URL: GitHub Enterprise server, no attempt, trailing slash", (t) => {
  const { GITHUB_RUN_ATTEMPT: _, ...noAttempt } = env;
  t.is(runUrl(noAttempt), "https://github.com/acme/shop/actions/runs/987654321");
  t.is(
    runUrl({ ...env, GITHUB_SERVER_URL: "https://ghe.example.com/" }),
    "https://ghe.example.com/acme/shop/actions/runs/987654321/attempts/3",
  );
  const { GITHUB_SERVER_URL: __, ...noServer } = env;
  t.is(runUrl(noServer), "https://github.com/acme/shop/actions/runs/987654321/attempts/3");
});

test("outside GitHub every field is empty", (t) => {
  t.deepEqual(originFromEnv({}), { repository: "", sha: "", ref: "", actor: "", runUrl: "", workflow: "" });
  t.is(runUrl({ GITHUB_RUN_ID: "1" }), "");
  t.is(runUrl({ GITHUB_REPOSITORY: "a/b" }), "");
});

test("fields are capped at 512 characters", (t) => {
  const origin = originFromEnv({ ...env, GITHUB_WORKFLOW: "w".repeat(600) });
  t.is(origin.workflow.length, 512);
});
