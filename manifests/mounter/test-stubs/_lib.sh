# Shared by the stub commands the mounter tests put first on PATH. Sourced, not run.
# DFS_STUB_STATE is a directory holding:
#   calls          one line per stub call, appended ("mount.cifs //… /path -o …")
#   mountinfo      the fake mount table the mounter reads through DFS_MOUNTINFO
#   server         up | down | hang | stale | returning | refusing: how the SMB server behaves
#                  (missing: up); refusing: it answers but refuses the share (error 13), as the
#                  source's smbd does while its FUSE mount is gone;
#                  stale: mounts made before do not answer, a new mount works (marked "fresh");
#                  returning: hangs like hang until a mount connects, which brings it back up
#   server-after-umount  when present, becomes `server` at the next umount (a server restart)
#   mount-failures how many mount calls fail before the server counts as up (missing: 0)
#   hosts          "NAME ADDRESS" lines that getent answers from

state=${DFS_STUB_STATE:?DFS_STUB_STATE must name the stub state directory}

record() {
  printf '%s\n' "$*" >>"$state/calls"
}

server() {
  if [ -f "$state/server" ]; then cat "$state/server"; else echo up; fi
}

# Prints the filesystem type of the topmost mount at $1 in the fake table, or nothing.
top_fstype() {
  awk -v p="$1" '$5 == p { for (i = 7; i <= NF; i++) if ($i == "-") { t = $(i + 1); break } } END { print t }' "$state/mountinfo"
}

# Prints the whole topmost mountinfo line at $1 in the fake table, or nothing.
top_line() {
  awk -v p="$1" '$5 == p { l = $0 } END { print l }' "$state/mountinfo"
}
