import * as fs from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import test from "ava";
import { ReleaseChannel } from "./release-channel.js";

const image = (v: string) => `ghcr.io/k8sdeploy/agent:${v}@sha256:${"b".repeat(64)}`;

test("newerThan: semver precedence; unknown versions and no channel are never behind", (t) => {
  const channel = new ReleaseChannel({ kind: "env", release: { version: "0.10.0", image: image("0.10.0") } });
  t.is(channel.newerThan("0.9.3")?.version, "0.10.0", "numeric, not lexical");
  t.is(channel.newerThan("0.10.0-rc.1")?.version, "0.10.0", "a pre-release is behind its release");
  t.is(channel.newerThan("0.10.0"), undefined);
  t.is(channel.newerThan("0.11.0"), undefined);
  t.is(channel.newerThan("0.0.0-unknown")?.version, "0.10.0");
  t.is(channel.newerThan("garbage"), undefined);
  t.is(channel.newerThan(""), undefined);
  t.is(new ReleaseChannel(undefined).newerThan("0.1.0"), undefined);
});

test("a release file is re-read when it changes; a broken edit keeps the last good release", async (t) => {
  const file = path.join(fs.mkdtempSync(path.join(tmpdir(), "k8sd-release-")), "release.json");
  fs.writeFileSync(file, JSON.stringify({ version: "0.2.0", image: image("0.2.0") }));
  const channel = new ReleaseChannel({ kind: "file", path: file });
  t.is(channel.current()?.version, "0.2.0");
  await new Promise((r) => setTimeout(r, 20));
  fs.writeFileSync(file, JSON.stringify({ version: "0.3.0", image: image("0.3.0") }));
  t.deepEqual(channel.current(), { version: "0.3.0", image: image("0.3.0") });
  await new Promise((r) => setTimeout(r, 20));
  fs.writeFileSync(file, JSON.stringify({ version: "0.4.0", image: "ghcr.io/k8sdeploy/agent:0.4.0" }));
  t.is(channel.current()?.version, "0.3.0", "an unpinned image is refused");
  fs.rmSync(file);
  t.is(channel.current()?.version, "0.3.0");
});
