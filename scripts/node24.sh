#!/usr/bin/env bash
# Prints the path of a Node 24 binary for an architecture (x64 or arm64), fetching the official
# build from the npm registry (package node-linux-<arch>) into a cache outside the repository.
# Used to run the action as GitHub's runner does (node24) and the agent on arm64 under qemu.
# Safe to call from parallel test processes: one fetches under a lock, the others wait.
set -euo pipefail
arch="${1:?usage: node24.sh x64|arm64}"
version="${NODE24_VERSION:-24.21.0}"
root="${K8SDEPLOY_TESTBED_CACHE:-$HOME/.cache/k8sdeploy-testbed}"
cache="$root/node-$arch-$version"
if [[ ! -x "$cache/bin/node" ]]; then
  mkdir -p "$root"
  exec 9>"$cache.lock"
  flock 9
  if [[ ! -x "$cache/bin/node" ]]; then
    tmp=$(mktemp -d "$root/.node-fetch-XXXXXX") # same filesystem: the final mv is an atomic rename
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && npm pack --silent "node-linux-$arch@$version" >/dev/null)
    mkdir -p "$tmp/out"
    tar -xzf "$tmp"/node-linux-"$arch"-*.tgz -C "$tmp/out" --strip-components=1
    rm -rf "$cache"
    mv "$tmp/out" "$cache"
  fi
fi
echo "$cache/bin/node"
