#!/bin/sh
# dfs-mounter: keeps the DFS SMB share mounted with the kernel CIFS client at a host path on
# every node (ARCHITECTURE.md, "The parts": 3). It runs as PID 1 of a privileged, hostNetwork pod
# whose hostPath volume has mountPropagation Bidirectional, so the mount made here appears on the
# host and, through HostToContainer, in every consumer pod.
#
#   dfs-mounter.sh [run]        run the mount and health loop (the DaemonSet's command)
#   dfs-mounter.sh check-ready  exit 0 when the loop has reported a healthy mount recently
#                               (the readinessProbe)
#
# Environment (defaults in brackets); every value is validated before anything is mounted:
#   DFS_SMB_SERVICE        DNS name of the SMB Service, resolved to its ClusterIP  [dfs-smb.media.svc.cluster.local]
#   DFS_SMB_ADDRESS        the Service's IP; when set, DFS_SMB_SERVICE is not resolved
#   DFS_SHARE_NAME         SMB share name                                [dfs]
#   DFS_HOST_PATH          where the share is mounted (the hostPath's path in this container) [/mnt/decypharr-dfs]
#   DFS_MOUNT_OPTIONS      mount -o options; must keep "ro", never "rw"  [see DEFAULT_OPTIONS]
#   DFS_CHECK_INTERVAL     seconds between health checks                 [10]
#   DFS_STAT_TIMEOUT       seconds a health-check stat may take          [5]
#   DFS_MOUNT_TIMEOUT      seconds a mount may take                      [30]
#   DFS_FAILURE_THRESHOLD  failed checks in a row before a probe mount   [3]
#                          decides between waiting and a remount (see "the remount policy")
#   DFS_BACKOFF_INITIAL    first wait after a failed mount, seconds      [1]
#   DFS_BACKOFF_MAX        longest wait between mount attempts, seconds  [60]
#   DFS_READY_FILE         file the readinessProbe checks                [/run/dfs-mounter/ready]
#   DFS_READY_MAX_AGE      seconds after which the ready file is stale   [60]
#   DFS_PROBE_DIR          private directory for the probe mount         [/run/dfs-mounter/probe]
#   DFS_UNMOUNT_ON_EXIT    true: unmount on SIGTERM; false keeps the share for running consumers [false]
#   DFS_MOUNTINFO          mount table to read                           [/proc/self/mountinfo]

set -u

# vers=3.0 is the SMB 3.0 dialect, not NFS; 3.1.1 is the newest. noserverino because FUSE inode
# numbers change when the FUSE program remounts; soft + echo_interval so the client notices a
# dead server and may fail calls rather than retry them forever (a read can still wait for the
# whole outage: docs/mounter.md); ro because readOnly with HostToContainer is not recursive;
# nosuid,nodev,noexec because nothing on a media share is a program, a device or set-uid, and the
# share is served by whoever may run a privileged source pod.
DEFAULT_OPTIONS='ro,nosuid,nodev,noexec,vers=3.1.1,guest,soft,echo_interval=10,actimeo=1,cache=strict,noserverino'

log() {
  printf '%s dfs-mounter: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2
}

config_error() {
  log "configuration error: $1"
  exit 2
}

is_uint() {
  case $1 in
    '' | *[!0-9]*) return 1 ;;
    *) return 0 ;;
  esac
}

require_positive() {
  # $1: variable name, $2: value
  if ! is_uint "$2" || [ "$2" -lt 1 ] || [ "$2" -gt 86400 ]; then
    config_error "$1=\"$2\": must be a whole number of seconds (or a count) from 1 to 86400"
  fi
}

is_absolute_path() {
  case $1 in
    /) return 0 ;;
    */) return 1 ;;
    /*) ;;
    *) return 1 ;;
  esac
  case $1 in
    *[!A-Za-z0-9_./-]*) return 1 ;;
    */../* | */..) return 1 ;;
  esac
  return 0
}

is_ipv4() {
  # Four dot-separated numbers 0-255.
  case $1 in
    *[!0-9.]* | .* | *. | *..*) return 1 ;;
  esac
  old_ifs=$IFS
  IFS=.
  # shellcheck disable=SC2086 # splitting on dots is the point
  set -- $1
  IFS=$old_ifs
  [ $# -eq 4 ] || return 1
  for octet in "$@"; do
    [ "${#octet}" -le 3 ] && [ "$octet" -le 255 ] || return 1
  done
  return 0
}

is_ipv6() {
  case $1 in
    *:*:*) ;;
    *) return 1 ;;
  esac
  case $1 in
    *[!0-9A-Fa-f:]*) return 1 ;;
  esac
  return 0
}

is_dns_name() {
  [ "${#1}" -le 253 ] || return 1
  case $1 in
    '' | .* | *. | *..* | -* | *-.* | *.-* | *-) return 1 ;;
    *[!a-z0-9.-]*) return 1 ;;
  esac
  return 0
}

has_option() {
  # $1: comma-separated options, $2: an option word
  case ",$1," in
    *",$2,"*) return 0 ;;
    *) return 1 ;;
  esac
}

load_config() {
  DFS_SMB_SERVICE=${DFS_SMB_SERVICE-dfs-smb.media.svc.cluster.local}
  DFS_SMB_ADDRESS=${DFS_SMB_ADDRESS-}
  DFS_SHARE_NAME=${DFS_SHARE_NAME:-dfs}
  DFS_HOST_PATH=${DFS_HOST_PATH:-/mnt/decypharr-dfs}
  DFS_MOUNT_OPTIONS=${DFS_MOUNT_OPTIONS-$DEFAULT_OPTIONS}
  DFS_CHECK_INTERVAL=${DFS_CHECK_INTERVAL:-10}
  DFS_STAT_TIMEOUT=${DFS_STAT_TIMEOUT:-5}
  DFS_MOUNT_TIMEOUT=${DFS_MOUNT_TIMEOUT:-30}
  DFS_FAILURE_THRESHOLD=${DFS_FAILURE_THRESHOLD:-3}
  DFS_BACKOFF_INITIAL=${DFS_BACKOFF_INITIAL:-1}
  DFS_BACKOFF_MAX=${DFS_BACKOFF_MAX:-60}
  DFS_READY_FILE=${DFS_READY_FILE:-/run/dfs-mounter/ready}
  DFS_READY_MAX_AGE=${DFS_READY_MAX_AGE:-60}
  DFS_UNMOUNT_ON_EXIT=${DFS_UNMOUNT_ON_EXIT:-false}
  DFS_MOUNTINFO=${DFS_MOUNTINFO:-/proc/self/mountinfo}
  DFS_PROBE_DIR=${DFS_PROBE_DIR:-/run/dfs-mounter/probe}
}

validate_config() {
  if [ -n "$DFS_SMB_ADDRESS" ]; then
    is_ipv4 "$DFS_SMB_ADDRESS" || is_ipv6 "$DFS_SMB_ADDRESS" ||
      config_error "DFS_SMB_ADDRESS=\"$DFS_SMB_ADDRESS\": must be an IPv4 or IPv6 address (the SMB Service's ClusterIP)"
  elif [ -z "$DFS_SMB_SERVICE" ]; then
    config_error "DFS_SMB_SERVICE and DFS_SMB_ADDRESS are both empty: set DFS_SMB_SERVICE to the SMB Service's DNS name (e.g. dfs-smb.media.svc.cluster.local) or DFS_SMB_ADDRESS to its ClusterIP"
  else
    is_dns_name "$DFS_SMB_SERVICE" ||
      config_error "DFS_SMB_SERVICE=\"$DFS_SMB_SERVICE\": must be a DNS name of lowercase letters, digits, \"-\" and \".\", such as dfs-smb.media.svc.cluster.local"
  fi
  case $DFS_SHARE_NAME in
    *[!A-Za-z0-9_.-]*) config_error "DFS_SHARE_NAME=\"$DFS_SHARE_NAME\": must be 1 to 80 characters of letters, digits, \"_\", \".\" or \"-\"" ;;
  esac
  [ "${#DFS_SHARE_NAME}" -le 80 ] ||
    config_error "DFS_SHARE_NAME=\"$DFS_SHARE_NAME\": must be 1 to 80 characters of letters, digits, \"_\", \".\" or \"-\""
  if ! is_absolute_path "$DFS_HOST_PATH" || [ "$DFS_HOST_PATH" = / ]; then
    config_error "DFS_HOST_PATH=\"$DFS_HOST_PATH\": must be an absolute path other than / made of letters, digits, \"_\", \".\", \"-\" and \"/\", without \"..\" or a trailing \"/\""
  fi
  if ! is_absolute_path "$DFS_READY_FILE" || [ "$DFS_READY_FILE" = / ]; then
    config_error "DFS_READY_FILE=\"$DFS_READY_FILE\": must be an absolute file path made of letters, digits, \"_\", \".\", \"-\" and \"/\", without \"..\""
  fi
  if ! is_absolute_path "$DFS_PROBE_DIR" || [ "$DFS_PROBE_DIR" = / ] || [ "$DFS_PROBE_DIR" = "$DFS_HOST_PATH" ]; then
    config_error "DFS_PROBE_DIR=\"$DFS_PROBE_DIR\": must be an absolute path other than / and DFS_HOST_PATH, made of letters, digits, \"_\", \".\", \"-\" and \"/\", without \"..\" or a trailing \"/\""
  fi
  case $DFS_MOUNT_OPTIONS in
    '' | *[[:space:]]*) config_error "DFS_MOUNT_OPTIONS=\"$DFS_MOUNT_OPTIONS\": must be a non-empty, comma-separated option list without spaces" ;;
  esac
  has_option "$DFS_MOUNT_OPTIONS" ro ||
    config_error "DFS_MOUNT_OPTIONS=\"$DFS_MOUNT_OPTIONS\": must contain \"ro\": consumers mount the host path with readOnly, which HostToContainer does not make recursive, so only a read-only mount keeps the share read-only"
  # mount(8) lets the last of ro/rw win, so "ro,rw" would mount read-write.
  ! has_option "$DFS_MOUNT_OPTIONS" rw ||
    config_error "DFS_MOUNT_OPTIONS=\"$DFS_MOUNT_OPTIONS\": must not contain \"rw\": a later \"rw\" overrides \"ro\" and would mount the share read-write"
  for name in DFS_CHECK_INTERVAL DFS_STAT_TIMEOUT DFS_MOUNT_TIMEOUT DFS_FAILURE_THRESHOLD DFS_BACKOFF_INITIAL DFS_BACKOFF_MAX DFS_READY_MAX_AGE; do
    eval "value=\$$name"
    # shellcheck disable=SC2154 # assigned by the eval above
    require_positive "$name" "$value"
  done
  [ "$DFS_BACKOFF_MAX" -ge "$DFS_BACKOFF_INITIAL" ] ||
    config_error "DFS_BACKOFF_MAX=$DFS_BACKOFF_MAX: must be at least DFS_BACKOFF_INITIAL ($DFS_BACKOFF_INITIAL)"
  [ "$DFS_READY_MAX_AGE" -gt $((DFS_CHECK_INTERVAL + DFS_STAT_TIMEOUT)) ] ||
    config_error "DFS_READY_MAX_AGE=$DFS_READY_MAX_AGE: must be greater than DFS_CHECK_INTERVAL + DFS_STAT_TIMEOUT ($((DFS_CHECK_INTERVAL + DFS_STAT_TIMEOUT))), or a healthy mount reads as not ready between two checks"
  case $DFS_UNMOUNT_ON_EXIT in
    true | false) ;;
    *) config_error "DFS_UNMOUNT_ON_EXIT=\"$DFS_UNMOUNT_ON_EXIT\": must be true or false" ;;
  esac
}

# ---- readiness -------------------------------------------------------------------------------

mark_ready() {
  # Written whole, then renamed, so the probe never reads half a number.
  printf '%s\n' "$(date +%s)" >"$DFS_READY_FILE.tmp" && mv -f "$DFS_READY_FILE.tmp" "$DFS_READY_FILE"
}

mark_unready() {
  rm -f "$DFS_READY_FILE" "$DFS_READY_FILE.tmp"
}

check_ready() {
  if [ ! -f "$DFS_READY_FILE" ]; then
    echo "not ready: $DFS_READY_FILE is missing: the share is not mounted or failed its last health check" >&2
    return 1
  fi
  stamp=$(cat "$DFS_READY_FILE" 2>/dev/null)
  if ! is_uint "$stamp"; then
    echo "not ready: $DFS_READY_FILE holds \"$stamp\", not a time stamp" >&2
    return 1
  fi
  age=$(($(date +%s) - stamp))
  if [ "$age" -gt "$DFS_READY_MAX_AGE" ]; then
    echo "not ready: the last healthy check was ${age}s ago (DFS_READY_MAX_AGE=$DFS_READY_MAX_AGE): the health loop is stuck" >&2
    return 1
  fi
  return 0
}

# ---- bounded commands ------------------------------------------------------------------------

# Runs "$@" for at most $1 seconds; returns its status, or 124 when it ran out of time. A stat on a
# dead CIFS mount can sit in the kernel where even SIGKILL waits, so this never waits for the
# killed process: it polls, kills, and moves on. `timeout` would wait for its child.
run_bounded() {
  limit=$1
  shift
  "$@" &
  bounded_pid=$!
  ticks=$((limit * 5))
  while kill -0 "$bounded_pid" 2>/dev/null; do
    if [ "$ticks" -le 0 ]; then
      kill -KILL "$bounded_pid" 2>/dev/null
      bounded_pid=
      return 124
    fi
    ticks=$((ticks - 1))
    sleep 0.2
  done
  wait "$bounded_pid"
  status=$?
  bounded_pid=
  return "$status"
}

# Sleeps in the background so a SIGTERM trap runs at once instead of after the sleep, one second
# at a time: a signal that lands between `sleep &` and `wait` is not always noticed by BusyBox ash
# until the wait ends (seen in 1 of 12 test runs with a 30 s interval), and a slice bounds that.
pause() {
  remaining=$1
  while [ "$remaining" -gt 0 ]; do
    sleep 1 &
    sleep_pid=$!
    wait "$sleep_pid"
    sleep_pid=
    remaining=$((remaining - 1))
  done
}

# ---- the mount -------------------------------------------------------------------------------

# Prints "FSTYPE SOURCE" of the topmost mount at DFS_HOST_PATH. Inside the container the path is
# always a mount point (the hostPath bind), so `mountpoint` cannot tell the share from the bare
# directory: only the filesystem type of the topmost entry can.
top_mount() {
  awk -v p="$DFS_HOST_PATH" '
    $5 == p { for (i = 7; i <= NF; i++) if ($i == "-") { t = $(i + 1); s = $(i + 2); break } }
    END { if (t == "") exit 1; print t, s }
  ' "$DFS_MOUNTINFO"
}

share_mounted() {
  top=$(top_mount) || return 1
  case $top in
    'cifs '* | 'smb3 '*) return 0 ;;
    *) return 1 ;;
  esac
}

healthy() {
  run_bounded "$DFS_STAT_TIMEOUT" stat -t "$DFS_HOST_PATH" >/dev/null 2>&1
}

resolve_address() {
  if [ -n "$DFS_SMB_ADDRESS" ]; then
    printf '%s\n' "$DFS_SMB_ADDRESS"
    return 0
  fi
  # Resolved here, in the pod's cluster DNS, because the kernel CIFS client re-resolves a host
  # name on reconnect through the host's resolver, which knows nothing of cluster.local.
  address=$(getent hosts "$DFS_SMB_SERVICE" 2>/dev/null | awk 'NR == 1 { print $1 }')
  if [ -z "$address" ] && command -v nslookup >/dev/null 2>&1; then
    address=$(nslookup "$DFS_SMB_SERVICE" 2>/dev/null | awk '/^Name:/ { named = 1; next } named && /^Address/ { sub(/^Address( [0-9]+)?:[ \t]*/, ""); print; exit }')
  fi
  if [ -z "$address" ]; then
    log "cannot resolve $DFS_SMB_SERVICE: is the SMB Service there, and does this pod use cluster DNS (dnsPolicy ClusterFirstWithHostNet)?"
    return 1
  fi
  printf '%s\n' "$address"
}

# $1: where to mount [DFS_HOST_PATH]; $2: options to add
mount_share() {
  target=${1:-$DFS_HOST_PATH}
  address=$(resolve_address) || return 1
  options=$DFS_MOUNT_OPTIONS${2:+,$2}
  # An IPv6 literal in a UNC name is ambiguous to mount.cifs; ip= names the address outright.
  if is_ipv6 "$address" && ! has_option "$options" "ip=$address"; then
    options="$options,ip=$address"
  fi
  mkdir -p "$target"
  log "mounting //$address/$DFS_SHARE_NAME at $target (-o $options)"
  # mount.cifs itself, not `mount -t cifs`: BusyBox mount (Alpine's) mounts cifs on its own and
  # hands the options to the kernel raw, so "guest" would never reach cifs-utils.
  # Its messages go to the log as before, and are kept to tell a refused share (error 13: the
  # source's smbd refuses the share while its FUSE mount is gone) from a server that is away.
  run_bounded "$DFS_MOUNT_TIMEOUT" mount.cifs "//$address/$DFS_SHARE_NAME" "$target" -o "$options" 2>"$DFS_READY_FILE.mount-errors"
  status=$?
  cat "$DFS_READY_FILE.mount-errors" >&2 2>/dev/null
  mount_refused=false
  grep -q 'mount error(13)' "$DFS_READY_FILE.mount-errors" 2>/dev/null && mount_refused=true
  rm -f "$DFS_READY_FILE.mount-errors"
  if [ "$status" -eq 124 ]; then
    log "mount did not finish within DFS_MOUNT_TIMEOUT=${DFS_MOUNT_TIMEOUT}s: is //$address reachable from this node?"
  elif [ "$status" -ne 0 ]; then
    log "mount of //$address/$DFS_SHARE_NAME failed with status $status (mount.cifs says why above): check that $address is the SMB Service's address, that the Service has a ready source pod, that DFS_SHARE_NAME=$DFS_SHARE_NAME is the share it serves, and, for mount error(13), that the source's FUSE mount is up (its smbd refuses the share while it is not)"
  fi
  return "$status"
}

# ---- the remount policy ----------------------------------------------------------------------
#
# When the mount stops answering, a lazy unmount and a new mount help only if a new mount would
# work while the old one does not. Measured on Debian trixie's kernel (docs/mounter.md): while the
# server is away, no mount can succeed, and unmounting then leaves consumers an EMPTY directory
# (ENOENT for every file: to an application, the library was deleted) until the server is back and
# the backoff lets the next mount through, up to DFS_BACKOFF_MAX later. A kept mount instead comes
# back within seconds of the server's return, because the kernel client reconnects by itself, and
# consumers meanwhile see errors or waits, never a vanished library. (Open files and working
# directories survived either way: a detached mount reconnects too.) So after DFS_FAILURE_THRESHOLD failed checks a
# probe mount of the same share, on a new connection (nosharesock) at DFS_PROBE_DIR, decides:
#   - the probe fails too: the server is away (or refuses the share: error 13, the source's FUSE
#     mount is gone); keep the mount, stay unready, check again;
#   - the probe works: the server answers but the mount does not; remount.

probe_mounted() {
  awk -v p="$DFS_PROBE_DIR" '$5 == p { found = 1 } END { exit !found }' "$DFS_MOUNTINFO"
}

# Exit status 0 when a fresh mount of the share works and answers now.
probe_share() {
  mount_refused=false
  # A probe that outlived its time limit may have completed later: never stack mounts.
  while probe_mounted; do umount -l "$DFS_PROBE_DIR" 2>/dev/null || break; done
  mkdir -p "$DFS_PROBE_DIR" || return 1
  if ! mount_share "$DFS_PROBE_DIR" nosharesock; then
    return 1
  fi
  run_bounded "$DFS_STAT_TIMEOUT" stat -t "$DFS_PROBE_DIR" >/dev/null 2>&1
  status=$?
  umount -l "$DFS_PROBE_DIR" 2>/dev/null || log "umount -l $DFS_PROBE_DIR failed with status $?"
  return "$status"
}

lazy_unmount() {
  # Lazy: detaches at once even when the server is gone; open files in consumers stay valid.
  log "unmounting $DFS_HOST_PATH lazily ($1)"
  umount -l "$DFS_HOST_PATH" || log "umount -l $DFS_HOST_PATH failed with status $?"
}

# ---- shutdown --------------------------------------------------------------------------------

on_signal() {
  trap '' TERM INT
  log "received $1"
  [ -n "${sleep_pid-}" ] && kill "$sleep_pid" 2>/dev/null
  [ -n "${bounded_pid-}" ] && kill -KILL "$bounded_pid" 2>/dev/null
  mark_unready
  if [ "$DFS_UNMOUNT_ON_EXIT" = true ]; then
    if share_mounted; then
      lazy_unmount "DFS_UNMOUNT_ON_EXIT=true"
    fi
  else
    # A DaemonSet roll-out restarts this pod; consumers must keep their share meanwhile. The
    # kernel connection lives in the host network namespace and outlives this process.
    log "leaving the share mounted for running consumers (DFS_UNMOUNT_ON_EXIT=false)"
  fi
  exit 0
}

# ---- the loop --------------------------------------------------------------------------------

run() {
  sleep_pid=
  bounded_pid=
  trap 'on_signal SIGTERM' TERM
  trap 'on_signal SIGINT' INT
  mkdir -p "$(dirname "$DFS_READY_FILE")"
  mark_unready

  failures=0
  backoff=$DFS_BACKOFF_INITIAL
  if share_mounted; then
    # A restarted mounter finds the share it mounted before; re-mounting would pull it from
    # every running consumer, so a healthy one is adopted.
    if healthy; then
      log "adopted the healthy mount already at $DFS_HOST_PATH ($(top_mount))"
      mounted=true
      mark_ready
    else
      log "the mount already at $DFS_HOST_PATH ($(top_mount)) does not answer; checking it again"
      mounted=true
      failures=1
    fi
  else
    mounted=false
  fi

  while :; do
    if [ "$mounted" = true ]; then
      if [ "$failures" -eq 0 ]; then
        pause "$DFS_CHECK_INTERVAL"
      fi
      if ! share_mounted; then
        log "the share is no longer mounted at $DFS_HOST_PATH"
        mark_unready
        mounted=false
        continue
      fi
      if healthy; then
        [ "$failures" -gt 0 ] && log "the mount answers again"
        failures=0
        mark_ready
        continue
      fi
      failures=$((failures + 1))
      mark_unready
      log "health check failed ($failures of $DFS_FAILURE_THRESHOLD): stat $DFS_HOST_PATH failed or took over ${DFS_STAT_TIMEOUT}s"
      if [ "$failures" -ge "$DFS_FAILURE_THRESHOLD" ]; then
        if probe_share; then
          # The server may have come back while the last check waited: the kernel client takes a
          # few seconds to reconnect (docs/mounter.md), so a check that began during the outage
          # can fail after the server is back. A mount that answers now needs no remount.
          if healthy; then
            log "the mount answers again"
            failures=0
            mark_ready
            continue
          fi
          lazy_unmount "stale after $failures failed checks while a new mount of the share works"
          mounted=false
          failures=0
          backoff=$DFS_BACKOFF_INITIAL
          continue
        fi
        if [ "$mount_refused" = true ]; then
          log "a new mount of the share is refused too (mount error(13)): the server answers but refuses the share, as the source's smbd does while its FUSE mount is gone: keeping the mount at $DFS_HOST_PATH until a new mount works (see docs/mounter.md); checking again in ${DFS_CHECK_INTERVAL}s"
        else
          log "a new mount of the share fails too, so the server is away: keeping the mount at $DFS_HOST_PATH, which the kernel client reconnects when the server is back (see docs/mounter.md); checking again in ${DFS_CHECK_INTERVAL}s"
        fi
        # Stay at the threshold: the next failed check probes again.
        failures=$((DFS_FAILURE_THRESHOLD - 1))
      fi
      # The CIFS client reconnects by itself when the source pod restarts; give it the interval.
      pause "$DFS_CHECK_INTERVAL"
      continue
    fi

    if mount_share && share_mounted && healthy; then
      log "mounted and healthy"
      mounted=true
      failures=0
      backoff=$DFS_BACKOFF_INITIAL
      mark_ready
      continue
    fi
    if share_mounted; then
      lazy_unmount "mounted but not answering"
    fi
    log "retrying in ${backoff}s"
    pause "$backoff"
    backoff=$((backoff * 2))
    [ "$backoff" -gt "$DFS_BACKOFF_MAX" ] && backoff=$DFS_BACKOFF_MAX
  done
}

load_config
validate_config
case ${1-run} in
  run) run ;;
  check-ready) check_ready ;;
  *)
    echo "usage: $0 [run|check-ready]" >&2
    exit 2
    ;;
esac
