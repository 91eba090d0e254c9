"""A model's promotion policy: what `ml-service compare` judges it by, carried in its artifact.

From the schema file (both sections optional):

    "promotion": {"metric": "rmse", "margin": 0.1},
    "behaviour": {
      "direction": [{"feature": "RM", "sign": 1, "from": 6, "to": 7, "min_share": 0.9}],
      "invariance": [{"feature": "CHAS", "tolerance": 0.5}]
    }

`metric` is the primary metric of the comparison (default: the one candidates are ranked by,
RMSE or log loss); `margin` (≥ 0, in the metric's units, default 0) how much worse than the
champion the challenger may plausibly be and still be promoted. A direction check sets the
feature to `from`, then to `to`, on every compared row, and wants the prediction to move with
`sign` (+1 up, -1 down) in at least `min_share` of the rows (default 0.9) and on average; an
invariance check shuffles the feature's values across the rows and wants no prediction to move
by more than `tolerance`. For a classifier, `class` names the class whose probability is
watched (default: the last). Training checks every entry against the model's schema and writes
the policy to `promotion.json` in the artifact (digested like every file).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ml_service.errors import TrainingError
from ml_service.model import metrics
from ml_service.model.schema import REGRESSION, ModelSchema

POLICY_FILE = "promotion.json"
DEFAULT_MIN_SHARE = 0.9


@dataclass(frozen=True)
class Direction:
    feature: str
    sign: int
    start: float | str
    end: float | str
    min_share: float = DEFAULT_MIN_SHARE
    target_class: str | None = None


@dataclass(frozen=True)
class Invariance:
    feature: str
    tolerance: float
    target_class: str | None = None


@dataclass(frozen=True)
class Policy:
    """The primary metric, the margin, and the behaviour checks of one model."""

    metric: str
    margin: float = 0.0
    direction: tuple[Direction, ...] = ()
    invariance: tuple[Invariance, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "margin": self.margin,
            "behaviour": {
                "direction": [_entry(asdict(d)) for d in self.direction],
                "invariance": [_entry(asdict(i)) for i in self.invariance],
            },
        }

    def to_bytes(self) -> bytes:
        return (json.dumps(self.to_dict(), indent=2) + "\n").encode()


def _entry(raw: dict[str, Any]) -> dict[str, Any]:
    renamed = {"start": "from", "end": "to", "target_class": "class"}
    return {renamed.get(k, k): v for k, v in raw.items() if v is not None}


def default(schema: ModelSchema) -> Policy:
    return Policy(metrics.primary(schema.task))


def from_raw(raw: Mapping[str, Any], schema: ModelSchema, where: str) -> Policy:
    """The policy a schema file's (or artifact's) `promotion` and `behaviour` give, checked
    against `schema`; every problem found at once in one `TrainingError`."""
    problems: list[str] = []
    promotion = raw.get("promotion") or {}
    behaviour = raw.get("behaviour") or {}
    if not isinstance(promotion, Mapping) or not isinstance(behaviour, Mapping):
        raise TrainingError(f"{where}: promotion and behaviour must be JSON objects")
    classes = len(schema.target.classes or ())
    known = metrics.metric_names(schema.task, classes)
    metric = str(promotion.get("metric", metrics.primary(schema.task)))
    if metric not in known:
        problems.append(f"promotion.metric {metric!r} is not one of {', '.join(known)}")
    margin = _number(promotion.get("margin", 0.0), "promotion.margin", problems)
    if margin is not None and margin < 0:
        problems.append("promotion.margin must be at least 0")
    extra = sorted(set(promotion) - {"metric", "margin"}) + sorted(
        set(behaviour) - {"direction", "invariance"}
    )
    if extra:
        problems.append(f"unknown keys {', '.join(extra)}")
    directions = [
        _direction(e, schema, f"behaviour.direction[{i}]", problems)
        for i, e in enumerate(_list(behaviour.get("direction"), "direction", problems))
    ]
    invariances = [
        _invariance(e, schema, f"behaviour.invariance[{i}]", problems)
        for i, e in enumerate(_list(behaviour.get("invariance"), "invariance", problems))
    ]
    if problems:
        raise TrainingError(f"{where}: " + "; ".join(problems))
    return Policy(
        metric,
        margin or 0.0,
        tuple(d for d in directions if d is not None),
        tuple(i for i in invariances if i is not None),
    )


def _list(value: object, name: str, problems: list[str]) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(f"behaviour.{name} must be a list")
        return []
    return value


def _number(value: object, where: str, problems: list[str]) -> float | None:
    if type(value) not in (int, float) or not math.isfinite(float(value)):  # type: ignore[arg-type]
        problems.append(f"{where} must be a finite number")
        return None
    return float(value)  # type: ignore[arg-type]


def _feature_value(value: object, feature: Any, where: str, problems: list[str]) -> Any:
    try:
        feature.encode(value)
    except Exception as exc:  # Refused: the value is outside what the model accepts
        problems.append(f"{where}: {getattr(exc, 'message', exc)}")
        return None
    return value


def _common(
    entry: object, schema: ModelSchema, where: str, problems: list[str], keys: set[str]
) -> tuple[Any, str | None] | None:
    if not isinstance(entry, Mapping):
        problems.append(f"{where} must be an object")
        return None
    unknown = sorted(set(entry) - keys)
    if unknown:
        problems.append(f"{where}: unknown keys {', '.join(unknown)}")
    name = entry.get("feature")
    if name not in schema.names:
        problems.append(f"{where}: feature {name!r} is not a feature of the model")
        return None
    label = entry.get("class")
    classes = schema.target.classes
    if label is not None and (classes is None or str(label) not in map(str, classes)):
        problems.append(f"{where}: class {label!r} is not a class of the model")
        return None
    if schema.task == REGRESSION and label is not None:
        problems.append(f"{where}: class applies to classifiers only")
    return schema.features[schema.names.index(name)], None if label is None else str(label)


def _direction(
    entry: object, schema: ModelSchema, where: str, problems: list[str]
) -> Direction | None:
    keys = {"feature", "sign", "from", "to", "min_share", "class"}
    found = _common(entry, schema, where, problems, keys)
    if found is None or not isinstance(entry, Mapping):
        return None
    feature, label = found
    sign = entry.get("sign")
    if sign not in (1, -1):
        problems.append(f"{where}: sign must be 1 or -1")
    start = _feature_value(entry.get("from"), feature, f"{where}.from", problems)
    end = _feature_value(entry.get("to"), feature, f"{where}.to", problems)
    share = _number(entry.get("min_share", DEFAULT_MIN_SHARE), f"{where}.min_share", problems)
    if share is not None and not 0 < share <= 1:
        problems.append(f"{where}.min_share must be in (0, 1]")
    if sign not in (1, -1) or start is None or end is None or share is None:
        return None
    if start == end:
        problems.append(f"{where}: from and to must differ")
    return Direction(feature.name, int(sign), start, end, share, label)


def _invariance(
    entry: object, schema: ModelSchema, where: str, problems: list[str]
) -> Invariance | None:
    found = _common(entry, schema, where, problems, {"feature", "tolerance", "class"})
    if found is None or not isinstance(entry, Mapping):
        return None
    feature, label = found
    tolerance = _number(entry.get("tolerance"), f"{where}.tolerance", problems)
    if tolerance is None or tolerance < 0:
        if tolerance is not None:
            problems.append(f"{where}.tolerance must be at least 0")
        return None
    return Invariance(feature.name, tolerance, label)


def read(path: Any, manifest: Any, schema: ModelSchema) -> Policy:
    """The policy an artifact carries (verified), or the default one when it carries none."""
    from ml_service.model import artifact

    if POLICY_FILE not in manifest.files:
        return default(schema)
    data = artifact.read_verified(path, manifest, POLICY_FILE)
    where = str(path / POLICY_FILE)
    try:
        raw = json.loads(data)
        if not isinstance(raw, dict):
            raise TypeError("expected a JSON object")
        promotion = {k: raw[k] for k in ("metric", "margin") if k in raw}
        return from_raw({"promotion": promotion, "behaviour": raw.get("behaviour")}, schema, where)
    except (ValueError, TypeError) as exc:
        raise TrainingError(f"{where}: not a usable promotion policy ({exc})") from exc
