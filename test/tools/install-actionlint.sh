#!/usr/bin/env bash
# Installs the actionlint that checks the GitHub workflows, from the Go module proxy (no release
# download is reachable here). Idempotent: a second run with the right version in place exits at
# once. The binary goes to a cache outside the repository so a fresh clone, CI included, reuses it.
#
# Output: ${DFS_TOOLS_BIN_DIR:-$HOME/.cache/dfs-injector/bin}/actionlint
# The last line on stdout is the binary's path.
set -euo pipefail

ACTIONLINT_VERSION="${ACTIONLINT_VERSION:-v1.7.12}"
bin_dir="${DFS_TOOLS_BIN_DIR:-$HOME/.cache/dfs-injector/bin}"
target="$bin_dir/actionlint"

log() { printf '[install-actionlint] %s\n' "$*" >&2; }

installed_version() {
  # `actionlint -version` prints the module version first, e.g. "v1.7.12".
  [[ -x "$target" ]] && "$target" -version 2>/dev/null | grep -o 'v[0-9][0-9.]*' | head -n 1
}

if [[ "$(installed_version || true)" == "$ACTIONLINT_VERSION" ]]; then
  echo "$target"
  exit 0
fi

if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
  PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null || { log "go not found in PATH (try /usr/local/go/bin)"; exit 1; }

mkdir -p "$bin_dir"
# Two test runs may start the first install at once; the second waits instead of racing.
exec 9>"$bin_dir/.actionlint.lock"
if command -v flock >/dev/null; then
  flock 9
fi
if [[ "$(installed_version || true)" == "$ACTIONLINT_VERSION" ]]; then
  echo "$target"
  exit 0
fi

log "building actionlint $ACTIONLINT_VERSION into $bin_dir"
start=$SECONDS
# A caller's workspace or vendor mode must not leak into the tool build; a static binary runs anywhere.
GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 GOBIN="$bin_dir" \
  go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
got="$(installed_version || true)"
if [[ "$got" != "$ACTIONLINT_VERSION" ]]; then
  log "built actionlint reports version '${got:-?}', expected $ACTIONLINT_VERSION"
  exit 1
fi
log "done in $((SECONDS - start))s"
echo "$target"
