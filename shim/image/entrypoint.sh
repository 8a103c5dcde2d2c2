#!/bin/sh
# Entrypoint of the dfs-injector smbd sidecar: renders smb.conf from
# environment variables, then replaces itself with smbd in the foreground.
#
#   DFS_SHARE_NAME     share name                      default dfs
#   DFS_SHARE_PATH     directory to export (absolute)  default /mnt/dfs
#   DFS_SMB_PORT       TCP port, 1-65535               default 445
#   DFS_LOG_LEVEL      Samba log level, 0-10           default 1
#   DFS_GUEST_ACCOUNT  existing user guests map to     default nobody
#   DFS_SMB_INTERFACES listen only on these (e.g. lo)  default: all
#   DFS_STATE_DIR      smb.conf, locks, pid, marker    default /run/dfs-smbd
#   DFS_SMBD           smbd binary                     default smbd (PATH)
#   DFS_SMB_TEMPLATE   smb.conf template               default: beside this
#                      script, else /usr/local/share/dfs/smb.conf.template
#   DFS_READY_SCRIPT   readiness script, also run by smbd at every tree
#                      connect ("tree-connect"): default ready.sh or
#                      dfs-smbd-ready beside this script, else the copy
#                      shim.mode init puts in /dfs-shim/dfs-smbd-ready
#   DFS_SHIM_MARKER    file the shim creates when it first rewrites an
#                      nlink 0                  default $DFS_STATE_DIR/shim/nlink0-seen
#   DFS_SHIM_LOG       1: the shim logs its first rewrite per process
#                      (default 1; set to 0 to silence)
#
# A variable that is set but empty is an error, not "use the default".
# LD_PRELOAD is not set here: the webhook sets it on the container, so the
# same image also runs without the shim (shim.mode: off).
set -eu

me=dfs-smbd-entrypoint

die() {
	printf '%s: %s\n' "$me" "$*" >&2
	exit 64
}

# $1 variable name, $2 value, $3 rule in words: exits naming the variable.
invalid() {
	die "invalid $1='$2': $3"
}

# Spelled out: a range such as A-Z in a pattern depends on the locale.
alpha='ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
alnum="${alpha}0123456789"

share_name=${DFS_SHARE_NAME-dfs}
share_path=${DFS_SHARE_PATH-/mnt/dfs}
smb_port=${DFS_SMB_PORT-445}
log_level=${DFS_LOG_LEVEL-1}
guest_account=${DFS_GUEST_ACCOUNT-nobody}
interfaces=${DFS_SMB_INTERFACES-}
state_dir=${DFS_STATE_DIR-/run/dfs-smbd}
smbd=${DFS_SMBD-smbd}
shim_log=${DFS_SHIM_LOG-1}

# Share names end up in smb.conf section headers and in UNC paths.
case $share_name in
'' | *[!"$alnum"_.-]*) invalid DFS_SHARE_NAME "$share_name" 'must match ^[A-Za-z0-9_.-]{1,80}$' ;;
esac
[ "${#share_name}" -le 80 ] || invalid DFS_SHARE_NAME "$share_name" 'must match ^[A-Za-z0-9_.-]{1,80}$'
# Section names are case-insensitive.
case $(printf '%s' "$share_name" | tr 'ABCDEFGHIJKLMNOPQRSTUVWXYZ' 'abcdefghijklmnopqrstuvwxyz') in
global | homes | printers) invalid DFS_SHARE_NAME "$share_name" 'must not be a Samba special section (global, homes, printers)' ;;
esac

# smb.conf has no quoting: a path must not carry "%" (Samba macros), a
# backslash, a newline or trailing blanks, which Samba would strip.
path_rule='must be an absolute path of letters, digits, spaces and _ . / @ + , : = ~ - (no trailing space, at most 4095 bytes)'
check_path() {
	case $2 in
	/*) ;;
	*) invalid "$1" "$2" "$path_rule" ;;
	esac
	case $2 in
	*[!"$alnum"_./@+,:=~\ -]* | *' ') invalid "$1" "$2" "$path_rule" ;;
	esac
	[ "${#2}" -le 4095 ] || invalid "$1" "$2" "$path_rule"
}
check_path DFS_SHARE_PATH "$share_path"
check_path DFS_STATE_DIR "$state_dir"
case $state_dir in
*' '*) invalid DFS_STATE_DIR "$state_dir" 'must not contain spaces' ;;
esac

# Leading zeros are refused rather than read as decimal or octal.
case $smb_port in
'' | *[!0-9]* | 0*) invalid DFS_SMB_PORT "$smb_port" 'must be an integer from 1 to 65535' ;;
esac
if [ "${#smb_port}" -gt 5 ] || [ "$smb_port" -gt 65535 ]; then
	invalid DFS_SMB_PORT "$smb_port" 'must be an integer from 1 to 65535'
fi

case $log_level in
[0-9] | 10) ;;
*) invalid DFS_LOG_LEVEL "$log_level" 'must be an integer from 0 to 10' ;;
esac

case $guest_account in
'' | [!"$alpha"_]* | *[!"$alnum"_.-]*) invalid DFS_GUEST_ACCOUNT "$guest_account" 'must be a user name matching ^[A-Za-z_][A-Za-z0-9_.-]{0,31}$' ;;
esac
[ "${#guest_account}" -le 32 ] || invalid DFS_GUEST_ACCOUNT "$guest_account" 'must be a user name matching ^[A-Za-z_][A-Za-z0-9_.-]{0,31}$'
id -u -- "$guest_account" >/dev/null 2>&1 || invalid DFS_GUEST_ACCOUNT "$guest_account" 'must name an existing user of this image'

if [ -n "${DFS_SMB_INTERFACES+set}" ]; then
	case $interfaces in
	'' | *[!"$alnum".:/_\ -]*) invalid DFS_SMB_INTERFACES "$interfaces" 'must be a non-empty list of interface names or addresses (letters, digits, spaces and . : / _ -)' ;;
	esac
	bind=''
else
	bind='; '
	interfaces=''
fi

case $shim_log in
0 | 1) ;;
*) invalid DFS_SHIM_LOG "$shim_log" 'must be 0 or 1' ;;
esac

marker=${DFS_SHIM_MARKER-$state_dir/shim/nlink0-seen}
check_path DFS_SHIM_MARKER "$marker"

if [ -n "${DFS_SMB_TEMPLATE+set}" ]; then
	template=$DFS_SMB_TEMPLATE
else
	template=$(dirname -- "$0")/smb.conf.template
	[ -f "$template" ] || template=/usr/local/share/dfs/smb.conf.template
fi
[ -r "$template" ] || invalid DFS_SMB_TEMPLATE "$template" 'must be a readable smb.conf template'

# smbd refuses a tree connect while the share path is not the FUSE mount (an
# unmounted FUSE leaves an empty directory that smbd would otherwise serve as
# the share). smbd runs the command through /bin/sh -c with Samba's escaping
# of shell characters, so the script's path carries no space or quote.
if [ -n "${DFS_READY_SCRIPT+set}" ]; then
	ready_script=$DFS_READY_SCRIPT
else
	ready_script=/dfs-shim/dfs-smbd-ready
	for candidate in "$(dirname -- "$0")/ready.sh" "$(dirname -- "$0")/dfs-smbd-ready"; do
		if [ -f "$candidate" ]; then
			ready_script=$candidate
			break
		fi
	done
	case $ready_script in
	/*) ;;
	*) ready_script=$(cd -- "$(dirname -- "$ready_script")" && pwd)/$(basename -- "$ready_script") ;;
	esac
fi
check_path DFS_READY_SCRIPT "$ready_script"
case $ready_script in
*' '*) invalid DFS_READY_SCRIPT "$ready_script" 'must not contain spaces' ;;
esac
if [ ! -f "$ready_script" ] || [ ! -r "$ready_script" ]; then
	invalid DFS_READY_SCRIPT "$ready_script" 'must be a readable file (the image'"'"'s dfs-smbd-ready, or its copy in /dfs-shim with shim.mode init)'
fi

case $smbd in
'') invalid DFS_SMBD "$smbd" 'must name the smbd binary' ;;
esac
command -v -- "$smbd" >/dev/null 2>&1 || invalid DFS_SMBD "$smbd" 'must name an executable smbd (a path or a command in PATH)'

[ -d "$share_path" ] || printf '%s: warning: %s does not exist yet; smbd serves it once it does\n' "$me" "$share_path" >&2

# The marker directory is world-writable (sticky, like /tmp): smbd touches
# files as the guest account, so the shim creates the marker with that uid.
umask 022
mkdir -p -- "$state_dir" "$state_dir/lock" "$state_dir/state" "$state_dir/cache" \
	"$state_dir/run" "$state_dir/log" "$(dirname -- "$marker")"
# smbd creates the others itself but refuses to start without this one.
[ -d "$state_dir/private" ] || mkdir -m 0700 -- "$state_dir/private"
chmod 1777 -- "$(dirname -- "$marker")"
# A marker left by an earlier smbd of this pod would report a rewrite that
# this one has not made (yet).
rm -f -- "$marker"

conf=$state_dir/smb.conf
R_SHARE_NAME=$share_name R_SHARE_PATH=$share_path R_SMB_PORT=$smb_port \
	R_LOG_LEVEL=$log_level R_GUEST_ACCOUNT=$guest_account R_BIND=$bind \
	R_INTERFACES=$interfaces R_STATE_DIR=$state_dir R_READY_SCRIPT=$ready_script \
	awk '
	# index()/substr() instead of gsub(): values are literal text, and "&"
	# or "\" in a gsub replacement would be interpreted.
	function subst(line, key, val,    out, i) {
		out = ""
		while ((i = index(line, key)) > 0) {
			out = out substr(line, 1, i - 1) val
			line = substr(line, i + length(key))
		}
		return out line
	}
	{
		line = $0
		line = subst(line, "@SHARE_NAME@", ENVIRON["R_SHARE_NAME"])
		line = subst(line, "@SHARE_PATH@", ENVIRON["R_SHARE_PATH"])
		line = subst(line, "@SMB_PORT@", ENVIRON["R_SMB_PORT"])
		line = subst(line, "@LOG_LEVEL@", ENVIRON["R_LOG_LEVEL"])
		line = subst(line, "@GUEST_ACCOUNT@", ENVIRON["R_GUEST_ACCOUNT"])
		line = subst(line, "@BIND@", ENVIRON["R_BIND"])
		line = subst(line, "@INTERFACES@", ENVIRON["R_INTERFACES"])
		line = subst(line, "@STATE_DIR@", ENVIRON["R_STATE_DIR"])
		line = subst(line, "@READY_SCRIPT@", ENVIRON["R_READY_SCRIPT"])
		print line
	}' "$template" >"$conf.tmp"
if grep -n '@[A-Z_]*@' "$conf.tmp" >&2; then
	rm -f -- "$conf.tmp"
	die "$template has placeholders this entrypoint does not know (above)"
fi
mv -f -- "$conf.tmp" "$conf"

# The tree connect check (ready.sh) reads the share path from smbd's
# environment, which is this one: the default too must reach it.
export DFS_SHIM_MARKER="$marker" DFS_SHIM_LOG="$shim_log" DFS_SHARE_PATH="$share_path"

printf '%s: serving %s as [%s] on port %s (log level %s, config %s, LD_PRELOAD=%s)\n' \
	"$me" "$share_path" "$share_name" "$smb_port" "$log_level" "$conf" "${LD_PRELOAD:-none}"

# --foreground --no-process-group: stay PID 1's child and get signals; never
# -i, which serves a single connection and exits.
exec "$smbd" --foreground --no-process-group --debug-stdout -s "$conf"
