#!/usr/bin/env bash
# The Dockerfile's base image, built locally from Debian's packages when no registry gives it:
# mmdebstrap writes a minimal Debian 12 root file system, podman imports it under the name the
# Dockerfile asks for (docker.io/library/debian:bookworm-slim).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/engine.sh"

if $ENGINE image inspect "$BASE_IMAGE" > /dev/null 2>&1; then
    exit 0
fi
if $ENGINE pull -q "$BASE_IMAGE" > /dev/null 2>&1; then
    echo "pulled $BASE_IMAGE"
    exit 0
fi
command -v mmdebstrap > /dev/null || apt-get install -y -qq mmdebstrap > /dev/null
rootfs="$(mktemp -d)/rootfs.tar"
trap 'rm -rf "$(dirname "$rootfs")"' EXIT
# Documentation and manual pages are left out, as Debian's own slim images leave them out.
mmdebstrap --quiet --variant=minbase \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    bookworm "$rootfs"
$ENGINE import -q "$rootfs" "docker.io/library/$BASE_IMAGE" > /dev/null
echo "no registry gave $BASE_IMAGE: built it from Debian's packages with mmdebstrap"
