"""The prediction endpoint: the one path every prediction takes, whatever its dialect.

route → `Registry.resolve` (404 / 503) → body (415 / 413) → strict JSON (400) →
`Codec.decode` with the model's checks (413 / 422) → `LoadedModel.predict` → `Codec.encode`.
"""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from ml_service.http.body import read_json_body
from ml_service.http.codecs.base import Codec
from ml_service.http.jsonbody import parse_json
from ml_service.http.pipeline import ANSWERED
from ml_service.http.responses import dumps, send_json
from ml_service.http.service import Service
from ml_service.repository.registry import THREAD_ROWS, LoadedModel


class PredictEndpoint:
    """A dialect's prediction route (a raw ASGI endpoint in the route table)."""

    __slots__ = ("codec", "dialect", "limit", "service")

    def __init__(self, codec: Codec, service: Service) -> None:
        self.codec = codec
        self.dialect = codec.dialect
        self.service = service
        self.limit = service.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        service = self.service
        params = scope["path_params"]
        model = service.registry.resolve(params.get("name"), params.get("version"))
        raw, taken = await read_json_body(scope, receive, self.limit, service.budget)
        try:
            await self._answer(scope, send, model, raw)
        finally:
            service.budget.give(taken)

    async def _answer(self, scope: Scope, send: Send, model: LoadedModel, raw: bytes) -> None:
        body = parse_json(raw)
        del raw
        rows, meta = self.codec.decode(body, model.checker, self.service.limits)
        del body  # the parsed JSON of a large batch is many times its rows: free it now
        # One-row requests are the common case: no coroutine for them, a thread for batches.
        if len(rows) < THREAD_ROWS:
            prediction = model.predictor.predict(rows)
        else:
            prediction = await model.predict(rows)
        model.observe(self.dialect, rows, prediction)
        scope[ANSWERED] = (self.dialect, model, rows, prediction)
        answer = dumps(self.codec.encode(prediction, model, meta))
        await send_json(send, 200, answer, model.headers)
