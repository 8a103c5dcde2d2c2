#!/usr/bin/env bash
# Builds one Go command from the Go module proxy into the tools cache (no release download is
# reachable here), keyed by version: a second run with that version in place exits at once.
#
#   install-go-tool.sh NAME PACKAGE VERSION [BUILD_TAGS]
#   e.g. install-go-tool.sh helm helm.sh/helm/v4/cmd/helm v4.3.2
#
# Output: ${DFS_TOOLS_BIN_DIR:-$HOME/.cache/dfs-injector/bin}/NAME, and NAME.version beside it
# holding VERSION and the build tags (a `go install` build carries no release version of its own).
# The last line on stdout is the binary's path.
set -euo pipefail

name="$1" package="$2" version="$3" tags="${4:-}"
bin_dir="${DFS_TOOLS_BIN_DIR:-$HOME/.cache/dfs-injector/bin}"
target="$bin_dir/$name"
stamp="$target.version"
want="$version${tags:+ tags=$tags}"

log() { printf '[install-%s] %s\n' "$name" "$*" >&2; }

installed() { [[ -x "$target" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; }

if installed; then
  echo "$target"
  exit 0
fi

if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
  PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null || { log "go not found in PATH (try /usr/local/go/bin)"; exit 1; }

mkdir -p "$bin_dir"
# Two test runs may start the first install at once; the second waits instead of racing.
exec 9>"$bin_dir/.$name.lock"
if command -v flock >/dev/null; then
  flock 9
fi
if installed; then
  echo "$target"
  exit 0
fi

log "building $package@$version${tags:+ (tags $tags)} into $bin_dir"
start=$SECONDS
rm -f "$stamp"
# A caller's workspace or vendor mode must not leak into the tool build; a static binary runs
# anywhere. GOTOOLCHAIN=local: fail on a too-new go directive instead of fetching a toolchain.
GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=local GOBIN="$bin_dir" \
  go install -trimpath ${tags:+-tags "$tags"} "$package@$version"
printf '%s' "$want" > "$stamp"
log "done in $((SECONDS - start))s"
echo "$target"
