// The agent release channel: which agent release is current (from K8SDEPLOY_AGENT_RELEASE_* or a
// release manifest file, re-read when it changes) and whether an agent's announced version is
// behind it (semver precedence).
import * as fs from "node:fs";
import type { AgentRelease } from "@k8sdeploy/proto/node/k8sdeploy/v1/admin.js";
import type { Logger } from "pino";
import { lt, valid } from "semver";
import { type AgentReleaseSource, readReleaseFile } from "../config.js";

export class ReleaseChannel {
  private fileRelease: AgentRelease | undefined;
  private fileStamp = "";

  constructor(
    private readonly source: AgentReleaseSource | undefined,
    private readonly log?: Logger,
  ) {}

  /** The current release, or undefined when no channel is configured. */
  current(): AgentRelease | undefined {
    const source = this.source;
    if (source === undefined) return undefined;
    if (source.kind === "env") return source.release;
    let stamp: string;
    try {
      const st = fs.statSync(source.path);
      stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch (err) {
      if (this.fileStamp !== "missing")
        this.log?.warn({ err, file: source.path }, "cannot read the agent release file; keeping the last release");
      this.fileStamp = "missing";
      return this.fileRelease;
    }
    if (stamp !== this.fileStamp) {
      this.fileStamp = stamp;
      try {
        const next = readReleaseFile(source.path);
        if (next.version !== this.fileRelease?.version || next.image !== this.fileRelease?.image) {
          this.log?.info({ version: next.version, image: next.image }, "agent release");
        }
        this.fileRelease = next;
      } catch (err) {
        this.log?.warn(
          { problem: (err as Error).message },
          "the agent release file is invalid; keeping the last release",
        );
      }
    }
    return this.fileRelease;
  }

  /** The release `version` is behind of, or undefined (up to date, unknown version, no channel). */
  newerThan(version: string | undefined): AgentRelease | undefined {
    const release = this.current();
    if (release === undefined || !version || valid(version) === null) return undefined;
    return lt(version, release.version) ? release : undefined;
  }
}
