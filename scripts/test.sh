#!/usr/bin/env bash
# `npm test`: build, lint, type-check the tests, bring up the test bed (idempotent; cached
# binaries), build the images and push them to the test bed's registry, and run every ava test
# against it. Extra arguments go to ava (e.g. a file).
set -euo pipefail
cd "$(dirname "$0")/.."

npm run --silent build
npx biome check .
npx buf lint
npx tsc -p test
bash scripts/testbed/testbed.sh up
# Node 24 (x64 for the action as the runner runs it, arm64 for the agent under qemu), fetched once here.
bash scripts/node24.sh x64 >/dev/null
bash scripts/node24.sh arm64 >/dev/null
eval "$(bash scripts/testbed/testbed.sh env)"
# The images (both, both platforms) pushed to the test bed's registry; the image tests pull them by
# digest from there (test/support/images.ts). Prints per-step timings.
node scripts/images/build.mjs --push "$K8SDEPLOY_TEST_REGISTRY/k8sdeploy" \
  --authfile "$K8SDEPLOY_TEST_REGISTRY_AUTHFILE" --ca-file "$K8SDEPLOY_TEST_REGISTRY_CA"
exec npx ava "$@"
