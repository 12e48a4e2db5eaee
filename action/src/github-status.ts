// Reports the deployment to GitHub when `github-token` is set: a commit status on GITHUB_SHA
// (context `k8sdeploy/<namespace>/<workload>`, needs `permissions: statuses: write`), or a GitHub
// deployment in `github-environment` with its statuses (needs `deployments: write`). Pending /
// queued when Deploy returns, then the outcome; the link is the workflow run. Through
// @actions/github's Octokit, which talks to GITHUB_API_URL (GitHub Enterprise, or the tests'
// stand-in). A failure to report is a warning: it never fails the deploy step.
import * as core from "@actions/core";
import { getOctokit } from "@actions/github";
import { type Deployment, DeploymentState } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import { isFinal, stateName } from "./follow.js";
import type { GitHubReport } from "./inputs.js";

type CommitState = "pending" | "success" | "failure" | "error";
type DeploymentStatusState = "queued" | "in_progress" | "success" | "failure" | "error" | "inactive";

const S = DeploymentState;

function commitState(state: DeploymentState): CommitState {
  switch (state) {
    case S.DEPLOYMENT_STATE_SUCCEEDED:
      return "success";
    case S.DEPLOYMENT_STATE_FAILED:
    case S.DEPLOYMENT_STATE_ROLLED_BACK:
    case S.DEPLOYMENT_STATE_TIMED_OUT:
      return "failure";
    case S.DEPLOYMENT_STATE_CANCELLED:
    case S.DEPLOYMENT_STATE_SUPERSEDED:
    case S.DEPLOYMENT_STATE_EXPIRED:
      return "error";
    default:
      return "pending";
  }
}

function deploymentStatusState(state: DeploymentState): DeploymentStatusState {
  switch (state) {
    case S.DEPLOYMENT_STATE_QUEUED:
      return "queued";
    case S.DEPLOYMENT_STATE_DELIVERED:
    case S.DEPLOYMENT_STATE_IN_PROGRESS:
      return "in_progress";
    case S.DEPLOYMENT_STATE_SUPERSEDED:
      return "inactive";
    default: {
      const commit = commitState(state);
      return commit === "pending" ? "in_progress" : commit;
    }
  }
}

/** GitHub allows 140 characters of description. */
const description = (text: string) => (text.length <= 140 ? text : `${text.slice(0, 139)}…`);

export class GitHubReporter {
  private readonly octokit: ReturnType<typeof getOctokit>;
  private githubDeploymentId: number | undefined;

  constructor(
    private readonly report: GitHubReport,
    private readonly runUrl: string,
  ) {
    this.octokit = getOctokit(report.token);
  }

  /** Deploy returned: the deployment is queued (or already further). */
  async started(deployment: Deployment, image: string): Promise<void> {
    const { owner, repo, sha } = this.report;
    await this.attempt("report the deployment to GitHub", async () => {
      if (this.report.kind === "commit") {
        await this.commitStatus("pending", `${deployment.id} ${stateName(deployment.state)}: ${image}`);
        return;
      }
      const created = await this.octokit.rest.repos.createDeployment({
        owner,
        repo,
        ref: sha,
        environment: this.report.environment,
        auto_merge: false,
        required_contexts: [],
        description: description(`${image} (${deployment.id})`),
        payload: { k8sdeploy: { deploymentId: deployment.id, image } },
      });
      if (!("id" in created.data)) throw new Error(`GitHub did not create a deployment: ${created.data.message ?? ""}`);
      this.githubDeploymentId = created.data.id;
      core.info(`GitHub deployment ${created.data.id} created in environment "${this.report.environment}".`);
      await this.deploymentStatus(
        deploymentStatusState(deployment.state),
        `${deployment.id} ${stateName(deployment.state)}`,
      );
    });
  }

  /** The step is ending: the final state, or `error` when it stopped without one. */
  async finished(deployment: Deployment | undefined, message: string): Promise<void> {
    await this.attempt("report the outcome to GitHub", async () => {
      const state = deployment?.state ?? S.DEPLOYMENT_STATE_UNSPECIFIED;
      const final = deployment !== undefined && isFinal(state);
      const text = `${deployment ? `${deployment.id} ${stateName(state)}: ` : ""}${message}`;
      if (this.report.kind === "commit") {
        await this.commitStatus(final ? commitState(state) : "error", text);
      } else if (this.githubDeploymentId !== undefined) {
        await this.deploymentStatus(final ? deploymentStatusState(state) : "error", text);
      }
    });
  }

  private async commitStatus(state: CommitState, text: string): Promise<void> {
    const { owner, repo, sha, context } = this.report;
    await this.octokit.rest.repos.createCommitStatus({
      owner,
      repo,
      sha,
      state,
      context,
      description: description(text),
      ...(this.runUrl ? { target_url: this.runUrl } : {}),
    });
  }

  private async deploymentStatus(state: DeploymentStatusState, text: string): Promise<void> {
    const { owner, repo } = this.report;
    await this.octokit.rest.repos.createDeploymentStatus({
      owner,
      repo,
      deployment_id: this.githubDeploymentId ?? 0,
      state,
      description: description(text),
      environment: this.report.environment,
      auto_inactive: state === "success",
      ...(this.runUrl ? { log_url: this.runUrl } : {}),
    });
  }

  private async attempt(what: string, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (error) {
      const status = (error as { status?: number }).status;
      const hint =
        status === 403 || status === 404
          ? ` (give the job \`permissions: ${this.report.kind === "commit" ? "statuses" : "deployments"}: write\`)`
          : "";
      core.warning(`Could not ${what}: ${error instanceof Error ? error.message : String(error)}${hint}`);
    }
  }
}
