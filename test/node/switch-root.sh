#!/bin/sh
# /dfs-switch-root: appended to the VM harness's initramfs (test/node/build-rootfs.sh) and started with rdinit= instead of
# its /init. Loads what the root disk needs, mounts it and hands over to the node's own init.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
# test/node/build-rootfs.sh puts the modules the harness's initramfs lacks into /dfs-modules.
for ko in /dfs-modules/*.ko; do insmod "$ko" 2>/dev/null; done
for m in virtio_pci virtio_blk ext4; do modprobe -q "$m" 2>/dev/null; done
i=0
until [ -b /dev/vda ]; do
  i=$((i + 1))
  [ "$i" -lt 100 ] || { echo "DFS-NODE: FATAL: no /dev/vda"; poweroff -f; }
  sleep 0.1
done
mkdir -p /newroot
mount -t ext4 -o rw /dev/vda /newroot || { echo "DFS-NODE: FATAL: cannot mount /dev/vda"; poweroff -f; }
umount /proc /sys
mount --move /dev /newroot/dev
echo "DFS-NODE: root disk mounted, switching"
exec switch_root /newroot /usr/bin/tini -- /sbin/dfs-node-init
