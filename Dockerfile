# ml-service container image.
#
# Stage `build` installs the hashed build lock (training + the wheel's build backend), trains the
# default model from the data in the repository, builds the package wheel and installs it, alone,
# into an otherwise empty /opt/venv. Stage `deps` makes the same /opt/venv holding only the
# runtime lock (no scikit-learn: onnxruntime serves the model) and removes pip from it. The final
# stage copies the two on top of each other, so its layers run from the least to the most often
# changed: base, user, runtime dependencies, the package, the model. It runs as an unprivileged
# user and writes nothing outside /tmp, so it works with a read-only root filesystem
# (`--read-only --tmpfs /tmp`). Only classic Dockerfile instructions are used, so the legacy
# builder (`az acr build`), BuildKit and podman/buildah all build it.
#
#   make image                               (podman or docker; see docs/kubernetes.md)
#   docker build -t ml-service .
#   docker run --rm --read-only --tmpfs /tmp -p 8000:8000 ml-service
#
# The base is pinned to an exact Python patch release; pass
# `--build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:...` to pin its digest as well,
# or the local Debian base of `make base-image` where no registry is reachable. pip reads the
# system CA bundle (PIP_CERT) and keeps the wheels it fetches in /wheelhouse of the stages that
# are not shipped, so a build can mount another CA bundle and a shared wheelhouse over them.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src

# Dependencies first, so that code changes do not invalidate this layer. Wheels are fetched
# into /wheelhouse (a file already there is kept when its hash matches) and installed from it.
COPY requirements/build.txt requirements/build.txt
RUN python -m venv /opt/build \
    && /opt/build/bin/pip download --no-cache-dir --require-hashes --dest /wheelhouse -r requirements/build.txt \
    && /opt/build/bin/pip install --no-cache-dir --no-index --find-links /wheelhouse --require-hashes -r requirements/build.txt

COPY pyproject.toml README.md ./
COPY src ./src
COPY data ./data

# The wheel goes, without its dependencies, into a venv of its own at the runtime path: the
# final stage lays it over the dependencies' venv as a small layer of its own.
RUN /opt/build/bin/pip install --no-cache-dir --no-deps --no-build-isolation . \
    && /opt/build/bin/ml-service train --data data/housing.csv --schema data/housing.schema.json --out /models/housing \
    && /opt/build/bin/pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels . \
    && python -m venv --without-pip /opt/venv \
    && /opt/build/bin/pip --python /opt/venv/bin/python install --no-cache-dir --no-deps /wheels/ml_service-*.whl


FROM ${PYTHON_IMAGE} AS deps

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt

COPY requirements/runtime.txt /tmp/runtime.txt
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip download --no-cache-dir --require-hashes --dest /wheelhouse -r /tmp/runtime.txt \
    && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /wheelhouse --require-hashes -r /tmp/runtime.txt \
    && /opt/venv/bin/pip uninstall --yes pip setuptools


FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="ml-service" \
      org.opencontainers.image.description="House-price prediction service (KServe V1, Open Inference Protocol V2 and the original /predict)" \
      org.opencontainers.image.licenses="MIT"

RUN groupadd --gid 10001 app \
    && useradd --uid 10001 --gid app --no-create-home --no-log-init --home-dir /tmp --shell /usr/sbin/nologin app

COPY --from=deps /opt/venv /opt/venv
COPY --from=build /opt/venv /opt/venv
COPY --from=build /models/housing /models/housing

# Settings of `ml-service serve` (see the README's configuration table). PORT is honoured as on
# every platform; HOME and the metrics directory live under /tmp, the only writable path.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
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
