#!/usr/bin/env bash
# promtool, for `promtool check rules` and `promtool test rules` of the shipped alert rules.
# github.com/prometheus/prometheus v0.316.0 is Prometheus 3.16.0 (the Go module's v0.X.Y tags
# mirror the v3.X.Y releases); it needs go 1.26.7, and this machine has 1.26.8.
# remove_all_sd leaves out every service-discovery plugin (AWS, Azure, GCE, Kubernetes, ...), most
# of the build: `promtool check rules` and `promtool test rules` use none of them.
set -euo pipefail
PROMTOOL_VERSION="${PROMTOOL_VERSION:-v0.316.0}"
exec bash "$(dirname "$0")/install-go-tool.sh" promtool github.com/prometheus/prometheus/cmd/promtool "$PROMTOOL_VERSION" remove_all_sd
