#!/usr/bin/env node
// Pins the Kustomize bases to the images `npm run images` built: writes each image's index digest
// into the `images:` entry of its base (agent/deploy/kustomize/base, orchestrator/deploy/
// kustomize/base), keeping the rest of the file as it is.
//
//   node scripts/release/pin-images.mjs [--report dist/images/images.json]          write
//   node scripts/release/pin-images.mjs --check [--report …]                          exit 1 if they differ
//
// The release (RELEASING in the README): bump the version and commit; `npm run images`; run this
// and commit the bases ("pin images"). The image build takes its revision and timestamp from the
// last commit that changed the images' inputs (not the deploy manifests), so a build of the tag
// reproduces the pinned digests, and release.yml checks exactly that with --check.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const BASES = {
  agent: { file: "agent/deploy/kustomize/base/kustomization.yaml", image: "ghcr.io/k8sdeploy/agent" },
  orchestrator: {
    file: "orchestrator/deploy/kustomize/base/kustomization.yaml",
    image: "ghcr.io/k8sdeploy/orchestrator",
  },
};

/** Replaces the digest of `image` in a kustomization's `images:` list; throws if it is not there. */
export function pinDigest(text, image, digest) {
  const entry = new RegExp(
    `(- name: ${image.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}\\n\\s+digest: )sha256:[0-9a-f]{64}`,
  );
  if (!entry.test(text)) throw new Error(`no "- name: ${image}" entry with a "digest:" line`);
  return text.replace(entry, `$1${digest}`);
}

export function pinnedDigest(text, image) {
  const m = new RegExp(
    `- name: ${image.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}\\n\\s+digest: (sha256:[0-9a-f]{64})`,
  ).exec(text);
  return m?.[1];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { report: { type: "string" }, check: { type: "boolean", default: false } } });
  const report = JSON.parse(
    readFileSync(resolve(values.report ?? join(repoRoot, "dist", "images", "images.json")), "utf8"),
  );
  let differ = false;
  for (const [name, base] of Object.entries(BASES)) {
    const built = report.images[name]?.digest;
    if (!built) throw new Error(`the report has no ${name} image`);
    const file = join(repoRoot, base.file);
    const text = readFileSync(file, "utf8");
    const pinned = pinnedDigest(text, base.image);
    if (values.check) {
      const same = pinned === built;
      differ ||= !same;
      console.log(`${same ? "ok  " : "DIFF"} ${base.file}: pinned ${pinned}, built ${built}`);
    } else {
      writeFileSync(file, pinDigest(text, base.image, built));
      console.log(`${base.file}: ${base.image}@${built}`);
    }
  }
  if (differ) {
    console.error("pin-images: the bases do not pin the images this commit builds (see RELEASING in the README)");
    process.exit(1);
  }
}
