#!/usr/bin/env bash
# Builds CoreDNS from its Go module (no registry is reachable, only the Go module proxy) with
# only the plugins test/node/addons/coredns.yaml's Corefile uses (a main of our own around
# coremain, as CoreDNS documents for custom builds: 780 packages instead of 1,380, about 85 s of
# compiling instead of many minutes), and wraps it as localhost/dfs-coredns:1, an OCI archive for `ctr images import`: the test node's
# cluster DNS (test/node/addons/coredns.yaml).
#
# Output: ${DFS_NODE_CACHE:-~/.cache/dfs-injector/k8s-node}/coredns-<version>-<key>/coredns.tar.
# The last line on stdout is the directory. DFS_NODE_CHECK_ONLY=1: only say whether it exists.
set -euo pipefail

COREDNS_VERSION=v1.14.7
here=$(cd "$(dirname "$0")" && pwd)
cache=${DFS_NODE_CACHE:-$HOME/.cache/dfs-injector/k8s-node}
key=$( (cd "$here" && sha256sum build-coredns.sh oci-archive.sh) | sha256sum | cut -c1-16)
out=$cache/coredns-$COREDNS_VERSION-$key
if [ -f "$out/coredns.tar" ]; then
  echo "$out"
  exit 0
fi
if [ "${DFS_NODE_CHECK_ONLY:-}" = 1 ]; then
  echo "not built yet: $out" >&2
  exit 3
fi
command -v go >/dev/null || { echo "build-coredns: go not found in PATH (try /usr/local/go/bin)" >&2; exit 1; }

mkdir -p "$cache"
work=$(mktemp -d "$cache/.coredns-XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$SECONDS
export GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0
cat >"$work/go.mod" <<MOD
module dfs-injector.test/coredns-build

go 1.25.0

require github.com/coredns/coredns $COREDNS_VERSION
MOD
# The Corefile's plugins, in CoreDNS's own execution order (its plugin.cfg).
cat >"$work/main.go" <<'GO'
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/ready"
)

func init() { dnsserver.Directives = []string{"ready", "health", "errors", "cache", "kubernetes"} }

func main() { coremain.Run() }
GO
# go get, not go mod tidy: tidy would fetch the test dependencies of every package too.
(cd "$work" && go get "github.com/coredns/coredns@$COREDNS_VERSION" >&2 &&
  go build -trimpath -ldflags="-s -w" -o "$work/root/coredns" .)
bash "$here/oci-archive.sh" localhost/dfs-coredns:1 "$work/root" "$work/coredns.tar" /coredns
mkdir -p "$out"
mv "$work/coredns.tar" "$out/"
echo "build-coredns: CoreDNS $COREDNS_VERSION in $((SECONDS - start)) s" >&2
echo "$out"
