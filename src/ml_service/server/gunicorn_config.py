"""gunicorn settings, derived from `ml_service.config.Settings` (read from the environment).

Used by `ml-service serve` and directly by platforms: App Service's startup command is
`gunicorn --config python:ml_service.server.gunicorn_config --bind=0.0.0.0:${PORT:-8000}
ml_service.http.app:app`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ml_service.config import METRICS_DIR_ENV, get_settings
from ml_service.observability.logging import configure_logging, flush_logs
from ml_service.server import arbiter

_settings = get_settings()
configure_logging(_settings.log_level)

# Every worker must write its metrics to the same directory, and prometheus_client decides
# between in-memory and file-backed values when it is first imported: set the directory
# before anything imports it (workers fork from this process).
if not os.environ.get(METRICS_DIR_ENV):
    _dir = _settings.metrics_dir or Path(tempfile.mkdtemp(prefix="ml-service-metrics-"))
    os.environ[METRICS_DIR_ENV] = str(_dir)

bind = [f"{_settings.host}:{_settings.port}"]
workers = _settings.workers
worker_class = "ml_service.server.worker.Worker"
graceful_timeout = int(_settings.graceful_timeout)
timeout = max(30, int(_settings.graceful_timeout) + 10)
keepalive = int(_settings.keepalive_timeout)
accesslog = None
logger_class = "ml_service.server.gunicorn_logger.JsonLogger"
errorlog = "-"
loglevel = _settings.log_level
proc_name = "ml-service"
# No runtime control socket: nothing may reconfigure a running server, and the root file
# system may be read-only.
control_socket_disable = True
forwarded_allow_ips = "127.0.0.1"
# Workers import the app themselves: each loads and warms its own model after fork.
preload_app = False


def on_starting(server: Any) -> None:
    """Start with an empty metrics directory: counts from an earlier run must not leak in.

    And stop the way `ml_service.server.arbiter` says.
    """
    arbiter.adapt(server)
    _pull_registry_models()
    directory = Path(os.environ[METRICS_DIR_ENV])
    if directory.exists():
        for entry in directory.iterdir():
            if entry.suffix == ".db":
                entry.unlink()
            elif entry.is_dir():
                shutil.rmtree(entry)
    directory.mkdir(parents=True, exist_ok=True)


def _pull_registry_models() -> None:
    """`ML_SERVICE_REGISTRY_MODELS` downloaded into the repository once, by the master, before
    any worker scans it; a reference that cannot be served stops the server, saying why."""
    if not _settings.registry_models or _settings.model_repository is None:
        return
    import logging

    from ml_service.errors import ServiceError
    from ml_service.promotion.registry import pull_for_serving

    try:
        pull_for_serving(_settings.registry_models, _settings.model_repository)
    except ServiceError as exc:
        logging.getLogger("ml_service.registry").error(
            "cannot serve ML_SERVICE_REGISTRY_MODELS: %s",
            exc.message,
            extra={"event": "registry_pull_failed"},
        )
        flush_logs()
        raise SystemExit(1) from None


def pre_fork(server: Any, worker: Any) -> None:  # noqa: ARG001
    # A buffered line must be written by the master, not once more by each child.
    flush_logs()


def worker_exit(server: Any, worker: Any) -> None:  # noqa: ARG001
    flush_logs()


def post_worker_init(worker: Any) -> None:  # noqa: ARG001
    configure_logging(_settings.log_level)


def child_exit(server: Any, worker: Any) -> None:  # noqa: ARG001
    from ml_service.observability.metrics import mark_dead

    mark_dead(worker.pid)
