#!/usr/bin/env bash
# K8sDeploy test bed: a real Kubernetes control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler built from their Go modules) with kwok standing in for
# kubelets, plus a real redis-server and a real OCI registry (CNCF Distribution, htpasswd auth,
# TLS from the test bed's CA), all on 127.0.0.1 without Docker.
#
#   testbed.sh up      start (or repair) everything; idempotent, quick when already up
#   testbed.sh env     print export lines:  eval "$(npm run --silent testbed -- env)"
#   testbed.sh status  list processes and node readiness; non-zero if something is down
#   testbed.sh down    stop exactly the recorded processes and remove the state directory
#
# Environment:
#   K8SDEPLOY_TESTBED_STATE     state directory (default /tmp/k8sdeploy-testbed-<uid>)
#   K8SDEPLOY_TEST_KUBECONFIG   use this existing cluster instead of starting one (kind "external":
#                               no control plane is built or run, no limited kubeconfig)
#   K8SDEPLOY_TEST_REDIS_URL    use this Redis instead of starting redis-server
#   K8SDEPLOY_TESTBED_CACHE     binary cache (default ~/.cache/k8sdeploy-testbed; see build-tools.sh)
#
# The registry runs in both modes (it is ours, on loopback): user k8sdeploy, a random password,
# https with a certificate signed by $STATE/certs/ca.crt. `env` exports K8SDEPLOY_TEST_REGISTRY
# (127.0.0.1:PORT), K8SDEPLOY_TEST_REGISTRY_USER/_PASSWORD/_CA and _AUTHFILE (a Docker-style
# config.json for crane, skopeo and buildah).
#
# Fake failures (kwok-failure-stages.yaml): a container image containing "fail-pull" waits in
# ErrImagePull/ImagePullBackOff forever; one containing "crash" waits in CrashLoopBackOff with a
# growing restartCount. Any other image becomes Running and Ready at once.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE=${K8SDEPLOY_TESTBED_STATE:-/tmp/k8sdeploy-testbed-$(id -u)}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
PIDS=$STATE/pids
LOGS=$STATE/logs
CERTS=$STATE/certs
REGISTRY_DIR=$STATE/registry
REGISTRY_USER=k8sdeploy
MARKER=$STATE/.k8sdeploy-testbed
NODE_NAME=kwok-node-0
# Start order; down stops them in reverse.
CLUSTER_PROCS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

log() { printf '[testbed] %s\n' "$*" >&2; }
die() { printf '[testbed] error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# mode: kwok (our own control plane) or external (K8SDEPLOY_TEST_KUBECONFIG)

requested_kind() { if [[ -n "${K8SDEPLOY_TEST_KUBECONFIG:-}" ]]; then echo external; else echo kwok; fi; }

# $STATE/testbed.env holds what `up` decided: KIND, ports, external paths. Sourced by env/status.
load_state() {
  [[ -f "$STATE/testbed.env" ]] || return 1
  # shellcheck disable=SC1091
  source "$STATE/testbed.env"
}

save_state() {
  local tmp="$STATE/testbed.env.tmp"
  {
    printf 'KIND=%q\n' "$KIND"
    printf 'EXTERNAL_KUBECONFIG=%q\n' "${EXTERNAL_KUBECONFIG:-}"
    printf 'EXTERNAL_REDIS_URL=%q\n' "${EXTERNAL_REDIS_URL:-}"
    for v in REDIS_PORT REGISTRY_PORT ETCD_PORT ETCD_PEER_PORT APISERVER_PORT KCM_PORT SCHEDULER_PORT KWOK_PORT; do
      printf '%s=%q\n' "$v" "${!v:-}"
    done
  } >"$tmp"
  mv "$tmp" "$STATE/testbed.env"
}

# Which processes this state runs.
state_procs() {
  local p=()
  [[ -z "${EXTERNAL_REDIS_URL:-}" ]] && p+=(redis)
  p+=(registry)
  [[ "$KIND" == kwok ]] && p+=("${CLUSTER_PROCS[@]}")
  echo "${p[@]}"
}

# ---------------------------------------------------------------------------------------------
# processes

pid_of() { [[ -s "$PIDS/$1.pid" ]] && tr -dc '0-9' <"$PIDS/$1.pid"; }

# True if pid is a live (not zombie) process that is really ours: its command line names our
# state dir (redis rewrites its title to "redis-server 127.0.0.1:<port>", so match that instead).
pid_is_ours() { # name pid
  local name=$1 pid=$2 stat cmd
  [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
  stat=$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ "$stat" != Z && "$stat" != X ]] || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  if [[ "$name" == redis ]]; then
    [[ "$cmd" == *redis-server*":${REDIS_PORT:-x}"* || "$cmd" == *redis-server*"$STATE"* ]]
  else
    [[ "$cmd" == *"$STATE"* ]]
  fi
}

running() { local pid; pid=$(pid_of "$1") || return 1; pid_is_ours "$1" "$pid"; }

# start NAME CMD...: own session (setsid), immune to hangups (nohup), stdin from /dev/null, output
# appended to $LOGS/NAME.log; the pid written is the program's own (bash writes $$, then execs).
start() {
  local name=$1; shift
  rm -f "$PIDS/$name.pid"
  printf '\n===== %(%Y-%m-%d %H:%M:%S)T starting: %s\n' -1 "$*" >>"$LOGS/$name.log"
  setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$PIDS/$name.pid" "$@" </dev/null >>"$LOGS/$name.log" 2>&1 9>&- &
  local i
  for i in $(seq 50); do [[ -s "$PIDS/$name.pid" ]] && return 0; sleep 0.1; done
  die "$name did not start (see $LOGS/$name.log)"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A free TCP port on 127.0.0.1 below the kernel's ephemeral range (32768+), so that outgoing
# connections cannot take it between now and the server's bind.
TAKEN_PORTS=" "
free_port() {
  local p i
  for i in $(seq 200); do
    p=$((20000 + RANDOM % 12000))
    [[ "$TAKEN_PORTS" == *" $p "* ]] && continue
    if ! port_in_use "$p"; then TAKEN_PORTS+="$p "; echo "$p"; return 0; fi
  done
  die "no free port found"
}

# Before restarting a dead component on its recorded port, make sure nobody else took the port.
need_port() { # name port
  if port_in_use "$2"; then
    die "$1 is not running but its port $2 on 127.0.0.1 is taken by another process; run 'testbed.sh down' then 'testbed.sh up'"
  fi
}

tail_log() { log "last lines of $LOGS/$1.log:"; tail -n "${2:-25}" "$LOGS/$1.log" >&2 || true; }

# wait_for NAME SECONDS CMD...: poll CMD until it succeeds; fail if NAME's process dies or time runs out.
wait_for() {
  local name=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    # Asked twice: while a process execs its program, /proc/PID/cmdline can read empty for a moment
    # (seen with kwok on a loaded machine), which a single look takes for an exit.
    if [[ -n "$name" ]] && ! running "$name" && ! { sleep 0.5; running "$name"; }; then
      tail_log "$name"
      die "$name exited"
    fi
    if ((SECONDS >= deadline)); then [[ -n "$name" ]] && tail_log "$name"; die "timed out after ${secs}s waiting for: ${name:-$*}"; fi
    sleep 0.3
  done
}

# ---------------------------------------------------------------------------------------------
# health checks

redis_ping() ( # port (a subshell: the connection closes with it)
  exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
  printf 'PING\r\n' >&3
  IFS= read -r -t 2 reply <&3 || exit 1
  [[ "$reply" == +PONG* ]]
)

registry_password() { cat "$REGISTRY_DIR/password"; }

# /v2/ answers 200 only to an authenticated client that trusts the test bed's CA.
registry_healthy() {
  curl -fsS --max-time 2 --cacert "$CERTS/ca.crt" -u "$REGISTRY_USER:$(registry_password)" \
    -o /dev/null "https://127.0.0.1:$REGISTRY_PORT/v2/"
}

etcd_healthy() { curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }

admin_token() { cat "$STATE/admin.token"; }

api_get() { # path
  curl -fsS --max-time 5 --cacert "$CERTS/ca.crt" -H "Authorization: Bearer $(admin_token)" \
    "https://127.0.0.1:$APISERVER_PORT$1"
}

apiserver_ready() { [[ "$(api_get /readyz)" == ok ]]; }
# kube-controller-manager and kube-scheduler serve /healthz to anyone (always-allowed path).
https_healthz() { [[ "$(curl -fsSk --max-time 2 "https://127.0.0.1:$1/healthz")" == ok ]]; }
kwok_healthy() { [[ "$(curl -fsS --max-time 2 "http://127.0.0.1:$KWOK_PORT/healthz")" == ok ]]; }

kc() { kubectl --kubeconfig "$STATE/admin.kubeconfig" --request-timeout=10s "$@"; }

node_ready() {
  [[ "$(kc get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}
default_sa_exists() { kc -n default get serviceaccount default >/dev/null 2>&1; }

healthy() { # name
  case $1 in
    redis) redis_ping "$REDIS_PORT" ;;
    registry) registry_healthy ;;
    etcd) etcd_healthy ;;
    kube-apiserver) apiserver_ready ;;
    kube-controller-manager) https_healthz "$KCM_PORT" ;;
    kube-scheduler) https_healthz "$SCHEDULER_PORT" ;;
    kwok) kwok_healthy ;;
  esac
}

port_of() {
  case $1 in
    redis) echo "${REDIS_PORT:-}" ;; registry) echo "${REGISTRY_PORT:-}" ;; etcd) echo "${ETCD_PORT:-}" ;;
    kube-apiserver) echo "${APISERVER_PORT:-}" ;; kube-controller-manager) echo "${KCM_PORT:-}" ;;
    kube-scheduler) echo "${SCHEDULER_PORT:-}" ;; kwok) echo "${KWOK_PORT:-}" ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# one-time setup: certificates, tokens, kubeconfigs, kwok stages

# The CA signs the apiserver's and the registry's serving certificates (both modes need it: the
# registry runs with an external cluster too).
make_ca() {
  [[ -s "$CERTS/ca.crt" && -s "$CERTS/ca.key" ]] && return 0
  log "creating the test bed's CA"
  mkdir -p "$CERTS"
  (
    cd "$CERTS"
    umask 077
    openssl genrsa -out ca.key 2048 2>/dev/null
    openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=k8sdeploy-testbed-ca" -out ca.crt
    chmod 644 ca.crt
  )
}

make_certs() {
  make_ca
  [[ -s "$CERTS/apiserver.crt" && -s "$CERTS/sa.key" && -s "$CERTS/sa.pub" ]] && return 0
  log "creating the apiserver's serving certificate and service-account key"
  (
    cd "$CERTS"
    umask 077
    openssl genrsa -out apiserver.key 2048 2>/dev/null
    openssl req -new -key apiserver.key -subj "/CN=kube-apiserver" -out apiserver.csr
    cat >apiserver.ext <<'EXT'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost, IP:10.0.0.1, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local
EXT
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -sha256 \
      -extfile apiserver.ext -out apiserver.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    rm -f apiserver.csr
  )
}

write_kubeconfig() { # file user token
  local ca; ca=$(base64 -w0 <"$CERTS/ca.crt")
  cat >"$1.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: k8sdeploy-testbed
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $ca
users:
- name: $2
  user:
    token: $3
contexts:
- name: $2@k8sdeploy-testbed
  context:
    cluster: k8sdeploy-testbed
    user: $2
    namespace: default
current-context: $2@k8sdeploy-testbed
EOF
  chmod 600 "$1.tmp"
  mv "$1.tmp" "$1"
}

make_tokens_and_kubeconfigs() {
  if [[ ! -s "$STATE/tokens.csv" ]]; then
    local admin limited
    admin=$(openssl rand -hex 24)
    limited=$(openssl rand -hex 24)
    printf '%s\n' "$admin" >"$STATE/admin.token"
    # token,user,uid,"groups": admin is in system:masters; the limited user has no group beyond
    # system:authenticated (added by the apiserver) and only the Role in manifests.yaml.
    printf '%s,admin,admin,"system:masters"\n%s,k8sdeploy-limited,k8sdeploy-limited\n' "$admin" "$limited" >"$STATE/tokens.csv"
    chmod 600 "$STATE/tokens.csv" "$STATE/admin.token"
  fi
  local admin limited
  admin=$(sed -n '1s/,.*//p' "$STATE/tokens.csv")
  limited=$(sed -n '2s/,.*//p' "$STATE/tokens.csv")
  write_kubeconfig "$STATE/admin.kubeconfig" admin "$admin"
  write_kubeconfig "$STATE/limited.kubeconfig" k8sdeploy-limited "$limited"
}

# kwok's own "fast" stages (nodes Ready, pods Running/Ready at once, terminating pods removed),
# rendered from the kwok module, plus our failure stages.
make_kwok_stages() {
  [[ -s "$STATE/kwok-stages.yaml" ]] && return 0
  local dir
  dir=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  [[ -d "$dir/kustomize/stage/fast" ]] || die "kwok module $KWOK_VERSION not found (go mod download sigs.k8s.io/kwok@$KWOK_VERSION)"
  {
    kubectl kustomize "$dir/kustomize/stage/fast"
    echo "---"
    cat "$HERE/kwok-failure-stages.yaml"
  } >"$STATE/kwok-stages.yaml.tmp"
  mv "$STATE/kwok-stages.yaml.tmp" "$STATE/kwok-stages.yaml"
}

# Registry: a serving certificate for 127.0.0.1/localhost, an htpasswd file (bcrypt) with one
# user and a random password, a Docker-style auth file, and the registry's config.
make_registry_files() {
  make_ca
  mkdir -p "$REGISTRY_DIR/data" "$REGISTRY_DIR/docker"
  if [[ ! -s "$CERTS/registry.crt" ]]; then
    log "creating the registry's serving certificate"
    (
      cd "$CERTS"
      umask 077
      openssl genrsa -out registry.key 2048 2>/dev/null
      openssl req -new -key registry.key -subj "/CN=k8sdeploy-testbed-registry" -out registry.csr
      printf '%s\n' "basicConstraints = critical, CA:FALSE" "keyUsage = critical, digitalSignature, keyEncipherment" \
        "extendedKeyUsage = serverAuth" "subjectAltName = IP:127.0.0.1, DNS:localhost" >registry.ext
      openssl x509 -req -in registry.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -sha256 \
        -extfile registry.ext -out registry.crt 2>/dev/null
      rm -f registry.csr
    )
  fi
  if [[ ! -s "$REGISTRY_DIR/htpasswd" ]]; then
    (
      umask 077
      openssl rand -hex 16 >"$REGISTRY_DIR/password"
      # -B: bcrypt, the only hash Distribution's htpasswd auth accepts; -i: password from stdin.
      htpasswd -iBc "$REGISTRY_DIR/htpasswd" "$REGISTRY_USER" <"$REGISTRY_DIR/password" 2>/dev/null
    )
  fi
  local auth; auth=$(printf '%s:%s' "$REGISTRY_USER" "$(registry_password)" | base64 -w0)
  (
    umask 077
    printf '{"auths":{"127.0.0.1:%s":{"auth":"%s"}}}\n' "$REGISTRY_PORT" "$auth" >"$REGISTRY_DIR/docker/config.json"
    cat >"$REGISTRY_DIR/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $REGISTRY_DIR/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$REGISTRY_PORT
  secret: $(openssl rand -hex 16)
  tls:
    certificate: $CERTS/registry.crt
    key: $CERTS/registry.key
auth:
  htpasswd:
    realm: k8sdeploy-testbed
    path: $REGISTRY_DIR/htpasswd
EOF
  )
}

# ---------------------------------------------------------------------------------------------
# components

ensure() { # name: start it unless it is running already
  local name=$1
  if running "$name"; then return 0; fi
  need_port "$name" "$(port_of "$name")"
  [[ "$name" == etcd ]] && need_port etcd-peer "$ETCD_PEER_PORT"
  log "starting $name on 127.0.0.1:$(port_of "$name")"
  "start_$name"
  STARTED+=("$name")
}

start_redis() {
  mkdir -p "$STATE/redis"
  # Redis writes its own pidfile (also when not daemonized) and removes it on shutdown; start()
  # writes the same pid first.
  start redis "$REDIS_SERVER" --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$STATE/redis" \
    --appendonly yes --save '' --daemonize no --pidfile "$PIDS/redis.pid" \
    --logfile "$LOGS/redis-server.log" --protected-mode yes
}

start_registry() {
  start registry registry serve "$REGISTRY_DIR/config.yml"
}

start_etcd() {
  start etcd etcd --name testbed --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "testbed=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state new \
    --unsafe-no-fsync --log-level warn
}

start_kube-apiserver() {
  start kube-apiserver kube-apiserver \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
    --cert-dir "$CERTS/apiserver-generated" \
    --tls-cert-file "$CERTS/apiserver.crt" --tls-private-key-file "$CERTS/apiserver.key" \
    --client-ca-file "$CERTS/ca.crt" \
    --token-auth-file "$STATE/tokens.csv" \
    --authorization-mode RBAC \
    --service-cluster-ip-range 10.0.0.0/24 \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$CERTS/sa.pub" \
    --service-account-signing-key-file "$CERTS/sa.key" \
    --endpoint-reconciler-type none \
    --profiling=false
}

# kube-controller-manager and kube-scheduler get no --authentication/--authorization-kubeconfig:
# their serving endpoints then allow only the always-allowed paths (/healthz, /readyz, /livez),
# which is all the test bed uses; delegating would make them poll for a request-header CA bundle
# that this apiserver does not have, and log an error every few seconds.
start_kube-controller-manager() {
  start kube-controller-manager kube-controller-manager \
    --kubeconfig "$STATE/admin.kubeconfig" \
    --leader-elect=false --bind-address 127.0.0.1 --secure-port "$KCM_PORT" \
    --cert-dir "$CERTS/kcm-generated" \
    --service-account-private-key-file "$CERTS/sa.key" --root-ca-file "$CERTS/ca.crt" \
    --cluster-signing-cert-file "$CERTS/ca.crt" --cluster-signing-key-file "$CERTS/ca.key" \
    --service-cluster-ip-range 10.0.0.0/24 \
    --profiling=false
}

start_kube-scheduler() {
  start kube-scheduler kube-scheduler \
    --kubeconfig "$STATE/admin.kubeconfig" \
    --leader-elect=false --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" \
    --cert-dir "$CERTS/scheduler-generated" \
    --profiling=false
}

start_kwok() {
  start kwok kwok --kubeconfig "$STATE/admin.kubeconfig" \
    --config "$STATE/kwok-stages.yaml" \
    --manage-all-nodes=true --node-lease-duration-seconds=40 \
    --cidr 10.244.0.0/16 --node-ip 10.240.0.1 \
    --server-address "127.0.0.1:$KWOK_PORT"
}

# ---------------------------------------------------------------------------------------------
# subcommands

tool_path() { # prints the tool bin dirs (build-tools.sh; progress goes to stderr)
  local out
  if [[ "$KIND" == external ]]; then
    out=$(K8SDEPLOY_TESTBED_ONLY=tools bash "$HERE/build-tools.sh")
  else
    out=$(bash "$HERE/build-tools.sh")
  fi
  out=$(tail -n 1 <<<"$out")
  [[ -n "$out" ]] || die "build-tools.sh printed no tool path"
  echo "$out"
}

cmd_up() {
  local t0=$SECONDS
  KIND=$(requested_kind)
  if load_state; then
    local want; want=$(requested_kind)
    [[ "$KIND" == "$want" ]] || die "$STATE holds a '$KIND' test bed but '$want' was asked for (K8SDEPLOY_TEST_KUBECONFIG); run 'testbed.sh down' first"
  fi
  KIND=$(requested_kind)
  EXTERNAL_KUBECONFIG=""
  EXTERNAL_REDIS_URL=${K8SDEPLOY_TEST_REDIS_URL:-}
  if [[ "$KIND" == external ]]; then
    EXTERNAL_KUBECONFIG=$(readlink -f "$K8SDEPLOY_TEST_KUBECONFIG")
    [[ -r "$EXTERNAL_KUBECONFIG" ]] || die "K8SDEPLOY_TEST_KUBECONFIG=$K8SDEPLOY_TEST_KUBECONFIG is not a readable file"
  fi
  if [[ -z "$EXTERNAL_REDIS_URL" ]]; then
    REDIS_SERVER=$(command -v redis-server || true)
    [[ -n "$REDIS_SERVER" ]] || die "redis-server not found: install Debian's package (apt-get install -y redis-server) or set K8SDEPLOY_TEST_REDIS_URL"
  fi
  command -v openssl >/dev/null || die "openssl not found"
  command -v htpasswd >/dev/null || die "htpasswd not found (the registry's bcrypt password file): apt-get install -y apache2-utils"
  command -v curl >/dev/null || die "curl not found"
  if [[ "$KIND" == kwok ]]; then
    command -v kubectl >/dev/null || die "kubectl not found"
    command -v go >/dev/null || die "go not found (needed to build the control plane)"
  fi

  mkdir -p "$STATE" "$PIDS" "$LOGS"
  touch "$MARKER"
  local bins; bins=$(tool_path)
  export PATH="$bins:$PATH"

  # Ports: keep the recorded ones (data, certificates and kubeconfigs refer to them).
  if [[ -z "$EXTERNAL_REDIS_URL" && -z "${REDIS_PORT:-}" ]]; then REDIS_PORT=$(free_port); fi
  if [[ -z "${REGISTRY_PORT:-}" ]]; then REGISTRY_PORT=$(free_port); fi
  if [[ "$KIND" == kwok ]]; then
    for v in ETCD_PORT ETCD_PEER_PORT APISERVER_PORT KCM_PORT SCHEDULER_PORT KWOK_PORT; do
      if [[ -z "${!v:-}" ]]; then printf -v "$v" '%s' "$(free_port)"; fi
    done
  fi
  save_state

  STARTED=()
  if [[ -z "$EXTERNAL_REDIS_URL" ]]; then
    ensure redis
    wait_for redis 30 redis_ping "$REDIS_PORT"
  fi
  make_registry_files
  ensure registry
  wait_for registry 30 registry_healthy

  if [[ "$KIND" == kwok ]]; then
    make_certs
    make_tokens_and_kubeconfigs
    make_kwok_stages

    ensure etcd
    wait_for etcd 60 etcd_healthy
    ensure kube-apiserver
    wait_for kube-apiserver 180 apiserver_ready
    ensure kube-controller-manager
    ensure kube-scheduler
    ensure kwok
    wait_for kube-controller-manager 120 https_healthz "$KCM_PORT"
    wait_for kube-scheduler 120 https_healthz "$SCHEDULER_PORT"
    wait_for kwok 60 kwok_healthy

    kc apply -f "$HERE/manifests.yaml" >/dev/null
    wait_for kwok 120 node_ready
    wait_for kube-controller-manager 120 default_sa_exists
  else
    kubectl --kubeconfig "$EXTERNAL_KUBECONFIG" --request-timeout=10s get --raw /readyz >/dev/null 2>&1 ||
      log "warning: the external cluster in $EXTERNAL_KUBECONFIG did not answer /readyz"
  fi

  local took=$((SECONDS - t0))
  {
    echo "----------------------------------------------------------------"
    echo "k8sdeploy test bed is up ($KIND) in $STATE"
    if [[ "$KIND" == kwok ]]; then
      echo "  kube-apiserver  https://127.0.0.1:$APISERVER_PORT  ($(kc version -o json 2>/dev/null | sed -n 's/.*"gitVersion": "\(v[^"]*\)".*/\1/p' | tail -n 1))"
      echo "  node            $NODE_NAME Ready (kwok)"
      echo "  admin           $STATE/admin.kubeconfig"
      echo "  limited         $STATE/limited.kubeconfig (k8sdeploy-limited: get/list/watch deployments in default)"
    else
      echo "  cluster         $EXTERNAL_KUBECONFIG"
    fi
    if [[ -n "$EXTERNAL_REDIS_URL" ]]; then echo "  redis           $EXTERNAL_REDIS_URL (external)"
    else echo "  redis           redis://127.0.0.1:$REDIS_PORT (pidfile $PIDS/redis.pid)"; fi
    echo "  registry        https://127.0.0.1:$REGISTRY_PORT  (user $REGISTRY_USER, CA $CERTS/ca.crt)"
    if ((${#STARTED[@]})); then echo "  started         ${STARTED[*]}"; else echo "  started         nothing (all already running)"; fi
    echo "  use:            eval \"\$(npm run --silent testbed -- env)\""
    echo "up took ${took}s"
  } >&2
}

# Dies with a message if the test bed is not up (cheap: pid checks only).
require_up() {
  load_state || die "test bed is not up (no $STATE/testbed.env); run: npm run testbed -- up"
  local name
  for name in $(state_procs); do
    running "$name" || die "test bed is not fully up ($name is not running); run: npm run testbed -- up"
  done
  [[ "$KIND" != kwok || -s "$STATE/admin.kubeconfig" ]] || die "admin kubeconfig missing; run: npm run testbed -- up"
}

cmd_env() {
  require_up
  local bins; bins=$(tool_path 2>/dev/null) || die "could not compute the tool PATH (run: npm run testbed -- up)"
  q() { printf 'export %s=%q\n' "$1" "$2"; }
  if [[ "$KIND" == kwok ]]; then
    q KUBECONFIG "$STATE/admin.kubeconfig"
    q K8SDEPLOY_TESTBED_LIMITED_KUBECONFIG "$STATE/limited.kubeconfig"
  else
    q KUBECONFIG "$EXTERNAL_KUBECONFIG"
  fi
  if [[ -n "$EXTERNAL_REDIS_URL" ]]; then
    q K8SDEPLOY_REDIS_URL "$EXTERNAL_REDIS_URL"
  else
    q K8SDEPLOY_REDIS_URL "redis://127.0.0.1:$REDIS_PORT"
    q K8SDEPLOY_TESTBED_REDIS_PORT "$REDIS_PORT"
    q K8SDEPLOY_TESTBED_REDIS_PIDFILE "$PIDS/redis.pid"
  fi
  q K8SDEPLOY_TEST_REGISTRY "127.0.0.1:$REGISTRY_PORT"
  q K8SDEPLOY_TEST_REGISTRY_USER "$REGISTRY_USER"
  q K8SDEPLOY_TEST_REGISTRY_PASSWORD "$(registry_password)"
  q K8SDEPLOY_TEST_REGISTRY_CA "$CERTS/ca.crt"
  q K8SDEPLOY_TEST_REGISTRY_AUTHFILE "$REGISTRY_DIR/docker/config.json"
  q K8SDEPLOY_TESTBED_STATE "$STATE"
  q K8SDEPLOY_TESTBED_KIND "$KIND"
  # The caller's PATH, not ours (npm run adds node_modules/.bin dirs to ours).
  # shellcheck disable=SC2016
  printf 'export PATH=%q:"$PATH"\n' "$bins"
}

cmd_status() {
  load_state || { echo "test bed is not up (no $STATE/testbed.env)"; return 1; }
  local bad=0 name pid alive health
  echo "k8sdeploy test bed ($KIND) in $STATE"
  printf '  %-24s %-8s %-6s %-6s %s\n' PROCESS PID ALIVE PORT HEALTH
  for name in $(state_procs); do
    pid=$(pid_of "$name" || true)
    if running "$name"; then
      alive=yes
      if healthy "$name" >/dev/null 2>&1; then health=ok; else health=FAILING; bad=1; fi
    else
      alive=NO; health=-; bad=1
    fi
    printf '  %-24s %-8s %-6s %-6s %s\n' "$name" "${pid:--}" "$alive" "$(port_of "$name")" "$health"
  done
  [[ -n "$EXTERNAL_REDIS_URL" ]] && echo "  redis: external $EXTERNAL_REDIS_URL"
  if [[ "$KIND" == kwok ]]; then
    if running kube-apiserver && node_ready; then echo "  node $NODE_NAME: Ready"
    else echo "  node $NODE_NAME: NOT Ready"; bad=1; fi
  else
    if kubectl --kubeconfig "$EXTERNAL_KUBECONFIG" --request-timeout=10s get --raw /readyz >/dev/null 2>&1; then
      echo "  external cluster $EXTERNAL_KUBECONFIG: ready"
    else echo "  external cluster $EXTERNAL_KUBECONFIG: NOT ready"; bad=1; fi
  fi
  return "$bad"
}

# stop_group NAME...: SIGTERM the recorded pids of NAMEs, SIGKILL whatever is left after 10 s,
# and fail if any survives. Counts stopped processes in STOPPED.
stop_group() {
  local names=() pids=() name pid i left deadline=$((SECONDS + 10))
  for name in "$@"; do
    pid=$(pid_of "$name" || true)
    if [[ -n "$pid" ]] && pid_is_ours "$name" "$pid"; then names+=("$name"); pids+=("$pid"); fi
  done
  ((${#pids[@]})) || return 0
  for i in "${!pids[@]}"; do
    log "stopping ${names[$i]} (pid ${pids[$i]})"
    kill -TERM "${pids[$i]}" 2>/dev/null || true
  done
  while :; do
    left=()
    for i in "${!pids[@]}"; do if pid_is_ours "${names[$i]}" "${pids[$i]}"; then left+=("$i"); fi; done
    ((${#left[@]} == 0)) && break
    if ((SECONDS >= deadline)); then
      for i in "${left[@]}"; do log "killing ${names[$i]} (pid ${pids[$i]})"; kill -KILL "${pids[$i]}" 2>/dev/null || true; done
      sleep 1
      for i in "${left[@]}"; do
        if pid_is_ours "${names[$i]}" "${pids[$i]}"; then die "${names[$i]} (pid ${pids[$i]}) survived SIGKILL; state left in $STATE"; fi
      done
      break
    fi
    sleep 0.2
  done
  STOPPED=$((STOPPED + ${#pids[@]}))
}

cmd_down() {
  if [[ ! -d "$STATE" ]]; then log "nothing to stop ($STATE does not exist)"; return 0; fi
  [[ -f "$MARKER" ]] || die "$STATE is not a test bed state directory (no $MARKER); not touching it"
  load_state || true
  REDIS_PORT=${REDIS_PORT:-}
  STOPPED=0
  # Clients first, then the apiserver (it shuts down in ~2 s while etcd is still there, but hangs
  # when etcd goes first), then the stores.
  stop_group kwok kube-scheduler kube-controller-manager
  stop_group kube-apiserver
  stop_group etcd redis registry
  rm -rf "$STATE"
  log "stopped $STOPPED process(es), removed $STATE"
}

# up and down take a lock (a file beside the state dir, since down removes the dir) so that two
# of them cannot race; fd 9 is closed for the processes they start.
lock() {
  command -v flock >/dev/null || return 0
  mkdir -p "$(dirname "$STATE")"
  exec 9>"$STATE.lock"
  flock -w 3600 9 || die "another testbed.sh up/down holds $STATE.lock"
}

case "${1:-}" in
  up) lock; cmd_up ;;
  env) cmd_env ;;
  status) cmd_status ;;
  down) lock; cmd_down ;;
  *) echo "usage: $(basename "$0") up|env|status|down" >&2; exit 2 ;;
esac
