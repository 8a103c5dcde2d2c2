#!/usr/bin/env bash
# Builds the loopback control plane used by the e2e suite (kube-apiserver,
# kube-controller-manager, etcd) and the binaries of the test node (kube-scheduler,
# kubelet, kube-proxy, kubectl; test/node) from Go modules, because no container
# engine or release download is available: only the Go module proxy is.
#
# Output: ${DFS_E2E_BIN_DIR:-$HOME/.cache/dfs-injector/control-plane}/
#           k8s-<K8S_VERSION>/{kube-apiserver,kube-controller-manager}
#           k8s-<K8S_VERSION>/{kube-scheduler,kubelet,kube-proxy,kubectl}
#           etcd-<ETCD_VERSION>/etcd
# The last line on stdout is the cache root. A second run with the binaries in
# place exits at once.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# versions.env is parsed, not sourced: the TS harness reads the same KEY=value lines.
pinned() { sed -nE "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*[\"']?([^\"'[:space:]]*).*/\1/p" "$here/versions.env" | tail -n1; }
K8S_VERSION="$(pinned K8S_VERSION)"
ETCD_VERSION="$(pinned ETCD_VERSION)"
: "${K8S_VERSION:?K8S_VERSION missing in versions.env}"
: "${ETCD_VERSION:?ETCD_VERSION missing in versions.env}"

root="${DFS_E2E_BIN_DIR:-$HOME/.cache/dfs-injector/control-plane}"
k8s_dir="$root/k8s-$K8S_VERSION"
etcd_dir="$root/etcd-$ETCD_VERSION"
proxy="${GOPROXY_URL:-https://proxy.golang.org}"

log() { printf '[control-plane build] %s\n' "$*" >&2; }

CONTROL_PLANE=(kube-apiserver kube-controller-manager)
NODE=(kube-scheduler kubelet kube-proxy kubectl)

have() { # binaries... in k8s_dir
  local b
  for b in "$@"; do [[ -x "$k8s_dir/$b" ]] || return 1; done
}

have_all() {
  have "${CONTROL_PLANE[@]}" "${NODE[@]}" && [[ -x "$etcd_dir/etcd" ]]
}

if have_all; then
  echo "$root"
  exit 0
fi

command -v go >/dev/null || { log "go not found in PATH (try /usr/local/go/bin)"; exit 1; }
command -v curl >/dev/null || { log "curl not found"; exit 1; }

mkdir -p "$root"
# Two test runs may start the first build at the same moment; the second waits
# for the first rather than racing it into the same directory.
exec 9>"$root/.build.lock"
if command -v flock >/dev/null; then
  flock 9
fi
if have_all; then
  echo "$root"
  exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/dfs-cp-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# The wrapper modules must not inherit a workspace or vendor mode from the
# caller's environment, and static binaries run on any glibc.
export GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0
start=$SECONDS

build_etcd() {
  [[ -x "$etcd_dir/etcd" ]] && return 0
  log "building etcd $ETCD_VERSION"
  local w="$work/etcd"
  mkdir -p "$w"
  # server/v3 holds package main (the etcd binary); its own replace directives
  # point into the etcd repository and are ignored for a dependency, and the
  # sibling modules it requires are published at the same version.
  cat >"$w/go.mod" <<MOD
module dfs-injector.test/etcd-build

go 1.25.0

require go.etcd.io/etcd/server/v3 $ETCD_VERSION

tool go.etcd.io/etcd/server/v3
MOD
  (cd "$w" && go mod tidy && go build -trimpath \
      -ldflags="-s -w" -o "$w/out/etcd" go.etcd.io/etcd/server/v3)
  mkdir -p "$etcd_dir"
  mv -f "$w/out/etcd" "$etcd_dir/etcd"
}

build_k8s() { # binaries... (names of k8s.io/kubernetes/cmd/<name>)
  have "$@" && return 0
  log "building $* $K8S_VERSION"
  local w="$work/k8s-$1"
  mkdir -p "$w"
  local staging_version="v0.${K8S_VERSION#v1.}"
  local upstream_mod="$w/kubernetes.mod"
  curl -fsSL "$proxy/k8s.io/kubernetes/@v/$K8S_VERSION.mod" -o "$upstream_mod"

  # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them
  # with ./staging paths, which a dependent module cannot see. Replace each
  # one with its published twin (v1.X.Y <-> v0.X.Y).
  local replaces
  replaces="$(sed -nE 's#^[[:space:]]*(k8s\.io/[^[:space:]]+)[[:space:]]+=>[[:space:]]+\./staging/.*#\1#p' "$upstream_mod" |
    sort -u | while read -r m; do printf '\t%s => %s %s\n' "$m" "$m" "$staging_version"; done)"
  [[ -n "$replaces" ]] || { log "no staging replace directives found in $K8S_VERSION go.mod"; exit 1; }
  local go_line godebug_line
  go_line="$(grep -m1 -E '^go [0-9]' "$upstream_mod")"
  godebug_line="$(grep -m1 -E '^godebug ' "$upstream_mod" || true)"
  local tools="" pkgs=() b
  for b in "$@"; do
    tools+=$'\t'"k8s.io/kubernetes/cmd/$b"$'\n'
    pkgs+=("k8s.io/kubernetes/cmd/$b")
  done

  cat >"$w/go.mod" <<MOD
module dfs-injector.test/k8s-build

$go_line

$godebug_line

require k8s.io/kubernetes $K8S_VERSION

replace (
$replaces
)

tool (
$tools)
MOD

  # The same version stamps hack/lib/version.sh sets; without them the
  # binaries report v0.0.0-master and /version is useless in test output.
  local minor="${K8S_VERSION#v1.}"
  minor="${minor%%.*}"
  local ldflags="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  done

  # CGO_ENABLED=0 (above) for the kubelet too: static, it runs on the node's trixie as is
  # (test/node boots it).
  (cd "$w" && go mod tidy && go build -trimpath -ldflags="$ldflags" -o "$w/out/" "${pkgs[@]}")
  mkdir -p "$k8s_dir"
  for b in "$@"; do mv -f "$w/out/$b" "$k8s_dir/"; done
}

build_etcd
log "etcd done after $((SECONDS - start)) s"
build_k8s "${CONTROL_PLANE[@]}"
log "control plane done after $((SECONDS - start)) s"
# The node's binaries share most packages with the API server: built second, they reuse its
# build cache.
build_k8s "${NODE[@]}"
log "all done after $((SECONDS - start)) s"

have_all || { log "binaries missing after build"; exit 1; }
echo "$root"
