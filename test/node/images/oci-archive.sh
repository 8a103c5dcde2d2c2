#!/usr/bin/env bash
# Writes a one-layer OCI image archive (an OCI layout in a tar, what `ctr images import` reads)
# from a directory, without a container engine:
#
#   oci-archive.sh NAME ROOTDIR OUT.tar ENTRYPOINT [ARG...]
#
# NAME is the full reference containerd records (e.g. localhost/dfs-pause:1). The layer is
# reproducible: sorted, owned by root, every mtime 0.
set -euo pipefail

name=${1:?usage: oci-archive.sh NAME ROOTDIR OUT.tar ENTRYPOINT [ARG...]}
rootdir=${2:?rootdir missing}
out=${3:?output path missing}
shift 3
[ "$#" -gt 0 ] || { echo "oci-archive: an entrypoint is required" >&2; exit 2; }
tag=${name##*:}

json_array() {
  local first=1 a
  printf '['
  for a in "$@"; do
    [ "$first" -eq 1 ] || printf ','
    first=0
    a=${a//\\/\\\\}
    printf '"%s"' "${a//\"/\\\"}"
  done
  printf ']'
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/layout/blobs/sha256"
blob() { # file -> moves it into blobs/, prints "digest size"
  local d s
  d=$(sha256sum "$1" | cut -d' ' -f1)
  s=$(stat -c %s "$1")
  mv "$1" "$work/layout/blobs/sha256/$d"
  echo "$d $s"
}

tar --sort=name --numeric-owner --owner=0 --group=0 --mtime=@0 -C "$rootdir" -cf "$work/layer.tar" .
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
gzip -n -9 "$work/layer.tar"
read -r layer_digest layer_size < <(blob "$work/layer.tar.gz")

printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":%s,"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"test/node/images/oci-archive.sh"}]}' \
  "$(json_array "$@")" "$diff_id" >"$work/config.json"
read -r config_digest config_size < <(blob "$work/config.json")

printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
  "$config_digest" "$config_size" "$layer_digest" "$layer_size" >"$work/manifest.json"
read -r manifest_digest manifest_size < <(blob "$work/manifest.json")

printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
  "$manifest_digest" "$manifest_size" "$name" "$tag" >"$work/layout/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' >"$work/layout/oci-layout"

tar --sort=name --numeric-owner --owner=0 --group=0 --mtime=@0 -C "$work/layout" -cf "$out.tmp" .
mv "$out.tmp" "$out"
