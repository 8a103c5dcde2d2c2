#!/usr/bin/env bash
# kustomize, which the manifest tests render with; built from the Go module proxy (no release
# download is reachable here) into the tools cache by install-go-tool.sh.
# v5.8.3 needs go >= 1.27; this machine has go 1.26, and GOTOOLCHAIN=local forbids fetching a newer one.
set -euo pipefail
KUSTOMIZE_VERSION="${KUSTOMIZE_VERSION:-v5.8.2}"
exec bash "$(dirname "$0")/install-go-tool.sh" kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION"
