#!/usr/bin/env bash
# Installs the kustomize the manifest tests render with, from the Go module proxy (no release
# download is reachable here). Idempotent: a second run with the right version in place exits at
# once. The binary goes to a cache outside the repository so a fresh clone, CI included, reuses it.
#
# Output: ${DFS_TOOLS_BIN_DIR:-$HOME/.cache/dfs-injector/bin}/kustomize
# The last line on stdout is the binary's path.
set -euo pipefail

# v5.8.3 needs go >= 1.27; this machine has go 1.26, and GOTOOLCHAIN=local forbids fetching a newer one.
KUSTOMIZE_VERSION="${KUSTOMIZE_VERSION:-v5.8.2}"
bin_dir="${DFS_TOOLS_BIN_DIR:-$HOME/.cache/dfs-injector/bin}"
target="$bin_dir/kustomize"

log() { printf '[install-kustomize] %s\n' "$*" >&2; }

installed_version() {
  # `kustomize version` prints e.g. "v5.8.3"; older builds print a struct, so match loosely.
  [[ -x "$target" ]] && "$target" version 2>/dev/null | grep -o 'v[0-9][0-9.]*' | head -n 1
}

if [[ "$(installed_version || true)" == "$KUSTOMIZE_VERSION" ]]; then
  echo "$target"
  exit 0
fi

if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
  PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null || { log "go not found in PATH (try /usr/local/go/bin)"; exit 1; }

mkdir -p "$bin_dir"
# Two test runs may start the first install at once; the second waits instead of racing.
exec 9>"$bin_dir/.kustomize.lock"
if command -v flock >/dev/null; then
  flock 9
fi
if [[ "$(installed_version || true)" == "$KUSTOMIZE_VERSION" ]]; then
  echo "$target"
  exit 0
fi

log "building kustomize $KUSTOMIZE_VERSION into $bin_dir"
start=$SECONDS
# A caller's workspace or vendor mode must not leak into the tool build; a static binary runs anywhere.
GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 GOBIN="$bin_dir" \
  go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
got="$(installed_version || true)"
if [[ "$got" != "$KUSTOMIZE_VERSION" ]]; then
  log "built kustomize reports version '${got:-?}', expected $KUSTOMIZE_VERSION"
  exit 1
fi
log "done in $((SECONDS - start))s"
echo "$target"
