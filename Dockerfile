# syntax=docker/dockerfile:1
# embedsearch image: gRPC server, client, trainer and the PostgreSQL catalog
# tool (embedsearch-catalog) on Debian 12.
#
#   podman --runtime runc build --format docker --network host -t embedsearch .
#   docker build -t embedsearch .
#
# Build args:
#   JOBS=2         parallel compile jobs in the build stage
#   BUNDLE=        a bundle directory inside the build context to bake into
#                  the image at /var/lib/embedsearch/bundle (default: none;
#                  mount one instead, see docs/deploy.md)
#
# Runtime configuration (environment, or flags after the subcommand; see
# deploy/docker-entrypoint): EMBEDSEARCH_BUNDLE, EMBEDSEARCH_PORT,
# EMBEDSEARCH_TOKEN, EMBEDSEARCH_THREADS, EMBEDSEARCH_CATALOG.

############################ build stage ######################################
FROM debian:bookworm-slim AS build

# scripts/install-deps' toolchain and libraries, less what the image does not
# build (tests, benchmarks) and the Python peers and data set.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config ca-certificates ccache \
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
      libfaiss-dev libeigen3-dev libabsl-dev libsqlite3-dev libpng-dev \
      libjpeg-dev zlib1g-dev libopenblas-dev prometheus-cpp-dev libpq-dev \
      libssl-dev nlohmann-json3-dev libcli11-dev \
 && rm -rf /var/lib/apt/lists/*

# Only what the three binaries are built from, so editing tests, benchmarks
# or docs does not invalidate the compile layer.
WORKDIR /src
COPY CMakeLists.txt ./
COPY proto proto
COPY core core
COPY trainer trainer
COPY server server
COPY client client

ARG JOBS=2
ARG TARGETS="embedsearch-server embedsearch-client embedsearch-trainer embedsearch-catalog"
# Portable code (-march=x86-64-v3 instead of the build machine's CPU).
# ccache in a build cache mount: a rebuild after a small source change (the
# container test after each commit) recompiles only what changed.
RUN --mount=type=cache,target=/ccache,id=embedsearch-ccache \
    export CCACHE_DIR=/ccache CCACHE_MAXSIZE=2G \
 && cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache \
      -DEMBEDSEARCH_NATIVE=OFF \
      -DEMBEDSEARCH_BUILD_TESTS=OFF -DEMBEDSEARCH_BUILD_BENCH=OFF \
 && cmake --build /build -j"${JOBS}" --target ${TARGETS} \
 && { ccache --show-stats | grep -Ei 'hits|misses' || true; }

# Stripped binaries into /out/bin, and the list of Debian packages that own
# the shared libraries they load: the runtime stage installs exactly those.
COPY deploy/runtime-packages /usr/local/bin/
RUN mkdir -p /out/bin \
 && for t in ${TARGETS}; do \
      f=$(find /build -type f -name "$t" -perm -u+x | head -n1); \
      [ -n "$f" ] || { echo "no binary $t" >&2; exit 1; }; \
      install -m 0755 -s "$f" /out/bin/; \
    done \
 && runtime-packages /out/bin/* > /out/runtime-packages \
 && echo "runtime packages:" && cat /out/runtime-packages

############################ runtime stage ####################################
FROM debian:bookworm-slim

COPY --from=build /out/runtime-packages /tmp/runtime-packages
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      $(cat /tmp/runtime-packages) \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages

COPY --from=build /out/bin/ /usr/local/bin/
COPY deploy/docker-entrypoint /usr/local/bin/embedsearch-entrypoint
# Fail the build, not the first start, when a library is missing.
RUN ! ldd /usr/local/bin/embedsearch-* | grep 'not found'

# A fixed numeric uid so Kubernetes' runAsNonRoot can verify it.
# /var/lib/embedsearch is the data volume: bundles live below it (the trainer
# renames a finished bundle into place, which needs the parent writable).
RUN groupadd --system --gid 10001 embedsearch \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /var/lib/embedsearch --shell /usr/sbin/nologin embedsearch \
 && mkdir -p /var/lib/embedsearch \
 && chown 10001:10001 /var/lib/embedsearch

ARG BUNDLE=
RUN --mount=type=bind,target=/context \
    if [ -n "${BUNDLE}" ]; then \
      cp -r "/context/${BUNDLE}" /var/lib/embedsearch/bundle \
      && chown -R 10001:10001 /var/lib/embedsearch/bundle; \
    fi

ENV EMBEDSEARCH_BUNDLE=/var/lib/embedsearch/bundle \
    EMBEDSEARCH_PORT=50051 \
    EMBEDSEARCH_THREADS= \
    EMBEDSEARCH_TOKEN= \
    EMBEDSEARCH_METRICS_PORT=9464
VOLUME ["/var/lib/embedsearch"]
USER 10001:10001
WORKDIR /var/lib/embedsearch
# 50051: gRPC; 9464: Prometheus GET /metrics (docs/server.md, "Metrics").
EXPOSE 50051 9464

# grpc.health.v1 through the client (no grpc_health_probe binary needed).
# Podman keeps HEALTHCHECK only with --format docker.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["embedsearch-entrypoint", "health"]

ENTRYPOINT ["embedsearch-entrypoint"]
CMD ["server"]
