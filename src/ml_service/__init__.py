"""ml-service: a tabular regression model served over HTTP, with its delivery pipeline."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ml-service")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
