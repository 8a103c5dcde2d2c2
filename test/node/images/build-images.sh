#!/usr/bin/env bash
# Builds the two small images the test node needs besides the shipped ones, as OCI archives for
# `ctr images import` (no registry is reachable):
#   localhost/dfs-pause:1    the pod sandbox image (containerd's sandbox_image): pause.c, static
#   localhost/dfs-toolbox:1  BusyBox (Debian's busybox-static), a shell for test pods, and the
#                            project's FUSE fixture shim/test/nlink0fs.c at /usr/local/bin/nlink0fs
#                            (built against the host's libfuse3; its libraries are copied along)
#
# Output: ${DFS_NODE_CACHE:-~/.cache/dfs-injector/k8s-node}/images-<key>/{pause,toolbox}.tar,
# keyed by these sources and the busybox-static version. The last line on stdout is the
# directory. Needs musl-gcc (musl-tools), cc with libfuse3-dev and pkg-config, and apt-get.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${DFS_NODE_CACHE:-$HOME/.cache/dfs-injector/k8s-node}
nlink0fs=$here/../../../shim/test/nlink0fs.c
busybox_version=$(apt-cache policy busybox-static | awk '/Candidate:/ { print $2 }')
if [ -z "$busybox_version" ] || [ "$busybox_version" = "(none)" ]; then
  echo "build-images: apt knows no busybox-static (run apt-get update)" >&2
  exit 1
fi
key=$({ echo "busybox-static=$busybox_version"; (cd "$here" && sha256sum pause.c build-images.sh oci-archive.sh ../../../shim/test/nlink0fs.c); } |
  sha256sum | cut -c1-16)
out=$cache/images-$key
if [ -f "$out/done" ]; then
  echo "$out"
  exit 0
fi
# DFS_NODE_CHECK_ONLY=1: report whether the output exists, never build (test/node/node.ts).
if [ "${DFS_NODE_CHECK_ONLY:-}" = 1 ]; then
  echo "not built yet: $out" >&2
  exit 3
fi
command -v musl-gcc >/dev/null || { echo "build-images: musl-gcc missing (apt-get install musl-tools)" >&2; exit 1; }

mkdir -p "$cache"
work=$(mktemp -d "$cache/.images-XXXXXX")
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/pause"
musl-gcc -static -Os -s -Wall -Wextra -Werror -o "$work/pause/pause" "$here/pause.c"
bash "$here/oci-archive.sh" localhost/dfs-pause:1 "$work/pause" "$work/pause.tar" /pause

(cd "$work" && apt-get download -q "busybox-static=$busybox_version" >&2)
dpkg-deb -x "$work"/busybox-static_*.deb "$work/bb"
tb=$work/toolbox
mkdir -p "$tb/bin" "$tb/etc" "$tb/tmp" "$tb/root"
cp "$work/bb/bin/busybox" "$tb/bin/busybox"
applets=$("$tb/bin/busybox" --list)
for applet in $applets; do
  [ -e "$tb/bin/$applet" ] || ln -s busybox "$tb/bin/$applet"
done
chmod 1777 "$tb/tmp"
mkdir -p "$tb/usr/local/bin"
# shellcheck disable=SC2046 # pkg-config prints several words on purpose
cc -O2 -Wall -Wextra -Werror $(pkg-config --cflags fuse3) -o "$tb/usr/local/bin/nlink0fs" "$nlink0fs" $(pkg-config --libs fuse3)
# The dynamic loader and every library, at the paths the binary asks for.
for lib in $(ldd "$tb/usr/local/bin/nlink0fs" | grep -oE '/[^ ]+'); do
  mkdir -p "$tb$(dirname "$lib")"
  cp -L "$lib" "$tb$lib"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$tb/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$tb/etc/group"
bash "$here/oci-archive.sh" localhost/dfs-toolbox:1 "$tb" "$work/toolbox.tar" /bin/sh

mkdir -p "$out"
mv "$work/pause.tar" "$work/toolbox.tar" "$out/"
touch "$out/done"
echo "$out"
