#!/usr/bin/env bash
# Installs what the full test suite needs on a fresh Debian machine, so no suite has to skip:
# Samba and a FUSE toolchain for the shim, shellcheck for the scripts, kustomize for the
# manifests, Helm for the chart, promtool for the alert rules, cert-manager's CRDs for the
# e2e checks of its kinds, a daemonless container toolchain to
# build and run the release images (buildah, podman with runc, mmdebstrap for their Debian bases),
# actionlint for the workflows, the official Node.js binaries of every supported line, QEMU and a
# Debian-kernel VM base for the real-kernel mounter tests (test/vm), a
# kube-apiserver/controller-manager/etcd built from source for the e2e suite, and the test node of
# test/node (kubelet and friends in a QEMU VM with Debian's kernel, its root disk, CoreDNS).
# Idempotent: the binaries are cached outside the repository, keyed by version.
set -euo pipefail
cd "$(dirname "$0")/.."

# qemu-system-x86, cpio, kmod (depmod), xz-utils and zstd (compressed modules) and libc6-dev (a static consumer binary) for test/vm;
# dash runs the mounter script as Debian's /bin/sh does; e2fsprogs (mke2fs -d) and iproute2
# (network namespaces, TAP) for test/node.
APT_PACKAGES=(samba smbclient libfuse3-dev fuse3 musl-tools pkg-config shellcheck openssl make gcc busybox nghttp2-client
  buildah podman runc mmdebstrap debian-archive-keyring curl qemu-system-x86 cpio kmod xz-utils zstd libc6-dev dash e2fsprogs iproute2)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

echo "setup: kustomize"
bash test/tools/install-kustomize.sh

echo "setup: actionlint"
bash test/tools/install-actionlint.sh

echo "setup: Node.js lines (test/tools/node-versions)"
grep -E '^[0-9]+\.[0-9]+\.[0-9]+$' test/tools/node-versions | while read -r version; do
  bash test/tools/install-node.sh "$version" >/dev/null
done

echo "setup: VM base (Debian kernel, mount.cifs, BusyBox; about 25 s the first time)"
bash test/vm/build-base.sh >/dev/null

echo "setup: helm (the first build takes a few minutes)"
bash test/tools/install-helm.sh

echo "setup: promtool (the first build takes several minutes)"
bash test/tools/install-promtool.sh

echo "setup: cert-manager's CRDs (from its Go module; seconds)"
bash test/tools/install-cert-manager-crds.sh

echo "setup: control plane and node binaries (the first build takes several minutes)"
bash test/e2e/control-plane/build.sh

echo "setup: test node (VM kernel, root disk, pause, toolbox and CoreDNS images; several minutes the first time)"
bash test/node/build.sh
