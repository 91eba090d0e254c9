"""A request's JSON body: its content type checked, its bytes read within the size limit."""

from __future__ import annotations

from starlette.types import Receive, Scope

from ml_service.errors import PayloadTooLarge, UnsupportedMediaType
from ml_service.http.responses import JSON_TYPE

_BINARY_HEADER = b"inference-header-content-length"


class ClientGone(Exception):
    """The client disconnected before sending the whole body."""


async def read_json_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The body of a JSON request: 415 for another content type, 413 past `limit` bytes
    (refused from the declared length, or as soon as a chunked body passes it)."""
    content_type: bytes | None = None
    declared: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value
        elif name == b"content-length":
            declared = value
        elif name == _BINARY_HEADER:
            raise UnsupportedMediaType(
                "the binary tensor extension is not supported; send the tensors as JSON"
            )
    if content_type is not None and content_type != JSON_TYPE:
        _check_content_type(content_type)
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        if not message.get("more_body", False):
            if not chunks:
                return chunk
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)


def _check_content_type(raw: bytes) -> None:
    media = raw.split(b";", 1)[0].strip().lower()
    if media == JSON_TYPE or (media.startswith(b"application/") and media.endswith(b"+json")):
        return
    raise UnsupportedMediaType(
        f"content type {media.decode('latin-1')!r} is not supported; send application/json"
    )


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"body is larger than the limit of {limit} bytes")
