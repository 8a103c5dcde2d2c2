#!/usr/bin/env bash
# Helm, for `helm lint`/`helm template` of charts/dfs-injector and the chart's e2e install.
# v4.3.2 is the newest Helm 4 whose go directive (1.26.0) this machine's Go 1.26 builds.
set -euo pipefail
HELM_VERSION="${HELM_VERSION:-v4.3.2}"
exec bash "$(dirname "$0")/install-go-tool.sh" helm helm.sh/helm/v4/cmd/helm "$HELM_VERSION"
