# syntax=docker/dockerfile:1
# Yushan control-plane image: one image for the API (`yushan api`) and the scheduler
# (`yushan scheduler`), used by charts/yushan.
#
# Stage 1 installs the runtime dependencies exactly as uv.lock pins them (versions and hashes,
# the same set `make run` installs), then the yushan wheel without dependencies, into a
# virtualenv.
# Stage 2 copies only that virtualenv onto a slim Python base: no compiler, pip cache or source
# tree in the final image, which runs as an unprivileged numeric user (UID/GID 10001) so that
# Kubernetes' runAsNonRoot can verify it.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/yushan
ARG UV_VERSION=0.13.9
COPY pyproject.toml README.md uv.lock ./
COPY api ./api
COPY cli ./cli
COPY k8s ./k8s
COPY quotas ./quotas
COPY scheduler ./scheduler
COPY store ./store
RUN python -m pip install "uv==${UV_VERSION}" \
    && uv export --frozen --no-dev --no-emit-project --format requirements-txt \
        --output-file /tmp/requirements.txt \
    && /opt/yushan/bin/pip install --require-hashes --no-deps -r /tmp/requirements.txt \
    && python -m pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/yushan/bin/pip install --no-deps /wheels/yushan-*.whl \
    && /opt/yushan/bin/pip uninstall --yes pip setuptools wheel

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="yushan" \
      org.opencontainers.image.description="Yushan fair-share GPU scheduler and control plane" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/yushan/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 yushan \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin yushan
COPY --from=builder /opt/yushan /opt/yushan
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080 9090
CMD ["yushan", "api", "--host", "0.0.0.0", "--port", "8080"]
