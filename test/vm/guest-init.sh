#!/bin/sh
# /init of the test VM (test/vm/build-base.sh puts it in the initramfs). It brings up the
# kernel filesystems, loads modules, mounts the host's 9p shares, configures eth0, then serves
# the host: test/vm/vm.ts drops scripts into /harness/agent and reads their results back, and
# runs the caller's /harness/init, if any, in the background. Everything the host needs to
# follow is printed on the console as a line starting with "DFS-VM:".
#
# Kernel command line (set by vm.ts):
#   dfs.shares=tag=/guest/path,...   extra 9p shares to mount (read-write)
#   dfs.ip=ADDR/PREFIX dfs.gw=ADDR   eth0's address and default route (none: no network)
#   dfs.modules=a,b                  modules to load besides the default set
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
# cgroup v2, as a systemd node has it (a kubelet and containerd need it).
mount -t cgroup2 cgroup2 /sys/fs/cgroup
# /mnt is a shared mount so that mounts made under it propagate into mount namespaces created
# later with `unshare -m --propagation slave`, as a node's / does for HostToContainer pods.
mount -t tmpfs tmpfs /mnt
mount --make-shared /mnt
exec </dev/console >/dev/console 2>&1

say() { echo "DFS-VM: $*"; }

arg() {
  # shellcheck disable=SC2013 # the command line is one line of words
  for word in $(cat /proc/cmdline); do
    case $word in "$1="*) echo "${word#*=}"; return 0 ;; esac
  done
  return 1
}

modules="virtio_pci 9pnet_virtio 9p virtio_net virtio_blk af_packet cifs cmac ccm gcm aes sha256 sha512 md4 md5 hmac ecb"
extra=$(arg dfs.modules) && modules="$modules $(echo "$extra" | tr , ' ')"
for m in $modules; do modprobe -q "$m" 2>/dev/null; done

mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=none harness /harness ||
  { say "FATAL: cannot mount the harness share"; poweroff -f; }
shares=$(arg dfs.shares) && for pair in $(echo "$shares" | tr , ' '); do
  tag=${pair%%=*}
  dir=${pair#*=}
  mkdir -p "$dir"
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=none "$tag" "$dir" ||
    say "ERROR: cannot mount 9p share $tag at $dir"
done

ip link set lo up
if ip=$(arg dfs.ip); then
  if ! ip link set eth0 up || ! ip addr add "$ip" dev eth0; then
    say "ERROR: cannot configure eth0 with $ip"
  fi
  gw=$(arg dfs.gw) && ip route add default via "$gw"
fi
hostname dfs-vm

# The agent: the host writes req/N.sh (then req/N.go); this runs it in the background with
# output to res/N.out and res/N.err and writes res/N.rc last, so the host knows it is complete.
agent=/harness/agent
mkdir -p "$agent/req" "$agent/res"
run_request() {
  n=$1
  (cd / && sh "$agent/req/$n.sh" >"$agent/res/$n.out" 2>"$agent/res/$n.err" </dev/null)
  echo "$?" >"$agent/res/$n.rc.tmp"
  mv "$agent/res/$n.rc.tmp" "$agent/res/$n.rc"
}

if [ -f /harness/init ]; then
  (sh /harness/init; say "init exited $?") &
fi
say "ready $(cat /etc/kernel-release) uptime $(cut -d' ' -f1 /proc/uptime)"
while :; do
  for go in "$agent"/req/*.go; do
    [ -e "$go" ] || continue
    n=${go##*/}
    n=${n%.go}
    rm -f "$go"
    run_request "$n" &
  done
  if [ -e /harness/poweroff ]; then
    say "poweroff"
    sync
    poweroff -f
  fi
  usleep 100000
done
