# syntax=docker/dockerfile:1
# deleverage: `docker build -t deleverage .`; docker-compose.yml builds and runs it.
# Two stages on the same base (the venv's interpreter path must exist in both): the builder
# installs the package and its dependencies into /opt/venv; the runtime copies only the venv
# and the default configuration, and runs as an unprivileged user.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
# The exact versions of requirements.lock (`make lock`), each checked against its hash, in a
# layer of their own; then the package alone. pip compiles the bytecode: the runtime's file
# system can then be read-only.
COPY requirements.lock ./
RUN /opt/venv/bin/pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY service ./service
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps .

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 deleverage \
    && useradd --system --uid 10001 --gid deleverage --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin deleverage
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY config/default.yaml config/demo.yaml ./config/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DELEVERAGE_API__HOST=0.0.0.0 \
    DELEVERAGE_LOG_FORMAT=json
USER 10001:10001
EXPOSE 8000
# Slim images have no curl: the probe is Python's own HTTP client.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=3).status != 200)"]
ENTRYPOINT ["deleverage"]
CMD ["run"]
