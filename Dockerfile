# syntax=docker/dockerfile:1
#
# nim-supervisor on top of the official vLLM OpenAI server image: the supervisor
# is the container's main process (under tini) and starts `vllm serve …` itself.
#
#   docker build -t nim-supervisor:0.1.0 .
#   docker build --build-arg VLLM_IMAGE=vllm/vllm-openai:v0.11.0 -t nim-supervisor:0.1.0-vllm0.11 .
#   docker run --rm --gpus all -p 8000:8000 -e HF_TOKEN nim-supervisor:0.1.0
#   docker run --rm --gpus all nim-supervisor:0.1.0 list-model-profiles
#
# See docs/deployment.md. test/deploy-dockerfile.test.ts checks this file.

# The engine image the runtime stage is built on. Pinned to a release (never
# `latest`); override with --build-arg VLLM_IMAGE=… (a digest works too).
# v0.31.0 is the newest vLLM release (2026-10-05). It is a CUDA 13 build: the
# host driver must support CUDA 13 (R580+); the supervisor compares the image's
# CUDA_VERSION with the driver's before it starts vLLM. Supported range and
# pinning another release (e.g. v0.11.0 for older drivers): docs/deployment.md.
ARG VLLM_IMAGE=vllm/vllm-openai:v0.31.0
# A Node LTS (the supervisor needs Node >= 20.5). It is used for the build and
# its `node` binary is copied into the runtime stage.
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS node

# ---------------------------------------------------------------------------
# Build: compile the TypeScript and bundle the two entry points with esbuild.
# ---------------------------------------------------------------------------
FROM node AS build
WORKDIR /app

# tini for the runtime stage. tini-static is statically linked, so it does not
# depend on the engine image's libc, and the large CUDA image needs no apt-get.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && /usr/bin/tini-static --version

COPY package.json package-lock.json ./
# All dependencies, dev ones included (tsc is one). --ignore-scripts skips the
# `prepare` script (tsc): the sources are not here yet, and the build below is
# the only one. No dependency needs its install script: esbuild (the bundler) has
# one, but finds its platform binary (@esbuild/linux-x64) without it.
RUN npm ci --ignore-scripts --no-audit --no-fund

COPY tsconfig.json ./
COPY src ./src
# `npm run build` bundles the supervisor (dist/src/cli/main.js) and the
# simulator (dist/src/sim/main.js) with every dependency into dist/src/chunks/,
# so the runtime stage needs no node_modules and nothing is pruned here.
# The build precompiles the shipped manifests (dist/src/manifests-precompiled: start-up skips
# parsing YAML they match; src/manifest/precompiled.ts).
COPY manifests ./manifests
RUN npm run build \
 && test -f dist/src/cli/main.js \
 && test -d dist/src/chunks

# ---------------------------------------------------------------------------
# Runtime: the vLLM image plus Node, the bundled supervisor, the manifests and
# the GPU catalogue. No node_modules: the bundle carries its dependencies (the
# only packages it leaves unresolved are optional ones it loads inside
# try/catch: systeminformation's macOS sensors, ws's bufferutil and
# utf-8-validate). npm is not run here.
# ---------------------------------------------------------------------------
FROM ${VLLM_IMAGE} AS runtime
ARG VLLM_IMAGE
ARG SUPERVISOR_VERSION=0.1.0

LABEL org.opencontainers.image.title="nim-supervisor" \
      org.opencontainers.image.description="NIM-style supervisor in front of vLLM: GPU detection, profile selection, health, metrics and a streaming proxy" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${SUPERVISOR_VERSION}" \
      org.opencontainers.image.base.name="${VLLM_IMAGE}"

# Only the node binary: the supervisor needs no npm at run time.
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=build /usr/bin/tini-static /usr/bin/tini

# The package root: the supervisor finds manifests/, profiles/ and
# package.json (the version) as the nearest directory above its own file that
# holds them (src/config/paths.ts): /opt/nim-supervisor. Files stay owned by
# root, read-only for the runtime user.
WORKDIR /opt/nim-supervisor
COPY --from=build /app/dist/src ./dist/src
COPY package.json ./
COPY manifests ./manifests
COPY profiles ./profiles

# - uid/gid 1000 (as in NIM's Helm chart), home /opt/nim; its .cache holds the
#   Hugging Face and vLLM caches (mount a volume there). An image that already
#   has uid 1000 (Ubuntu 24.04's `ubuntu`) keeps that user.
# - /usr/local/bin/nim-supervisor, for `docker exec`/`kubectl exec`.
# - Fail the build early if anything the supervisor runs is missing: vllm (the
#   engine), setpriv (util-linux, part of every Ubuntu base image; it ties the
#   engine's life to the supervisor's with --pdeathsig) and sh (the reaper).
RUN set -eu; \
    if ! getent group 1000 >/dev/null; then groupadd --gid 1000 nim; fi; \
    if ! getent passwd 1000 >/dev/null; then \
      useradd --uid 1000 --gid 1000 --home-dir /opt/nim --no-create-home --shell /usr/sbin/nologin nim; \
    fi; \
    mkdir -p /opt/nim/.cache; \
    chown -R 1000:1000 /opt/nim; \
    printf '#!/bin/sh\nexec /usr/local/bin/node /opt/nim-supervisor/dist/src/cli/main.js "$@"\n' > /usr/local/bin/nim-supervisor; \
    chmod 0755 /usr/local/bin/nim-supervisor; \
    node --version; \
    tini --version; \
    command -v setpriv; \
    command -v sh; \
    command -v vllm; \
    nim-supervisor --version

# The supervisor finds its files from its own path, not the working directory;
# the engine inherits this one, so make it the user's writable home.
WORKDIR /opt/nim

ENV HOME=/opt/nim \
    XDG_CACHE_HOME=/opt/nim/.cache \
    HF_HOME=/opt/nim/.cache/huggingface \
    NIM_CACHE_PATH=/opt/nim/.cache \
    NODE_ENV=production \
    NIM_SERVER_PORT=8000

# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 8000

# The supervisor drains on SIGTERM (NIM_SHUTDOWN_GRACE_PERIOD), then stops the
# engine (NIM_ENGINE_STOP_TIMEOUT). Give `docker stop` enough time: -t 60.
STOPSIGNAL SIGTERM

# Liveness only: it answers as soon as the supervisor listens, also while the
# model loads (readiness is /v1/health/ready). Kubernetes ignores HEALTHCHECK;
# the probes in deploy/kubernetes/ apply there.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.NIM_SERVER_PORT || '8000') + '/v1/health/live', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# tini is PID 1: it reaps orphans and forwards SIGTERM/SIGINT to the supervisor,
# which orders the shutdown itself (no -g: the engine must not get the signal
# before requests are drained). -s keeps reaping when tini is not PID 1
# (docker run --init, shareProcessNamespace). The vLLM image's own entrypoint
# (the Python API server) is replaced.
ENTRYPOINT ["/usr/bin/tini", "-s", "--", "/usr/local/bin/node", "/opt/nim-supervisor/dist/src/cli/main.js"]
# `docker run IMAGE list-model-profiles` / `select-profile` replace this.
CMD ["serve"]
