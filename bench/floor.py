"""The floor: a bare ASGI application that reads the request and answers fixed JSON.

Served by the same server software as ml-service (gunicorn with ml-service's uvicorn worker
class: uvloop, httptools), one worker, so the benchmark's ratios measure what the service adds
to the cheapest possible answer.
"""

from __future__ import annotations

from typing import Any

BODY = b'{"prediction":[24.0]}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Read the whole body (as a real handler must), then send the fixed answer."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
