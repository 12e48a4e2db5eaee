#!/usr/bin/env bash
# Builds the test bed's binaries from their Go modules into a cache outside the repository,
# keyed by version: kube-apiserver, kube-controller-manager, kube-scheduler (one multi-call
# binary), etcd, kwok, grpcurl, the CNCF Distribution registry, crane (go-containerregistry) and
# actionlint. Re-running with a warm cache does nothing.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
GRPCURL_VERSION="${GRPCURL_VERSION:-v1.9.3}"
REGISTRY_VERSION="${REGISTRY_VERSION:-v3.1.2}"
CRANE_VERSION="${CRANE_VERSION:-v0.22.1}"
ACTIONLINT_VERSION="${ACTIONLINT_VERSION:-v1.7.12}"
CACHE_ROOT="${K8SDEPLOY_TESTBED_CACHE:-$HOME/.cache/k8sdeploy-testbed}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}" GOFLAGS=-buildvcs=false CGO_ENABLED=0

log() { printf '[testbed build %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

bin_dir() { echo "$CACHE_ROOT/$1-$2/bin"; }

build_k8s() {
  local out; out=$(bin_dir kubernetes "$K8S_VERSION")
  [[ -x "$out/kube-multi" ]] && return 0
  log "building kube-apiserver, kube-controller-manager, kube-scheduler $K8S_VERSION (cold: tens of minutes)"
  # A RETURN trap outlives the function that set it (and would fire again, with $work unbound,
  # when main returns): it clears itself.
  local work; work=$(mktemp -d); trap 'rm -rf "$work"; trap - RETURN' RETURN
  local minor="${K8S_VERSION#v1.}"; local staging="v0.${minor}"
  local upstream; upstream=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
  [[ -f "$upstream" ]] || { log "could not find upstream go.mod for $K8S_VERSION"; return 1; }
  {
    echo "module k8sdeploy.local/testbed/k8s"
    grep -E '^go [0-9]' "$upstream"
    grep -E '^godebug ' "$upstream" || true
    echo "require k8s.io/kubernetes $K8S_VERSION"
    # Upstream replaces each staging module with ./staging/...; point each at its published version.
    grep -oE '^[[:space:]]*k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' "$upstream" |
      awk -v v="$staging" '{print "replace " $1 " => " $1 " " v}'
  } >"$work/go.mod"
  log "tools module replaces $(grep -c '^replace' "$work/go.mod") staging modules"
  cat >"$work/main.go" <<'GO'
// Multi-call binary: dispatches on its own name (or first argument) to the upstream commands.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	_ "time/tzdata"
)

func main() {
	name := filepath.Base(os.Args[0])
	if name == "kube-multi" && len(os.Args) > 1 {
		name, os.Args = os.Args[1], os.Args[1:]
	}
	var cmd *cobra.Command
	switch name {
	case "kube-apiserver":
		cmd = apiserver.NewAPIServerCommand()
	case "kube-controller-manager":
		cmd = controllermanager.NewControllerManagerCommand()
	case "kube-scheduler":
		cmd = scheduler.NewSchedulerCommand()
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n", name)
		os.Exit(2)
	}
	os.Exit(cli.Run(cmd))
}
GO
  (cd "$work" && go mod tidy >&2)
  local pkg=k8s.io/component-base/version
  local ld="-s -w -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor%%.*} -X $pkg.gitTreeState=clean"
  ld="$ld -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  mkdir -p "$out.tmp"
  (cd "$work" && go build -trimpath -tags selinux,notest -ldflags "$ld" -o "$out.tmp/kube-multi" . >&2)
  for c in kube-apiserver kube-controller-manager kube-scheduler; do ln -sf kube-multi "$out.tmp/$c"; done
  rm -rf "$out"; mkdir -p "$(dirname "$out")"; mv "$out.tmp" "$out"
  log "kubernetes $K8S_VERSION built"
}

build_etcd() {
  local out; out=$(bin_dir etcd "$ETCD_VERSION")
  [[ -x "$out/etcd" ]] && return 0
  log "building etcd $ETCD_VERSION"
  local work; work=$(mktemp -d); trap 'rm -rf "$work"; trap - RETURN' RETURN
  printf 'module k8sdeploy.local/testbed/etcd\n\ngo 1.24\n' >"$work/go.mod"
  printf 'package tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >"$work/tools.go"
  (cd "$work" && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2 && go mod tidy >&2 || true)
  mkdir -p "$out.tmp"
  (cd "$work" && go build -trimpath -ldflags "-s -w" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3 >&2)
  rm -rf "$out"; mv "$out.tmp" "$out"
  log "etcd $ETCD_VERSION built"
}

go_install() { # name module version out [ldflags]
  local out; out=$(bin_dir "$1" "$3")
  [[ -x "$out/$1" ]] && return 0
  log "building $1 $3"
  mkdir -p "$out.tmp"
  GOBIN="$out.tmp" go install -trimpath -ldflags "-s -w ${5:-}" "$2@$3" >&2
  rm -rf "$out"; mv "$out.tmp" "$out"
  log "$1 $3 built"
}

main() {
  mkdir -p "$CACHE_ROOT"
  # One build at a time per cache (a second caller waits, then finds the binaries built).
  if command -v flock >/dev/null; then
    exec 8>"$CACHE_ROOT/.build.lock"
    flock -n 8 || { log "waiting for another build-tools.sh to finish"; flock 8; }
  fi
  local start=$SECONDS
  # K8SDEPLOY_TESTBED_ONLY=tools builds (and prints) only the client-side tools (grpcurl, registry,
  # crane, actionlint): an external cluster needs no control-plane binaries. `grpcurl` builds
  # grpcurl alone.
  case "${K8SDEPLOY_TESTBED_ONLY:-all}" in
    grpcurl)
      build_grpcurl
      bin_dir grpcurl "$GRPCURL_VERSION"
      return 0 ;;
    tools)
      build_client_tools
      client_tool_path
      return 0 ;;
    all) ;;
    *) log "unknown K8SDEPLOY_TESTBED_ONLY=${K8SDEPLOY_TESTBED_ONLY} (use tools, grpcurl or leave unset)"; return 2 ;;
  esac
  build_client_tools
  go_install kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION"
  build_etcd
  build_k8s
  if (( SECONDS - start > 5 )); then log "all binaries ready after $((SECONDS - start)) s"; fi
  # One line of tool directories, for the caller to put on PATH.
  echo "$(bin_dir kubernetes "$K8S_VERSION"):$(bin_dir etcd "$ETCD_VERSION"):$(bin_dir kwok "$KWOK_VERSION"):$(client_tool_path)"
}

build_grpcurl() {
  go_install grpcurl github.com/fullstorydev/grpcurl/cmd/grpcurl "$GRPCURL_VERSION" "-X main.version=$GRPCURL_VERSION"
}

# Tools the tests use whatever the cluster: grpcurl, the OCI registry the images are pushed to,
# crane to push and inspect images, actionlint for .github/workflows.
build_client_tools() {
  build_grpcurl
  go_install registry github.com/distribution/distribution/v3/cmd/registry "$REGISTRY_VERSION" \
    "-X github.com/distribution/distribution/v3/version.version=$REGISTRY_VERSION"
  go_install crane github.com/google/go-containerregistry/cmd/crane "$CRANE_VERSION"
  go_install actionlint github.com/rhysd/actionlint/cmd/actionlint "$ACTIONLINT_VERSION" \
    "-X github.com/rhysd/actionlint.version=$ACTIONLINT_VERSION"
}

client_tool_path() {
  echo "$(bin_dir grpcurl "$GRPCURL_VERSION"):$(bin_dir registry "$REGISTRY_VERSION"):$(bin_dir crane "$CRANE_VERSION"):$(bin_dir actionlint "$ACTIONLINT_VERSION")"
}

main "$@"
