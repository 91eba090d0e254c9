"""Input drift: how far recent inputs have moved from the training data, per feature.

Each worker keeps a rolling window of its most recent input rows, reduced to the training
decile bin each value falls in (`Reference` in the schema). The statistic is the population
stability index (PSI) between the window's bin shares `a` and the training shares `e`:

    PSI = sum over bins of (a - e) * ln(a / e)      (shares floored at `FLOOR`)

PSI is 0 for identical distributions; below 0.1 is usually read as stable, 0.1 to 0.2 as a
moderate shift and above 0.2 as drift (`ML_SERVICE_DRIFT_THRESHOLD`, default 0.2). Nothing is
flagged until the window holds `MIN_ROWS` rows, as PSI over a handful of rows is noise.

Per request the work is one O(rows) copy into a ring buffer; binning happens when the counts
are read (at most about once a second per worker, plus `/metrics` and model status reads).
Workers publish their bin counts to the multi-process metrics directory, so `/metrics` and the
model status compute PSI over the union of all workers' windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ml_service.model.schema import FloatArray, ModelSchema

FLOOR = 1e-4
MIN_ROWS = 100
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """PSI of one feature over the current window and whether it crosses the threshold."""

    feature: str
    psi: float
    drifted: bool


@dataclass(frozen=True, slots=True)
class DriftStatus:
    """Drift of every monitored feature, as reported by `/v1/models/{name}`."""

    rows: int
    threshold: float
    min_rows: int
    features: tuple[FeatureDrift, ...]

    @property
    def judged(self) -> bool:
        """Whether the window holds enough rows for the flags to mean anything."""
        return self.rows >= self.min_rows

    @property
    def drifted(self) -> bool:
        return any(f.drifted for f in self.features)

    def as_dict(self) -> dict[str, Any]:
        return {
            "statistic": "psi",
            "window_rows": self.rows,
            "min_rows": self.min_rows,
            "threshold": self.threshold,
            "judged": self.judged,
            "drifted": self.drifted,
            "features": {
                f.feature: {"psi": round(f.psi, 6), "drifted": f.drifted} for f in self.features
            },
        }


class Reference:
    """Every monitored feature's training bins, laid out for vectorised binning.

    `edges` is (features, max_edges) padded with +inf, so a value's bin is the number of edges
    at or below it (a categorical feature's edges sit between its codes, so its bins are its
    categories); each feature has one more slot after its bins for missing values (NaN). Slot
    `b` of feature `j` is slot `offsets[j] + b` of a flat count vector.
    """

    def __init__(self, schema: ModelSchema) -> None:
        monitored = [(j, f.name, f.reference) for j, f in enumerate(schema.features) if f.reference]
        self.columns = np.asarray([j for j, _, _ in monitored], dtype=np.intp)
        self.names = tuple(name for _, name, _ in monitored)
        expected = [
            np.asarray([*ref.fractions, ref.missing], dtype=np.float64) for _, _, ref in monitored
        ]
        widest = max((len(ref.edges) for _, _, ref in monitored), default=0)
        self.edges = np.full((len(monitored), max(widest, 1)), np.inf)
        for k, (_, _, ref) in enumerate(monitored):
            self.edges[k, : len(ref.edges)] = ref.edges
        sizes = np.asarray([len(e) for e in expected], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.sizes = sizes
        self.missing_slots = self.offsets + sizes - 1
        self.slots = int(sizes.sum())
        self.expected = np.maximum(np.concatenate(expected) if expected else np.empty(0), FLOOR)

    def bins(self, rows: FloatArray) -> IntArray:
        """(rows, monitored features) flat slot of each value: O(rows) work, no Python loop."""
        values = rows[:, self.columns]
        index = (values[:, :, None] >= self.edges[None, :, :]).sum(axis=2, dtype=np.int64)
        slots = index + self.offsets[None, :]
        missing = np.isnan(values)
        if missing.any():
            slots = np.where(missing, self.missing_slots[None, :], slots)
        return np.asarray(slots, dtype=np.int64)

    def status(self, counts: IntArray, threshold: float) -> DriftStatus:
        """PSI per feature from the window's count per slot."""
        rows = int(counts[: self.sizes[0]].sum()) if len(self.sizes) else 0
        values = psi(counts, self.expected, self.offsets, self.sizes)
        judged = rows >= MIN_ROWS
        return DriftStatus(
            rows=rows,
            threshold=threshold,
            min_rows=MIN_ROWS,
            features=tuple(
                FeatureDrift(name, value, judged and value > threshold)
                for name, value in zip(self.names, values, strict=True)
            ),
        )


def psi(counts: IntArray, expected: FloatArray, offsets: IntArray, sizes: IntArray) -> list[float]:
    """Population stability index of each feature's slice of `counts` against `expected`."""
    result: list[float] = []
    total = counts.astype(np.float64)
    for start, size in zip(offsets.tolist(), sizes.tolist(), strict=True):
        window = total[start : start + size]
        n = window.sum()
        if n == 0:
            result.append(0.0)
            continue
        actual = np.maximum(window / n, FLOOR)
        e = expected[start : start + size]
        result.append(float(np.sum((actual - e) * np.log(actual / e))))
    return result


class DriftMonitor:
    """One worker's rolling window of recent input rows; bin counts computed when read.

    A request only copies its rows into the ring buffer (O(rows), no binning); the counts per
    bin are recomputed from the window when someone reads them (the once-a-second publisher,
    `/metrics`, the model status) and the window changed since the last time.
    """

    def __init__(
        self,
        schema: ModelSchema,
        window: int,
        threshold: float,
        labels: tuple[str, str] = ("", ""),
    ) -> None:
        self.reference = Reference(schema)
        self.labels = labels
        self.window = window
        self.threshold = threshold
        self.ring = np.zeros((window, len(schema.features)), dtype=np.float64)
        self.position = 0
        self.filled = 0
        self.version = 0
        self._counts = np.zeros(self.reference.slots, dtype=np.int64)
        self._counted = 0

    @property
    def features(self) -> Sequence[str]:
        return self.reference.names

    def update(self, rows: FloatArray) -> None:
        """Add rows to the window, overwriting the oldest: one O(len(rows)) copy."""
        n = len(rows)
        if n >= self.window:
            self.ring[:] = rows[-self.window :]
            self.position = 0
            self.filled = self.window
        else:
            end = self.position + n
            if end <= self.window:
                self.ring[self.position : end] = rows
            else:
                split = self.window - self.position
                self.ring[self.position :] = rows[:split]
                self.ring[: n - split] = rows[split:]
            self.position = end % self.window
            self.filled = min(self.window, self.filled + n)
        self.version += 1

    @property
    def counts(self) -> IntArray:
        """Rows of the window in each slot (feature, training bin)."""
        if self._counted != self.version:
            self._counted = self.version
            slots = self.reference.bins(self.ring[: self.filled])
            self._counts = np.bincount(slots.ravel(), minlength=self.reference.slots)
        return self._counts

    def status(self, counts: IntArray | None = None) -> DriftStatus:
        """Drift over this window, or over `counts` (e.g. the sum of every worker's window)."""
        return self.reference.status(self.counts if counts is None else counts, self.threshold)


def slot_labels(reference: Reference) -> list[tuple[str, str]]:
    """(feature, bin) label pairs of every slot, in slot order (`missing` for the last one)."""
    return [
        (name, str(b) if b < size - 1 else "missing")
        for name, size in zip(reference.names, reference.sizes.tolist(), strict=True)
        for b in range(size)
    ]
