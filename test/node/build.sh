#!/usr/bin/env bash
# Builds (or finds in the cache) everything test/node boots besides the Kubernetes binaries
# (test/e2e/control-plane/build.sh builds those): the VM harness's kernel and initramfs
# (test/vm/build-base.sh), the node's root disk for that kernel (build-rootfs.sh), the pause
# and toolbox images (images/build-images.sh) and CoreDNS (images/build-coredns.sh, needs Go).
# Idempotent; each step exits at once when cached.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
vm_build=$here/../vm/build-base.sh
[ -f "$vm_build" ] || { echo "test/node/build.sh: $vm_build is missing (the VM harness)" >&2; exit 1; }

base=$(bash "$vm_build" | tail -n1)
pkg=$(sed -n 's/^kernel_package=//p' "$base/versions")
version=$(sed -n "s/^$pkg=//p" "$base/versions")
if [ -z "$pkg" ] || [ -z "$version" ]; then
  echo "test/node/build.sh: no kernel package in $base/versions" >&2
  exit 1
fi
bash "$here/build-rootfs.sh" "$pkg=$version" >/dev/null
bash "$here/images/build-images.sh" >/dev/null
bash "$here/images/build-coredns.sh" >/dev/null
echo "test/node: VM base $base, root disk, images and CoreDNS ready" >&2
