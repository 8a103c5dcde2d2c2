#!/usr/bin/env bash
# Builds the two small images the test node needs besides the shipped ones, as OCI archives for
# `ctr images import` (no registry is reachable):
#   localhost/dfs-pause:1    the pod sandbox image (containerd's sandbox_image): pause.c, static
#   localhost/dfs-toolbox:1  BusyBox (Debian trixie's busybox-static), a shell for test pods, and the
#                            project's FUSE fixture shim/test/nlink0fs.c at /usr/local/bin/nlink0fs
#                            (built against the host's libfuse3; its libraries are copied along)
#
# Output: ${DFS_NODE_CACHE:-~/.cache/dfs-injector/k8s-node}/images-<key>/{pause,toolbox}.tar,
# keyed by these sources and the busybox-static version. The last line on stdout is the
# directory. Before packing, check-toolbox.sh runs the applets the suites use inside the tree and
# stops the build, naming the applet, if one crashes. Needs musl-gcc (musl-tools), cc with
# libfuse3-dev and pkg-config, apt-get, and root (chroot, unshare --net) for the check.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${DFS_NODE_CACHE:-$HOME/.cache/dfs-injector/k8s-node}
nlink0fs=$here/../../../shim/test/nlink0fs.c

# BusyBox comes from Debian trixie, not from the host's bookworm: bookworm's busybox-static
# (1:1.35.0-4+deb12u1+b1) is built without CONFIG_FEATURE_WGET_TIMEOUT, and its wget dies of
# SIGSEGV whenever -T is given, even against a listener that answers (Debian enabled the option
# in 1:1.36.1-5). apt-get reads trixie through a private configuration under the cache (as
# test/vm/build-base.sh does), so the machine's own sources stay untouched.
suite=trixie
apt_dir=$cache/apt-$suite
if [ "${DFS_NODE_CHECK_ONLY:-}" != 1 ]; then
  mkdir -p "$apt_dir"/{lists/partial,archives/partial,etc,cache}
  cat >"$apt_dir/etc/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main
SRC
  [ -f "$apt_dir/etc/status" ] || : >"$apt_dir/etc/status"
fi
apt_options=(-o "Dir::Etc::SourceList=$apt_dir/etc/sources.list" -o "Dir::Etc::SourceParts=-"
  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::State::Status=$apt_dir/etc/status"
  -o "Dir::Cache=$apt_dir/cache" -o "Dir::Cache::Archives=$apt_dir/archives" -o "APT::Architecture=amd64")
# Refresh the list at most once a day (the version decides the cache key); never in check-only mode.
if [ "${DFS_NODE_CHECK_ONLY:-}" != 1 ] && [ -z "$(find "$apt_dir/lists" -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
  apt-get -q "${apt_options[@]}" -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root" update >&2
fi
busybox_version=
[ -f "$apt_dir/etc/sources.list" ] && busybox_version=$(apt-cache "${apt_options[@]}" policy busybox-static | awk '/Candidate:/ { print $2 }')
if [ -z "$busybox_version" ] || [ "$busybox_version" = "(none)" ]; then
  echo "build-images: no busybox-static in Debian $suite's package list under $apt_dir (run bash test/node/images/build-images.sh)" >&2
  exit "$([ "${DFS_NODE_CHECK_ONLY:-}" = 1 ] && echo 3 || echo 1)"
fi
key=$({ echo "busybox-static=$suite/$busybox_version"; (cd "$here" && sha256sum pause.c build-images.sh check-toolbox.sh oci-archive.sh ../../../shim/test/nlink0fs.c); } |
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

(cd "$work" && apt-get download -q "${apt_options[@]}" -o "APT::Sandbox::User=root" "busybox-static=$busybox_version" >&2)
dpkg-deb -x "$work"/busybox-static_*.deb "$work/bb"
tb=$work/toolbox
mkdir -p "$tb/bin" "$tb/etc" "$tb/tmp" "$tb/root"
# trixie ships it in /usr/bin (merged /usr), bookworm in /bin.
cp "$work/bb/usr/bin/busybox" "$tb/bin/busybox" 2>/dev/null || cp "$work/bb/bin/busybox" "$tb/bin/busybox"
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
bash "$here/check-toolbox.sh" "$tb"
bash "$here/oci-archive.sh" localhost/dfs-toolbox:1 "$tb" "$work/toolbox.tar" /bin/sh

mkdir -p "$out"
mv "$work/pause.tar" "$work/toolbox.tar" "$out/"
touch "$out/done"
echo "$out"
