"""A request's JSON body: its content type checked, its bytes read within the size limit."""

from __future__ import annotations

from starlette.types import Receive, Scope

from ml_service.errors import NotReady, PayloadTooLarge, UnsupportedMediaType
from ml_service.http.responses import JSON_TYPE

_BINARY_HEADER = b"inference-header-content-length"
RETRY_AFTER = "1"


class ClientGone(Exception):
    """The client disconnected before sending the whole body."""


class Budget:
    """The bytes of request bodies one worker holds at once.

    A large body costs many times its size once parsed, until its answer is sent, so memory
    follows the bytes in progress, not the number of requests. A request is admitted when it
    fits in what is left, or when nothing else is held (any body within the body limit can
    always be served alone); otherwise 503 with `Retry-After`.
    """

    __slots__ = ("held", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def take(self, size: int) -> int:
        if self.held and self.held + size > self.limit:
            raise NotReady(
                f"the server is busy ({self.held} bytes of requests in progress); retry shortly",
                headers={"Retry-After": RETRY_AFTER},
            )
        self.held += size
        return size

    def give(self, size: int) -> None:
        self.held -= size


async def read_json_body(
    scope: Scope, receive: Receive, limit: int, budget: Budget
) -> tuple[bytes, int]:
    """The body of a JSON request, and what it took from `budget` (to give back once it is
    answered): 415 for another content type, 413 past `limit` bytes (refused from the declared
    length, or as soon as a chunked body passes it), 503 when the budget has no room."""
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
    size = int(declared) if declared is not None and declared.isdigit() else limit
    if size > limit:
        raise _too_large(limit)
    taken = budget.take(size)
    try:
        return await _read(receive, limit), taken
    except BaseException:
        budget.give(taken)
        raise


async def _read(receive: Receive, limit: int) -> bytes:
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
