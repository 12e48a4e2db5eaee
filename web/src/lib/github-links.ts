// Links to GitHub for a deployment's origin. The host always comes from the orchestrator's
// K8SDEPLOY_GITHUB_SERVER_URL (github.com by default), never from the origin itself: the run URL,
// repository and actor are data a CI job (or anyone with a deploy key) chose. Each part is
// checked against GitHub's own name rules before it becomes a path; a run URL is a link only
// when it is on that server.
import type { Origin } from "@k8sdeploy/proto/es/k8sdeploy/v1/types_pb.js";

export interface GithubLinks {
  repository?: string;
  commit?: string;
  actor?: string;
  run?: string;
}

const REPOSITORY = /^[A-Za-z0-9-]{1,39}\/[A-Za-z0-9._-]{1,100}$/;
const SHA = /^[0-9a-f]{7,64}$/i;
const ACTOR = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?$/;

/** The origin of `url` when it is an http(s) URL, else undefined. */
export function httpOrigin(url: string): string | undefined {
  try {
    const u = new URL(url);
    return u.protocol === "https:" || u.protocol === "http:" ? u.origin : undefined;
  } catch {
    return undefined;
  }
}

export function githubLinks(serverUrl: string, origin: Origin | undefined): GithubLinks {
  const base = httpOrigin(serverUrl);
  if (!base || !origin) return {};
  const links: GithubLinks = {};
  const repo = REPOSITORY.test(origin.repository) && !/(^|\/)\.\.?$/.test(origin.repository) ? origin.repository : "";
  if (repo) links.repository = `${base}/${repo}`;
  if (repo && SHA.test(origin.sha)) links.commit = `${base}/${repo}/commit/${origin.sha}`;
  if (ACTOR.test(origin.actor) && origin.actor !== "dashboard")
    links.actor = `${base}/${origin.actor.replace(/\[bot\]$/, "")}`;
  if (origin.runUrl && httpOrigin(origin.runUrl) === base) links.run = new URL(origin.runUrl).href;
  return links;
}
