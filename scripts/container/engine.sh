# Sourced by the image scripts: which container engine builds and runs the image here, and how.
#
# docker where its daemon answers, else podman. Sets ENGINE, BUILD (a build command without its
# context) and RUN (a run command without its image). On a machine that cannot set a container's
# resource limits (podman's crun fails with "setrlimit ... Operation not permitted" in some VMs),
# containers run with runc and limits the host allows, and a line says so.

IMAGE="${IMAGE:-overnight:latest}"
BASE_IMAGE="${BASE_IMAGE:-debian:bookworm-slim}"

if command -v docker > /dev/null && docker info > /dev/null 2>&1; then
    ENGINE=docker
    BUILD="docker build"
    RUN="docker run"
elif command -v podman > /dev/null; then
    ENGINE=podman
    # chroot isolation builds inside VMs and containers that lack namespaces for RUN steps;
    # cgroupfs where no systemd manages cgroups. --format docker keeps the HEALTHCHECK (OCI has none).
    BUILD="podman build --isolation chroot --format docker --pull=never"
    [ -d /run/systemd/system ] || BUILD="$BUILD --cgroup-manager cgroupfs"
    RUN="podman run"
else
    echo "neither docker (with a running daemon) nor podman: install one (apt-get install podman)" >&2
    exit 2
fi

podman_run_flags() {
    # Plain `podman run` where it works; else runc with the host's own open-file limit and a
    # process limit under the host's (crun, and runc at the host's exact value, were refused here).
    if $RUN --rm --no-healthcheck "$BASE_IMAGE" true > /dev/null 2>&1; then
        return
    fi
    command -v runc > /dev/null || apt-get install -y -qq runc > /dev/null
    RUN="podman --runtime runc run --ulimit nofile=$(ulimit -Sn):$(ulimit -Hn) --ulimit nproc=32768:32768"
    if ! $RUN --rm --no-healthcheck "$BASE_IMAGE" true; then
        echo "podman cannot run a container here, with crun or with runc" >&2
        exit 2
    fi
    echo "podman run: with runc and explicit limits (crun cannot set the default ones here)"
}
