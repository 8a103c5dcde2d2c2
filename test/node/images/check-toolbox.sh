#!/usr/bin/env bash
# Runs the BusyBox applets the real-node suites use, inside the unpacked toolbox tree TREE
# (chroot, as a pod would see it) and in a network namespace of its own with only loopback, so
# nothing leaves the machine and no port can clash. Fails loudly, naming the applet, when one
# crashes or answers wrongly: a broken applet must stop the image build, not a test minutes later.
#   check-toolbox.sh TREE      (root: needs chroot and unshare --net)
set -euo pipefail
if [ $# -ne 1 ] || [ ! -x "$1/bin/busybox" ]; then
  echo "usage: check-toolbox.sh TREE (an unpacked toolbox with bin/busybox)" >&2
  exit 2
fi
if [ "${DFS_TOOLBOX_CHECK_NETNS:-}" != 1 ]; then
  exec unshare --net env DFS_TOOLBOX_CHECK_NETNS=1 bash "$0" "$1"
fi
tb=$(cd "$1" && pwd)

fail() {
  echo "check-toolbox: $*" >&2
  exit 1
}
# Runs one applet through its /bin symlink in the tree; sets $out and $rc. A signal (exit >= 128)
# is a crash, whatever the applet was asked to do. `timeout` (124) catches one that hangs.
run() {
  local applet=$1
  shift
  set +e
  out=$(timeout 20 chroot "$tb" "/bin/$applet" "$@" 2>&1 </dev/null)
  rc=$?
  set -e
  if [ "$rc" -eq 124 ]; then fail "$applet hung (over 20 s): $applet $*"; fi
  if [ "$rc" -ge 128 ]; then fail "$applet crashed with signal $((rc - 128)) (exit $rc): $applet $*${out:+: $out}"; fi
}
expect() {
  local want=$1 applet=$2
  shift 2
  run "$applet" "$@"
  if [ "$rc" -ne 0 ] || [ "$out" != "$want" ]; then fail "$applet $* gave exit $rc and \"$out\", expected exit 0 and \"$want\""; fi
}

# shellcheck disable=SC2016 # expanded by the toolbox's sh
expect 2 sh -c 'echo $((1 + 1))'
expect 0 id -u
for applet in hostname cat ls stat ln sleep; do
  run "$applet" --help
done
run ip link set lo up
[ "$rc" -eq 0 ] || fail "ip link set lo up gave exit $rc: $out"

# The data path's read loop (test/node/data-path/figures.ts): dd with O_DIRECT, cut, grep, head.
# O_DIRECT needs a file system that takes it, so the check reads /proc/uptime plainly and only
# asks that dd knows the flag (an unknown iflag is a usage error, exit 1, with its name).
printf 'line one\nskip records\nline three\n' >"$tb/tmp/check-toolbox.txt"
# (no /dev in the tree: dd's output and its records line go to files)
expect 'line one' sh -c 'dd if=/tmp/check-toolbox.txt bs=9 count=1 2>/tmp/check-toolbox.err | head -n 1'
run sh -c 'dd if=/tmp/check-toolbox.txt of=/tmp/check-toolbox.out iflag=direct bs=4096 count=1 2>&1'
case $out in *'invalid'*|*'unknown'*) fail "dd does not know iflag=direct (exit $rc): $out" ;; esac
expect 'line one' sh -c 'grep -v records /tmp/check-toolbox.txt | head -n 1'
expect 'b' sh -c 'echo "a b c" | cut -d" " -f2'
rm -f "$tb"/tmp/check-toolbox.txt "$tb"/tmp/check-toolbox.err "$tb"/tmp/check-toolbox.out

# A tiny HTTP server on loopback port 80 of this namespace: the suites fetch http://<ClusterIP>/
# without a port, which makes wget look the port up by service name.
mkdir -p "$tb/tmp/check-toolbox"
printf 'toolbox ok\n' >"$tb/tmp/check-toolbox/index.html"
chroot "$tb" /bin/httpd -f -p 127.0.0.1:80 -h /tmp/check-toolbox &
httpd=$!
trap 'kill "$httpd" 2>/dev/null || true; wait "$httpd" 2>/dev/null || true; rm -rf "$tb/tmp/check-toolbox"' EXIT
for _ in $(seq 50); do
  run wget -qO- http://127.0.0.1/index.html
  [ "$rc" -eq 0 ] && break
  sleep 0.1
done
[ "$rc" -eq 0 ] || fail "httpd never answered on 127.0.0.1:80 (wget exit $rc: $out)"

expect 'toolbox ok' wget -qO- http://127.0.0.1/index.html
expect 'toolbox ok' wget -T 5 -qO- http://127.0.0.1:80/index.html
run wget -T 2 -qO- http://127.0.0.1:9/
[ "$rc" -eq 1 ] || fail "wget to a closed port gave exit $rc, expected 1: $out"
run sh -c "printf 'GET /index.html HTTP/1.0\r\n\r\n' | nc -w 5 127.0.0.1 80"
case $out in *'toolbox ok'*) ;; *) fail "nc -w 5 127.0.0.1 80 did not fetch the page (exit $rc): $out" ;; esac
# No DNS server here: nslookup must fail cleanly, not crash or hang.
run nslookup localhost 127.0.0.1
[ "$rc" -ne 0 ] || fail "nslookup found localhost with no DNS server listening: $out"
echo "check-toolbox: sh, id, ip, dd, cut, grep, head, httpd, wget (with and without -T), nc and nslookup work in $tb" >&2
