# syntax=docker/dockerfile:1
# Switchboard: a slim, non-root production image. Build: docker build -t switchboard .
# Two stages: the build stage resolves the locked dependencies with uv; the runtime stage gets only the virtualenv.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN pip install "uv==0.13.8"
WORKDIR /app
# Dependencies first, in their own layer: it is rebuilt only when the lock file changes.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY domain ./domain
COPY application ./application
COPY infrastructure ./infrastructure
COPY interfaces ./interfaces
COPY migrations ./migrations
RUN uv sync --frozen --no-dev --no-editable

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 switchboard \
    && useradd --system --uid 10001 --gid switchboard --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin switchboard \
    && mkdir -p /data \
    && chown switchboard:switchboard /data
COPY --from=build /app/.venv /app/.venv
ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SWITCHBOARD_ENVIRONMENT=production \
    SWITCHBOARD_HOST=0.0.0.0 \
    SWITCHBOARD_PORT=8000 \
    SWITCHBOARD_LOG_FORMAT=json \
    PROMETHEUS_MULTIPROC_DIR=/tmp/switchboard-metrics
# The only writable places: /data (an SQLite file, if one is used) and /tmp (worker metrics). The root filesystem
# can be mounted read-only.
WORKDIR /data
USER 10001:10001
EXPOSE 8000
# Liveness of the process; orchestrators should route traffic on /health/ready instead.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request as u; sys.exit(u.urlopen('http://127.0.0.1:8000/health/live', timeout=2).status != 200)"]
STOPSIGNAL SIGTERM
CMD ["switchboard", "serve"]
