#!/usr/bin/env bash
# cert-manager's Issuer and Certificate CRDs, so the e2e suites can have the real API server check
# the cert-manager objects of overlays/cert-manager and the chart (server-side dry-run). They are
# taken from cert-manager's Go module on the Go module proxy (deploy/crds holds the plain CRDs;
# no release download is reachable here), not copied into the repository.
#
# Output: ${DFS_CERT_MANAGER_CRDS:-$HOME/.cache/dfs-injector/crds/cert-manager}/ with the two
# files and a .version stamp; a second run with that version in place exits at once. The last
# line on stdout is the directory.
set -euo pipefail
CERT_MANAGER_VERSION="${CERT_MANAGER_VERSION:-v1.21.2}"
FILES=(cert-manager.io_issuers.yaml cert-manager.io_certificates.yaml)
target="${DFS_CERT_MANAGER_CRDS:-$HOME/.cache/dfs-injector/crds/cert-manager}"
stamp="$target/.version"

log() { printf '[install-cert-manager-crds] %s\n' "$*" >&2; }

if [[ -f "$stamp" && "$(cat "$stamp")" == "$CERT_MANAGER_VERSION" ]]; then
  echo "$target"
  exit 0
fi

if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
  PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null || { log "go not found in PATH (try /usr/local/go/bin)"; exit 1; }

log "downloading github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION from the Go module proxy"
start=$SECONDS
# The module cache is read-only and checksummed (sum.golang.org); its Dir holds the module's files.
dir="$(GOWORK=off GOFLAGS=-mod=mod GOTOOLCHAIN=local go mod download -json "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[[ -n "$dir" && -d "$dir/deploy/crds" ]] || { log "no deploy/crds in the downloaded module (Dir: '$dir')"; exit 1; }

mkdir -p "$target"
rm -f "$stamp"
for file in "${FILES[@]}"; do
  cp "$dir/deploy/crds/$file" "$target/$file"
  chmod 644 "$target/$file"
done
printf '%s' "$CERT_MANAGER_VERSION" > "$stamp"
log "done in $((SECONDS - start))s"
echo "$target"
