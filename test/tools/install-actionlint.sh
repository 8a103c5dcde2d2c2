#!/usr/bin/env bash
# actionlint, which checks the GitHub workflows; built from the Go module proxy (no release
# download is reachable here) into the tools cache by install-go-tool.sh.
set -euo pipefail
ACTIONLINT_VERSION="${ACTIONLINT_VERSION:-v1.7.12}"
exec bash "$(dirname "$0")/install-go-tool.sh" actionlint github.com/rhysd/actionlint/cmd/actionlint "$ACTIONLINT_VERSION"
