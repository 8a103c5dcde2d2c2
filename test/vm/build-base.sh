#!/usr/bin/env bash
# Builds what test/vm/vm.ts boots: Debian trixie's kernel, the modules a CIFS/9p/virtio guest
# needs (with depmod run over them), and an initramfs base holding static BusyBox, trixie's
# mount.cifs and dash with their libraries, and a small /init. Everything comes from Debian's
# archive as .debs fetched by apt-get through a private apt configuration (the machine's own
# sources stay untouched) and is cached under ~/.cache/dfs-injector/vm/<key>, keyed by the
# package versions. Idempotent: a finished cache entry is reused.
#
#   test/vm/build-base.sh          build (or reuse) and print the cache directory
#   DFS_VM_SUITE=trixie            Debian suite the guest packages come from
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
suite=${DFS_VM_SUITE:-trixie}
cache_root=${DFS_VM_CACHE:-$HOME/.cache/dfs-injector/vm}
apt_dir=$cache_root/apt-$suite
mkdir -p "$apt_dir"/{lists/partial,archives/partial,etc}

# Guest packages: the kernel image meta package resolves to the current linux-image-*.
PACKAGES=(busybox-static cifs-utils dash libc6 libcap-ng0 libtalloc2)

cat >"$apt_dir/etc/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security $suite-security main
SRC
: >"$apt_dir/etc/status"
APT=(apt-get -q
  -o "Dir::Etc::SourceList=$apt_dir/etc/sources.list" -o "Dir::Etc::SourceParts=-"
  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::State::Status=$apt_dir/etc/status"
  -o "Dir::Cache=$apt_dir/cache" -o "Dir::Cache::Archives=$apt_dir/archives"
  -o "APT::Architecture=amd64" -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
APT_CACHE=(apt-cache
  -o "Dir::Etc::SourceList=$apt_dir/etc/sources.list" -o "Dir::Etc::SourceParts=-"
  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::State::Status=$apt_dir/etc/status"
  -o "Dir::Cache=$apt_dir/cache" -o "APT::Architecture=amd64")
mkdir -p "$apt_dir/cache"

# Refresh the package lists at most once a day: versions decide the cache key. Tests set
# DFS_VM_NO_UPDATE=1: they only look up the entry setup built and never touch the network.
if [ "${DFS_VM_NO_UPDATE:-0}" != 1 ] && [ -z "$(find "$apt_dir/lists" -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
  "${APT[@]}" update >&2
fi

# The versions only change when the lists do: a finished build for these very lists and scripts
# is found without asking apt (which takes seconds on a busy machine).
lists_stamp=$( (ls -l --time-style=+%s "$apt_dir/lists"; sha256sum "$here/build-base.sh" "$here/guest-init.sh") | sha256sum | cut -c1-16)
if [ -f "$cache_root/current-$suite" ]; then
  read -r stamp dir <"$cache_root/current-$suite" || true
  if [ "${stamp-}" = "$lists_stamp" ] && [ -f "${dir-}/done" ]; then
    echo "$dir"
    exit 0
  fi
fi

# linux-image-amd64 depends on exactly one linux-image-<abi>-amd64: that is the kernel.
kernel_pkg=$("${APT_CACHE[@]}" depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$kernel_pkg" ] || { echo "build-base: cannot find the kernel package behind linux-image-amd64 in $suite" >&2; exit 1; }

# One apt-cache call for every candidate version (each call parses the whole package list).
versions=$("${APT_CACHE[@]}" policy "$kernel_pkg" "${PACKAGES[@]}" | awk '/^[^ ]/ { p = $1; sub(/:$/, "", p) } /Candidate:/ { print p "=" $2 }')
candidate() { printf '%s\n' "$versions" | awk -F= -v p="$1" '$1 == p { print $2 }'; }

key_input="$suite $kernel_pkg=$(candidate "$kernel_pkg")"
for p in "${PACKAGES[@]}"; do key_input="$key_input $p=$(candidate "$p")"; done
key_input="$key_input $(sha256sum "$here/build-base.sh" "$here/guest-init.sh" | awk '{ print $1 }' | tr '\n' ' ')"
key=$(printf '%s' "$key_input" | sha256sum | cut -c1-16)
out=$cache_root/$suite-$key
if [ -f "$out/done" ]; then
  echo "$lists_stamp $out" >"$cache_root/current-$suite"
  echo "$out"
  exit 0
fi
if [ "${DFS_VM_NO_UPDATE:-0}" = 1 ]; then
  echo "build-base: no VM base for $key_input under $cache_root: run bash test/vm/build-base.sh" >&2
  exit 1
fi

echo "build-base: building $out ($key_input)" >&2
work=$(mktemp -d "$cache_root/.build-XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/debs" "$work/x"
(cd "$work/debs" && "${APT[@]}" download "$kernel_pkg" "${PACKAGES[@]}" >&2)
for deb in "$work/debs"/*.deb; do dpkg-deb -x "$deb" "$work/x"; done

root=$work/root
mkdir -p "$root"/{bin,sbin,lib,lib64,usr/lib/x86_64-linux-gnu,etc,proc,sys,dev,tmp,run,mnt,harness}
kver=$(ls "$work/x/lib/modules" 2>/dev/null || ls "$work/x/usr/lib/modules")
moddir=$work/x/lib/modules/$kver
[ -d "$moddir" ] || moddir=$work/x/usr/lib/modules/$kver
cp "$work/x/boot/vmlinuz-$kver" "$work/vmlinuz"

# BusyBox provides every tool of the guest except mount.cifs and dash.
cp "$work/x/usr/bin/busybox" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
cp "$work/x/usr/bin/dash" "$root/bin/dash" 2>/dev/null || cp "$work/x/bin/dash" "$root/bin/dash"
cp "$work/x/usr/sbin/mount.cifs" "$root/sbin/mount.cifs" 2>/dev/null || cp "$work/x/sbin/mount.cifs" "$root/sbin/mount.cifs"

# Shared libraries the two dynamic binaries need, found by their DT_NEEDED entries in the
# unpacked trixie tree (never the host's: the guest runs trixie's glibc).
find_lib() { find "$work/x" -name "$1" \( -type f -o -type l \) | head -1; }
copy_needs() {
  local bin=$1 lib path
  for lib in $(readelf -d "$bin" | awk -F'[][]' '/NEEDED/ { print $2 }'); do
    [ -e "$root/usr/lib/x86_64-linux-gnu/$lib" ] && continue
    path=$(find_lib "$lib")
    [ -n "$path" ] || { echo "build-base: $lib (needed by $bin) is in none of the fetched packages" >&2; exit 1; }
    cp -L "$path" "$root/usr/lib/x86_64-linux-gnu/$lib"
    copy_needs "$root/usr/lib/x86_64-linux-gnu/$lib"
  done
}
copy_needs "$root/bin/dash"
copy_needs "$root/sbin/mount.cifs"
cp -L "$(find_lib ld-linux-x86-64.so.2)" "$root/lib64/ld-linux-x86-64.so.2"
ln -s usr/lib/x86_64-linux-gnu "$root/lib/x86_64-linux-gnu"

# Kernel modules: CIFS and the crypto SMB 3.1.1 signs and encrypts with (without them mount
# fails with "crypto alloc failed, rc=-2"), 9p over virtio for the host's directories, virtio
# devices, TUN-less networking, and loop/ext4 for disks. Dependencies come from modules.dep.
WANT="cifs cmac ccm gcm aes aesni_intel sha256 sha512 sha256_generic sha512_generic md4 md5 hmac arc4 ecb cbc des_generic
  9p 9pnet 9pnet_virtio netfs virtio_pci virtio_net virtio_blk virtio_console virtio_rng net_failover failover
  e1000 ext4 loop overlay af_packet"
depmod -b "${moddir%/lib/modules/*}" "$kver"
depfile=$moddir/modules.dep
declare -A seen=()
add_mod() {
  local name=$1 line rel dep
  line=$(awk -v n="$name" -F: '{ f = $1; sub(".*/", "", f); sub(/\.ko(\.[a-z]+)?$/, "", f); gsub("-", "_", f); if (f == n) { print; exit } }' "$depfile")
  [ -n "$line" ] || return 0 # built into this kernel, or absent: modprobe says which at boot
  rel=${line%%:*}
  [ -n "${seen[$rel]-}" ] && return 0
  seen[$rel]=1
  mkdir -p "$root/lib/modules/$kver/$(dirname "$rel")"
  cp "$moddir/$rel" "$root/lib/modules/$kver/$rel"
  for dep in ${line#*:}; do
    dep=${dep##*/}
    dep=${dep%%.ko*}
    add_mod "${dep//-/_}"
  done
}
for m in $WANT; do add_mod "$m"; done
cp "$moddir"/modules.builtin* "$moddir"/modules.order "$root/lib/modules/$kver/" 2>/dev/null || true
depmod -b "$root" "$kver"
# BusyBox modprobe reads compressed modules only if built to; decompress to be sure.
find "$root/lib/modules" -name '*.ko.xz' -exec xz -d {} +
find "$root/lib/modules" -name '*.ko.zst' -exec zstd -q -d --rm {} +
depmod -b "$root" "$kver"

cp "$here/guest-init.sh" "$root/init"
chmod 0755 "$root/init"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
printf '%s\n' "$kver" >"$root/etc/kernel-release"

(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 >"$work/initramfs.cpio.gz"

mkdir -p "$out"
mv "$work/vmlinuz" "$work/initramfs.cpio.gz" "$out/"
{
  echo "suite=$suite"
  echo "kernel_package=$kernel_pkg"
  echo "kernel_release=$kver"
  for p in "$kernel_pkg" "${PACKAGES[@]}"; do echo "$p=$(candidate "$p")"; done
} >"$out/versions"
touch "$out/done"
echo "$lists_stamp $out" >"$cache_root/current-$suite"
# Older entries (other package versions or an older script) are not used again.
for old in "$cache_root/$suite"-*; do
  [ "$old" = "$out" ] || rm -rf "$old"
done
echo "$out"
