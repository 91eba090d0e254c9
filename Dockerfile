# ml-service container image.
#
# Stage `build` installs the hashed development lock, trains the default model from the data in
# the repository and builds the package wheel. The final stage holds only the runtime lock (no
# scikit-learn: onnxruntime serves the model), the wheel, and the trained artifact, and runs as
# an unprivileged user. Nothing is written outside /tmp at run time, so the container works with
# a read-only root filesystem (mount a writable /tmp: `docker run --read-only --tmpfs /tmp ...`).
#
#   docker build -t ml-service .            (or `make image`)
#   docker run --rm -p 8000:8000 ml-service
#
# The base image is pinned to an exact Python patch release; pass
# `--build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:...` to pin its digest as well.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src

# Dependencies first, so that code changes do not invalidate this layer.
COPY requirements/dev.txt requirements/dev.txt
RUN python -m venv /opt/build \
    && /opt/build/bin/pip install --no-cache-dir --require-hashes -r requirements/dev.txt

COPY pyproject.toml README.md ./
COPY src ./src
COPY data ./data

RUN /opt/build/bin/pip install --no-cache-dir --no-deps --no-build-isolation . \
    && /opt/build/bin/ml-service train --data data/housing.csv --schema data/housing.schema.json --out /models/housing \
    && /opt/build/bin/pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels .


FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="ml-service" \
      org.opencontainers.image.description="House-price prediction service (KServe V1, Open Inference Protocol V2 and the original /predict)" \
      org.opencontainers.image.licenses="MIT"

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH

COPY requirements/runtime.txt /tmp/runtime.txt
COPY --from=build /wheels /tmp/wheels
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --require-hashes -r /tmp/runtime.txt \
    && /opt/venv/bin/pip install --no-cache-dir --no-deps /tmp/wheels/ml_service-*.whl \
    && /opt/venv/bin/pip uninstall --yes pip \
    && rm -rf /tmp/runtime.txt /tmp/wheels \
    && groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /tmp --shell /usr/sbin/nologin app

COPY --from=build /models/housing /models/housing

# Settings of `ml-service serve` (see the README's configuration table). PORT is honoured as on
# every platform; HOME and the metrics directory live under /tmp, the only writable path.
ENV HOME=/tmp \
    PORT=8000 \
    ML_SERVICE_HOST=0.0.0.0 \
    ML_SERVICE_MODEL_DIR=/models/housing \
    ML_SERVICE_METRICS_DIR=/tmp/ml-service-metrics \
    ML_SERVICE_GRACEFUL_TIMEOUT=30

USER 10001:10001
WORKDIR /tmp
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:%s/health/ready' % os.environ.get('PORT', '8000'), timeout=4)"]

STOPSIGNAL SIGTERM
CMD ["ml-service", "serve"]
