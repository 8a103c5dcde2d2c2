#!/bin/sh
# Self-test of a built shim against the libc it runs on, needing no FUSE
# mount: a file that is unlinked but still open reports st_nlink 0 through
# every fd entry point, and a file with two links must keep its 2. A symbol
# this libc lacks must fail with ENOSYS, except a *64 name whose plain name
# it has (musl >= 1.2.4 exports no *64 names), which must work.
# The Dockerfile's build stages run it (the only place the Alpine musl build
# is exercised); shim/test/shim.test.ts runs it for both local builds.
#
# Usage: selftest.sh SHIM.so PROBE
set -eu

if [ "$#" -ne 2 ]; then
	echo "usage: selftest.sh SHIM.so PROBE" >&2
	exit 64
fi
shim=$1
probe=$2

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf x >"$tmp/file"
ln "$tmp/file" "$tmp/link"

LD_PRELOAD='' "$probe" --unlinked "$tmp" file="$tmp/file" >"$tmp/without"
LD_PRELOAD=$shim "$probe" --unlinked "$tmp" file="$tmp/file" >"$tmp/with"

awk '
	function field(line, key,    rest) {
		if (!match(line, "\"" key "\":")) return ""
		rest = substr(line, RSTART + RLENGTH)
		sub(/[,}].*/, "", rest)
		gsub(/"/, "", rest)
		return rest
	}
	function fail(msg) { print "selftest: FAIL: " msg; bad = 1 }
	FNR == 1 { pass++ }
	{
		t = field($0, "target"); c = field($0, "call"); key = t " " c
		absent = field($0, "absent") == "true"
		rc = field($0, "rc"); nl = field($0, "nlink")
		if (pass == 1) {
			baseline_absent[key] = absent
			if (absent) next
			if (t == "unlinked" && (rc != 0 || nl != 0))
				fail(key ": without the shim expected nlink 0, got rc " rc " nlink " nl)
			if (t == "file" && (rc != 0 || nl != 2))
				fail(key ": without the shim expected nlink 2, got rc " rc " nlink " nl)
			next
		}
		checked++
		if (absent) { fail(key ": absent although the shim exports it"); next }
		if (rc != 0) {
			base = c; sub(/64$/, "", base)
			# musl >= 1.2.4 exports no *64 names; the shim must fall back
			# to the plain name, which this libc has.
			if (base != c && (t " " base) in baseline_absent && !baseline_absent[t " " base]) {
				fail(key ": ENOSYS although " base " exists (LFS64 fallback)"); next
			}
			if (field($0, "errno_name") == "ENOSYS" && baseline_absent[key]) { enosys++; next }
			fail(key ": failed with errno " field($0, "errno_name")); next
		}
		if (field($0, "errno_kept") != "true") fail(key ": errno changed by a successful call")
		want = t == "unlinked" ? 1 : 2
		if (nl != want) fail(key ": with the shim expected nlink " want ", got " nl)
	}
	END {
		if (checked == 0) fail("the probe printed nothing")
		if (!bad) printf "selftest: OK (%d calls, %d ENOSYS for symbols this libc lacks)\n", checked, enosys
		exit bad
	}' "$tmp/without" "$tmp/with"
