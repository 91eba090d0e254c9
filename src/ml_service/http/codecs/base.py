"""What every request dialect provides, and what they share.

A codec only reshapes: `decode` turns a parsed JSON body into the model's row matrix by
handing each value, with its location in the body, to the model's `Checker` (which does every
value check), and `encode` turns the model's `Prediction` into the dialect's answer. It also
describes itself to the OpenAPI document (request and response schemas generated from the
model's schema) and to the client (`ml-service predict`): where to send rows, how to write them,
how to read the answer.

Every codec collects all problems before raising, counts rows before checking values (413 wins
over 422), and reports each problem at its path from the body's root. `decode` first tries a
fast path for the well-formed common case and falls back to the exact reader on any doubt, so
both give the same matrix or the same error.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from typing_extensions import override

from ml_service.errors import ClientError
from ml_service.model.checks import Checker
from ml_service.model.schema import Feature, FloatArray, ModelSchema
from ml_service.predictor import Prediction

if TYPE_CHECKING:
    from ml_service.repository.registry import LoadedModel

Columns = dict[str, list[Any]]


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-request limits a codec enforces: rows (413) and problems listed (422)."""

    max_rows: int = 10_000
    max_details: int = 100


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One prediction route of a dialect: its path template and how the docs title it."""

    path: str
    summary: str


@dataclass(frozen=True, slots=True)
class Answer:
    """A prediction response as a client reads it."""

    predictions: list[Any]
    probabilities: list[dict[str, float]] | None = None


class Codec(ABC):
    """A request dialect."""

    #: The dialect's name in metrics, logs and `ml-service predict --dialect`.
    dialect: ClassVar[str]
    #: The OpenAPI tag of its routes.
    tag: ClassVar[str]
    endpoints: ClassVar[tuple[Endpoint, ...]]

    @abstractmethod
    def decode(self, body: Any, checker: Checker, limits: Limits) -> tuple[FloatArray, Any]:
        """The body's rows as the model's checked row matrix, and what `encode` needs to know
        of the request (or `InvalidInput` / `PayloadTooLarge` with every problem)."""

    @abstractmethod
    def encode(self, prediction: Prediction, model: LoadedModel, meta: Any) -> Any:
        """The answer's JSON value."""

    # --- the OpenAPI document

    @abstractmethod
    def request_schema(self, schema: ModelSchema) -> dict[str, Any]:
        """JSON Schema of a request body for a model with `schema`."""

    @abstractmethod
    def response_schema(self, schema: ModelSchema) -> dict[str, Any]:
        """JSON Schema of a successful answer."""

    def example(self, schema: ModelSchema) -> Any:
        """A one-row request from the schema's first example row."""
        row = schema.examples[0] if schema.examples else {}
        return self.write({f.name: [row.get(f.name, example_value(f))] for f in schema.features})

    # --- the client

    @abstractmethod
    def path(self, model: str) -> str:
        """Where to send rows for `model`."""

    @abstractmethod
    def write(self, columns: Columns) -> Any:
        """A request body carrying `columns` (feature name to values, one per row)."""

    @abstractmethod
    def claims(self, body: Any) -> bool:
        """Whether a JSON body is written in this dialect."""

    @abstractmethod
    def columns(self, body: Any) -> Columns:
        """The rows a body of this dialect carries, by feature (`ClientError` when the body
        does not name its features)."""

    @abstractmethod
    def rows(self, body: Any) -> int:
        """How many rows a body of this dialect carries."""

    @abstractmethod
    def read(self, body: Any) -> Answer:
        """The predictions in an answer (`ClientError` when it holds none)."""


class ListAnswer(Codec):
    """A dialect that answers `{<answer_key>: [prediction, ...]}`, and a classifier's
    `"probabilities": [{label: p, ...}, ...]` beside it (the original dialect and KServe V1)."""

    answer_key: ClassVar[str]

    @override
    def encode(self, prediction: Prediction, model: LoadedModel, meta: Any) -> Any:
        if prediction.values is not None:
            return {self.answer_key: prediction.values}
        return {
            self.answer_key: labels(prediction, model),
            "probabilities": probability_maps(prediction, model),
        }

    @override
    def response_schema(self, schema: ModelSchema) -> dict[str, Any]:
        properties: dict[str, Any] = {
            self.answer_key: {"type": "array", "items": label_schema(schema)}
        }
        if schema.target.classes is not None:
            properties["probabilities"] = probabilities_schema(schema)
        return {"type": "object", "properties": properties, "required": list(properties)}

    @override
    def read(self, body: Any) -> Answer:
        if not isinstance(body, dict):
            raise ClientError("the answer is not a JSON object")
        key = self.answer_key
        return Answer(answer_values(body.get(key), key), body.get("probabilities"))


def example_value(feature: Feature) -> Any:
    """A value the feature accepts, for documentation."""
    if feature.categories:
        return feature.categories[0]
    if feature.allowed:
        return feature.allowed[0]
    if feature.train_min is not None:
        return feature.train_min
    return 0


def labels(prediction: Prediction, model: LoadedModel) -> list[Any]:
    """A classifier's predicted labels, in row order."""
    classes = model.classes or []
    found = prediction.classes
    return [] if found is None else [classes[i] for i in found.tolist()]


def probability_maps(prediction: Prediction, model: LoadedModel) -> list[dict[str, float]]:
    """A classifier's probabilities as one `{label: p}` object per row."""
    keys = model.class_keys or []
    found = prediction.probabilities
    return [] if found is None else [dict(zip(keys, row, strict=True)) for row in found.tolist()]


def answer_values(values: Any, source: str) -> list[Any]:
    """A list of predictions from an answer, or `ClientError`."""
    if not isinstance(values, list):
        raise ClientError(f"{source}: no list of predictions in the answer")
    return values


def value_schema(feature: Feature) -> dict[str, Any]:
    """JSON Schema of one value of `feature`."""
    schema: dict[str, Any]
    if feature.categories is not None:
        schema = {"type": "string", "enum": list(feature.categories)}
    elif feature.allowed is not None:
        schema = {"type": "number", "enum": list(feature.allowed)}
    else:
        schema = {"type": "number"}
        if feature.min != float("-inf"):
            schema["exclusiveMinimum" if feature.min_exclusive else "minimum"] = feature.min
        if feature.max != float("inf"):
            schema["exclusiveMaximum" if feature.max_exclusive else "maximum"] = feature.max
    if feature.description:
        schema["description"] = feature.description
    if feature.nullable:
        return {"anyOf": [schema, {"type": "null"}]}
    return schema


def label_schema(schema: ModelSchema) -> dict[str, Any]:
    """JSON Schema of one prediction: a number, or one of a classifier's labels."""
    classes = schema.target.classes
    if classes is None:
        return {"type": "number"}
    kind = "integer" if all(isinstance(c, int) for c in classes) else "string"
    return {"type": kind, "enum": list(classes)}


def probabilities_schema(schema: ModelSchema) -> dict[str, Any]:
    """JSON Schema of a classifier's per-row probabilities object."""
    keys = [str(c) for c in schema.target.classes or ()]
    return {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {k: {"type": "number", "minimum": 0, "maximum": 1} for k in keys},
            "required": keys,
            "additionalProperties": False,
        },
    }
