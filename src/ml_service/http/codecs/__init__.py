"""The request dialects, in route-table order; each later one is more specific (the client
asks them in reverse order which one a body is written in)."""

from ml_service.http.codecs.base import Codec
from ml_service.http.codecs.kserve_v1 import KServeV1
from ml_service.http.codecs.open_inference import OpenInference
from ml_service.http.codecs.original import Original

CODECS: tuple[Codec, ...] = (Original(), KServeV1(), OpenInference())
BY_DIALECT = {codec.dialect: codec for codec in CODECS}

__all__ = ["BY_DIALECT", "CODECS", "Codec"]
