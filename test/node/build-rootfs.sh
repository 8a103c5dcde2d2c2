#!/usr/bin/env bash
# Builds the root disk of the test node (test/node): Debian trixie with containerd, runc, the
# CNI plugins, cifs-utils, iptables and the kernel modules of the VM harness's kernel, plus the
# files under test/node/rootfs (the node's init, containerd, CNI, kubelet and kube-proxy
# configuration). kubelet and kube-proxy themselves are not in it: the host hands them over at
# boot through a 9p share, so a Kubernetes version change does not rebuild the disk.
#
#   test/node/build-rootfs.sh KERNEL_PACKAGE=VERSION
#       e.g. linux-image-6.12.117+deb13-amd64=6.12.117-1: the kernel the VM boots, whose modules
#       (overlay, bridge, veth, br_netfilter, nf_*, cifs, ...) the disk must carry.
#
# Output: ${DFS_NODE_CACHE:-~/.cache/dfs-injector/k8s-node}/rootfs-<key>.ext4, a raw ext4 image,
# and rootfs-<key>.initrd, a cpio archive to append to the VM harness's initramfs: the
# switch-root.sh that mounts the disk (as /dfs-switch-root, for rdinit=) and the modules ext4
# needs that the harness's initramfs lacks. Keyed by this script, switch-root.sh, test/node/rootfs
# and the kernel package. The last line on stdout is the image's path. A second run with the
# image in place exits at once. Needs root, mmdebstrap, mke2fs, cpio.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
kernel=${1:?usage: build-rootfs.sh KERNEL_PACKAGE=VERSION}
case $kernel in linux-image-*=*) ;; *)
  echo "build-rootfs: expected KERNEL_PACKAGE=VERSION (linux-image-...=...), got '$kernel'" >&2
  exit 2
  ;;
esac
cache=${DFS_NODE_CACHE:-$HOME/.cache/dfs-injector/k8s-node}
# The security suite too: the harness's kernel is the newest trixie has, often from there.
mirror=${DFS_NODE_MIRROR:-http://deb.debian.org/debian}
security=${DFS_NODE_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

# What a kubelet node needs besides the kubelet: the runtime and its network plugins, the tools
# kube-proxy and the kubelet call (iptables, conntrack, ip, mount, ...), the CIFS helper the
# mounter's own image does not bring to the host, and tini to reap orphans as PID 1.
PACKAGES=(containerd runc containernetworking-plugins cifs-utils iptables conntrack ethtool iproute2
  util-linux mount kmod ca-certificates procps tini busybox "$kernel")

key=$(
  {
    printf '%s\n' "${PACKAGES[@]}" "$mirror" "$security"
    (cd "$here" && sha256sum build-rootfs.sh switch-root.sh)
    (cd "$here/rootfs" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
  } | sha256sum | cut -c1-16
)
out=$cache/rootfs-$key.ext4
initrd=$cache/rootfs-$key.initrd
if [ -f "$out" ] && [ -f "$initrd" ]; then
  echo "$out"
  exit 0
fi

# DFS_NODE_CHECK_ONLY=1: report whether the output exists, never build (test/node/node.ts).
if [ "${DFS_NODE_CHECK_ONLY:-}" = 1 ]; then
  echo "not built yet: $out" >&2
  exit 3
fi
mkdir -p "$cache"
exec 9>"$cache/.build.lock"
flock 9
if [ -f "$out" ] && [ -f "$initrd" ]; then
  echo "$out"
  exit 0
fi

start=$SECONDS
work=$(mktemp -d "$cache/.build-XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "build-rootfs: building $out" >&2

include=$(IFS=,; echo "${PACKAGES[*]}")
# minbase and no recommends: no systemd, no initramfs-tools (the harness boots its own).
# The hooks are run by mmdebstrap with the root directory as $1, hence the single quotes.
# shellcheck disable=SC2016
mmdebstrap --mode=root --variant=minbase --include="$include" \
  --customize-hook="sync-in '$here/rootfs' /" \
  --customize-hook='printf "127.0.0.1 localhost dfs-node\n" >"$1/etc/hosts"' \
  --customize-hook='printf "nameserver 127.0.0.1\n" >"$1/etc/resolv.conf"' \
  --customize-hook='printf "dfs-node\n" >"$1/etc/hostname"' \
  --customize-hook='mkdir -p "$1/run/dfs-node" "$1/opt/dfs-k8s" "$1/var/lib/kubelet" "$1/mnt/decypharr-dfs"' \
  --customize-hook='chmod 0755 "$1/sbin/dfs-node-init"' \
  trixie "$work/root" "deb $mirror trixie main" "deb $security trixie-security main" >&2

ls "$work/root/usr/lib/modules/"*/modules.dep >/dev/null || { echo "build-rootfs: no modules.dep in the image" >&2; exit 1; }

# ext4 asks the crypto API for "crc32c" by name, so no modules.dep entry pulls it in; the
# harness's initramfs does not carry it. Decompressed: BusyBox insmod may not read .xz.
mkdir -p "$work/initrd/dfs-modules"
xz -dc "$work/root/usr/lib/modules/"*/kernel/crypto/crc32c_generic.ko.xz >"$work/initrd/dfs-modules/crc32c_generic.ko"
install -m 0755 "$here/switch-root.sh" "$work/initrd/dfs-switch-root"
(cd "$work/initrd" && find . -mindepth 1 | cpio -o -H newc --quiet) | gzip -1 >"$work/rootfs.initrd"
# Room for the imported images and the containers' writable layers; the file is sparse and the
# VM writes to a throw-away overlay (snapshot=on), so the image itself never changes.
used=$(du -sm "$work/root" | cut -f1)
mke2fs -q -t ext4 -L dfs-node -E root_owner=0:0 -d "$work/root" "$work/rootfs.ext4" "$((used + 3072))M"
mv "$work/rootfs.initrd" "$initrd"
mv "$work/rootfs.ext4" "$out"
echo "build-rootfs: done in $((SECONDS - start)) s (${used} MB of files)" >&2
echo "$out"
