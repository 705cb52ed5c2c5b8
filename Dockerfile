# overnight in one image: the nightly job, training and the server.
#
#   make image                                   # docker where a daemon answers, else podman
#   docker run --rm -v "$PWD/data:/data" --user "$(id -u):$(id -g)" overnight nightly 2026-11-05
#   docker run --rm -p 8080:8080 -v "$PWD/data:/data" overnight serve --host 0.0.0.0
#   docker build --build-arg VARIANT=gpu -t overnight:gpu .   # then: docker run --gpus all ...
#
# Three stages: the dependencies (rebuilt only when setup.py changes), the project as a wheel,
# and what runs. A change to the code alone reuses every dependency layer (docs/containers.md;
# `make image-test` builds and runs it).

ARG BASE_IMAGE=debian:bookworm-slim

# 1. Python and every dependency, in a virtual environment: rebuilt only when setup.py changes.
FROM ${BASE_IMAGE} AS dependencies
ARG VARIANT=cpu
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/overnight
# build-ca.crt: the certificates of a proxy between this build and the package index, when there
# is one (scripts/container/build_image.sh copies the host's); this stage's only.
COPY setup.py scripts/container/requirements.py build-ca.cr[t] /build/
RUN python3 /build/requirements.py /build/setup.py "${VARIANT}" > /build/requirements.txt \
    && if [ -f /build/build-ca.crt ]; then export PIP_CERT=/build/build-ca.crt; fi \
    && /opt/overnight/bin/pip install --quiet setuptools wheel -r /build/requirements.txt

# 2. The project as a wheel, and the image's luigi.cfg: the source's only layers.
FROM dependencies AS project
COPY . /build/src
RUN /opt/overnight/bin/pip wheel --quiet --no-deps --no-build-isolation -w /build/out /build/src \
    && python3 /build/src/scripts/container/image_config.py /build/src/luigi.cfg > /build/out/luigi.cfg \
    && cp /build/src/logging.ini /build/out/logging.ini

# 3. What runs: Python, the environment (a layer shared by every build with the same setup.py)
# and the wheel installed into it; no compilers, pip caches, sources or tests.
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 10001 --user-group --no-create-home --home-dir /tmp overnight \
    && mkdir /data && chown overnight:overnight /data
COPY --from=dependencies /opt/overnight /opt/overnight
COPY scripts/container/entrypoint.sh /usr/local/bin/overnight-entrypoint
COPY scripts/container/healthcheck.py /usr/local/bin/overnight-healthcheck
COPY --from=project /build/out /tmp/overnight-build
RUN PIP_NO_CACHE_DIR=1 /opt/overnight/bin/pip install --quiet --no-deps /tmp/overnight-build/*.whl \
    && mkdir /etc/luigi && mv /tmp/overnight-build/luigi.cfg /tmp/overnight-build/logging.ini /etc/luigi/ \
    && rm -rf /tmp/overnight-build
# HOME and USER for whatever uid `--user` names (Keras, Matplotlib and Luigi look them up);
# the data root, its SQLite database and the server's journal all live in the /data volume.
ENV PATH=/opt/overnight/bin:$PATH \
    HOME=/tmp USER=overnight MPLCONFIGDIR=/tmp/matplotlib \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
VOLUME /data
WORKDIR /data
USER overnight
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s CMD ["python3", "/usr/local/bin/overnight-healthcheck"]
ENTRYPOINT ["/usr/local/bin/overnight-entrypoint"]
CMD ["--help"]
