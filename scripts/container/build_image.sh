#!/usr/bin/env bash
# `make image`: the image from the Dockerfile, with docker or podman (engine.sh), tagged
# overnight:<version> and overnight:latest. VARIANT=gpu builds TensorFlow with CUDA.
#
# Where a proxy between this machine and the package index signs with its own certificate
# (PIP_CERT, SSL_CERT_FILE or pip's own `global.cert` names it), the build stage gets a copy as
# build-ca.crt.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
source "$here/engine.sh"

"$here/base_image.sh"
version="$(sed -n 's/^ *version="\(.*\)",$/\1/p' "$root/setup.py")"
certificate="${PIP_CERT:-${SSL_CERT_FILE:-$(python3 -m pip config list 2> /dev/null | sed -n "s/^global.cert='\(.*\)'$/\1/p")}}"
rm -f "$root/build-ca.crt"
if [ -n "$certificate" ] && [ -f "$certificate" ]; then
    cp "$certificate" "$root/build-ca.crt"
    trap 'rm -f "$root/build-ca.crt"' EXIT
fi
tags=(-t "overnight:$version" -t "$IMAGE")  # the CPU variant is the default, "latest"
[ "${VARIANT:-cpu}" = cpu ] || tags=(-t "overnight:$version-$VARIANT")
started=$(date +%s)
$BUILD --build-arg "VARIANT=${VARIANT:-cpu}" "${tags[@]}" "$root"
echo "built ${tags[1]} with $ENGINE in $(( $(date +%s) - started )) s"
