#!/usr/bin/env bash
# `npm test`: build, lint, type-check the tests, bring up the test bed (idempotent; cached
# binaries) and run every ava test against it. Extra arguments go to ava (e.g. a file).
set -euo pipefail
cd "$(dirname "$0")/.."

npm run --silent build
npx biome check .
npx buf lint
npx tsc -p test
bash scripts/testbed/testbed.sh up
eval "$(bash scripts/testbed/testbed.sh env)"
exec npx ava "$@"
