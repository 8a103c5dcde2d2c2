#!/bin/sh
# Readiness check of the dfs-injector smbd sidecar (an exec probe).
#
# Ready (exit 0) when DFS_SHARE_PATH is a mount point whose top mount's type
# starts with DFS_READY_FSTYPE (default "fuse"; empty accepts any type) and it
# can be listed within DFS_READY_TIMEOUT seconds (default 5). In a pod the
# share path is always a mount point (the volume), so the type is what tells
# that the FUSE program has mounted.
#
# It also reports whether the filesystem reports st_nlink 0, i.e. whether the
# shim is needed: from the shim's marker file (DFS_SHIM_MARKER, default
# $DFS_STATE_DIR/shim/nlink0-seen), else by stat-ing the share root and its
# first entries itself. When nlink 0 is seen and the running smbd does not
# have the shim loaded, every path of the share would fail with
# NT_STATUS_OBJECT_PATH_NOT_FOUND: that is reported as not ready.
#
# Output: first line "ready: ..." or "not ready: ...", then "nlink0: ..." and
# "smbd: ..." lines. Exit 0 ready, 1 not ready, 64 bad configuration.
#
# "ready.sh tree-connect": smbd's "root preexec" at every tree connect to the
# share (smb.conf.template). Only the mount rule above, the same code: exit 0
# when the share path is the FUSE mount; else one line on stderr and exit 1, and
# smbd refuses the connect, so it never serves the empty directory a gone FUSE
# mount leaves underneath. No listing and no nlink look: it reads mountinfo
# only, so a connect costs no request to the FUSE program, and nlink 0 without
# the shim already fails every path loudly (the probe reports it).
set -u

# Exec probes inherit the container's environment, LD_PRELOAD included; the
# stat calls below must see what the filesystem really reports.
unset LD_PRELOAD

me=dfs-smbd-ready
mode=probe
case ${1-} in
'') ;;
tree-connect) mode=tree-connect ;;
*)
	printf '%s: unknown argument %s: the only one is tree-connect\n' "$me" "$1" >&2
	exit 64
	;;
esac
share_path=${DFS_SHARE_PATH-/mnt/dfs}
state_dir=${DFS_STATE_DIR-/run/dfs-smbd}
marker=${DFS_SHIM_MARKER-$state_dir/shim/nlink0-seen}
fstype_prefix=${DFS_READY_FSTYPE-fuse}
limit=${DFS_READY_TIMEOUT-5}

case $share_path in
/*) ;;
*)
	printf '%s: invalid DFS_SHARE_PATH=%s: must be an absolute path\n' "$me" "$share_path" >&2
	exit 64
	;;
esac
case $limit in
'' | *[!0-9]* | 0) printf '%s: invalid DFS_READY_TIMEOUT=%s: must be a whole number of seconds >= 1\n' "$me" "$limit" >&2
	exit 64 ;;
esac

# A hung FUSE program must fail the probe, not hang it.
bounded() {
	if command -v timeout >/dev/null 2>&1; then
		timeout "$limit" "$@"
	else
		"$@"
	fi
}

not_ready() {
	if [ "$mode" = tree-connect ]; then
		printf '%s: refusing a tree connect to %s: %s\n' "$me" "$share_path" "$*" >&2
	else
		printf 'not ready: %s\n' "$*"
	fi
	exit 1
}

# mountinfo (man 5 proc): field 5 is the mount point with spaces as \040; the
# type follows the "-" separator. The last match is the mount on top.
want=$share_path
while [ "${#want}" -gt 1 ] && [ "${want%/}" != "$want" ]; do want=${want%/}; done
fstype=$(R_WANT=$want awk '
	{
		mp = $5
		gsub(/\\040/, " ", mp)
		if (mp != ENVIRON["R_WANT"]) next
		for (i = 7; i <= NF && $i != "-"; i++) ;
		fstype = $(i + 1)
	}
	END { if (fstype != "") print fstype }' /proc/self/mountinfo)

[ -n "$fstype" ] || not_ready "$share_path is not a mount point (the FUSE program has not mounted it, or it is not shared with this container)"
case $fstype in
"$fstype_prefix"*) ;;
*) not_ready "$share_path is a $fstype mount, not ${fstype_prefix}* (DFS_READY_FSTYPE): the FUSE program has not mounted it yet" ;;
esac
[ "$mode" = probe ] || exit 0

if ! listing=$(bounded ls -A -- "$share_path" 2>&1); then
	not_ready "$share_path is mounted ($fstype) but cannot be listed within ${limit}s: $listing"
fi
entries=$(printf '%s\n' "$listing" | grep -c . || true)

# nlink 0: the shim's own report, else a look without the shim.
if [ -f "$marker" ]; then
	nlink0=yes
	nlink_line="nlink0: seen (shim marker $marker: $(head -n 1 -- "$marker" 2>/dev/null))"
else
	nlink0=no
	nlink_line="nlink0: not seen ($share_path and its first entries report st_nlink >= 1)"
	nlink0_at() {
		links=$(bounded stat -c '%h' -- "$1" 2>/dev/null) && [ "$links" = 0 ]
	}
	found=
	if nlink0_at "$share_path"; then
		found=$share_path
	else
		while IFS= read -r name; do
			[ -n "$name" ] || continue
			if nlink0_at "$share_path/$name"; then
				found=$share_path/$name
				break
			fi
		done <<EOF
$(printf '%s\n' "$listing" | head -n 5)
EOF
	fi
	if [ -n "$found" ]; then
		nlink0=yes
		nlink_line="nlink0: seen (stat without the shim: st_nlink 0 on $found)"
	fi
fi

# Is the shim loaded into the running smbd? Only answerable with its pid.
smbd_line="smbd: not found (no pid file in $state_dir/run)"
shim_loaded=unknown
pid=$(head -n 1 -- "$state_dir/run/smbd.pid" 2>/dev/null || true)
case $pid in
'' | *[!0-9]*) ;;
*)
	if [ -r "/proc/$pid/maps" ]; then
		if grep -q 'fix_nlink' "/proc/$pid/maps" 2>/dev/null; then
			shim_loaded=yes
			smbd_line="smbd: pid $pid, nlink shim loaded"
		else
			shim_loaded=no
			smbd_line="smbd: pid $pid, nlink shim NOT loaded"
		fi
	else
		smbd_line="smbd: pid $pid is not running"
	fi
	;;
esac

if [ "$nlink0" = yes ] && [ "$shim_loaded" = no ]; then
	printf 'not ready: %s reports st_nlink 0 and smbd runs without the nlink shim, so every path of the share fails with NT_STATUS_OBJECT_PATH_NOT_FOUND (preload /usr/local/lib/dfs/fix_nlink.so: shim.mode image or init)\n' "$share_path"
	printf '%s\n%s\n' "$nlink_line" "$smbd_line"
	exit 1
fi

printf 'ready: %s is mounted (%s) and readable (%s entries)\n' "$share_path" "$fstype" "$entries"
printf '%s\n%s\n' "$nlink_line" "$smbd_line"
exit 0
