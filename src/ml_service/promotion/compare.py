"""`ml-service compare`: champion against challenger on the same rows, and the decision.

Both models answer the same rows (by default the challenger's held-out rows, `holdout.csv` in
its artifact; else `--data FILE`), each through its served ONNX predictor after the service's
own value checks (`ml_service.model.checks`). Every metric of the task is computed for both;
the difference (challenger - champion) gets a paired bootstrap interval: the rows are resampled
with replacement `resamples` times and both models are scored on each resample, so the
interval reflects how much the difference depends on which rows happened to be held out.

The decision rests on the primary metric (the policy's, else RMSE or log loss) and the margin
(≥ 0, in that metric's units). With the improvement Δ (the difference, signed so that positive
means the challenger is better) and its 95 % interval [lo, hi], the challenger is promoted when

    Δ > 0 and lo > -margin

— better on these rows, and not plausibly worse than the champion by more than the margin. With
the default margin 0 that asks for an interval wholly above zero: a release changes what every
client gets, so a challenger has to be shown better, not merely not shown worse. Any failed
behaviour check of the challenger keeps the champion whatever the metrics say.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ml_service.errors import CompareError, InvalidInput, ServiceError
from ml_service.model import artifact, metrics
from ml_service.model.artifact import ServingArtifact
from ml_service.model.checks import Checker, Problems
from ml_service.model.data import Table, as_numbers, as_text, read_table
from ml_service.model.schema import REGRESSION, FloatArray, ModelSchema, Task
from ml_service.predictor import Predictor
from ml_service.promotion import behaviour, policy

PROMOTE, KEEP = 0, 3
CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 1000
SHOWN_PROBLEMS = 10


@dataclass(frozen=True)
class Side:
    """One of the two models: where it came from, and its verified artifact."""

    role: str
    source: str
    artifact: ServingArtifact

    @property
    def schema(self) -> ModelSchema:
        return self.artifact.schema

    @property
    def described(self) -> str:
        family = self.artifact.card.get("family", "?")
        return f"{self.source} → {self.artifact.name} {self.artifact.version} ({family})"


@dataclass(frozen=True)
class Row:
    """One metric of the table."""

    metric: str
    champion: float
    challenger: float
    low: float
    high: float

    @property
    def difference(self) -> float:
        return self.challenger - self.champion


@dataclass(frozen=True)
class Comparison:
    """The whole outcome: the table's rows, the behaviour checks, the decision and why."""

    champion: Side
    challenger: Side
    rows_used: int
    rows_source: str
    dropped: int
    resamples: int
    seed: int
    metric: str
    margin: float
    table: tuple[Row, ...]
    checks: tuple[behaviour.Outcome, ...]
    promote: bool
    reason: str
    notes: tuple[str, ...] = field(default=())

    @property
    def status(self) -> int:
        return PROMOTE if self.promote else KEEP

    def text(self) -> str:
        """The printed table (what the pipelines put in the job summary)."""
        lines = [
            f"champion:   {self.champion.described}",
            f"challenger: {self.challenger.described}",
            f"rows:       {self.rows_used} ({self.rows_source})"
            + (f"; {self.dropped} without a target left out" if self.dropped else ""),
            f"interval:   {CONFIDENCE:.0%} paired bootstrap, {self.resamples} resamples of the "
            f"rows, seed {self.seed}",
            f"decided by: {metrics.LABELS[self.metric]}, margin {self.margin:g}",
            "",
        ]
        header = ["metric", "champion", "challenger", "difference", "95% interval", "better"]
        body = []
        for row in self.table:
            mark = " *" if row.metric == self.metric else ""
            lower = row.metric in metrics.LOWER_IS_BETTER
            body.append(
                [
                    metrics.LABELS[row.metric] + mark,
                    _fmt(row.champion),
                    _fmt(row.challenger),
                    _fmt(row.difference, sign=True),
                    f"[{_fmt(row.low, sign=True)}, {_fmt(row.high, sign=True)}]",
                    "lower" if lower else "higher",
                ]
            )
        widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
        for cells in [header, *body]:
            lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
        lines.append("* the primary metric")
        if self.checks:
            lines += ["", "behaviour checks (challenger):"]
            lines += [f"  {'pass' if c.passed else 'FAIL'}  {c.text}" for c in self.checks]
        lines += [f"note: {n}" for n in self.notes]
        verdict = "promote the challenger" if self.promote else "keep the champion"
        lines += ["", f"decision: {verdict}: {self.reason}"]
        return "\n".join(lines)


def _fmt(value: float, sign: bool = False) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:+.4g}" if sign else f"{value:.4g}"


def load_side(role: str, source: str, path: Path) -> Side:
    try:
        return Side(role, source, artifact.load_serving(path))
    except ServiceError as exc:
        raise CompareError(f"the {role} ({source}): {exc.message}") from None


def compare(
    champion: Side,
    challenger: Side,
    data: Path | None = None,
    metric: str | None = None,
    margin: float | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Comparison:
    """Score both on the same rows, bootstrap the differences, run the challenger's behaviour
    checks and decide; `CompareError` when the two cannot be compared."""
    task, classes = _same_target(champion, challenger)
    try:
        rules = policy.read(
            challenger.artifact.path, challenger.artifact.manifest, challenger.schema
        )
    except ServiceError as exc:
        raise CompareError(f"the challenger's policy: {exc.message}") from None
    names = metrics.metric_names(task, len(classes))
    metric = metric or rules.metric
    if metric not in names:
        raise CompareError(
            f"--metric {metric} is not a metric of a {task} model: {', '.join(names)}"
        )
    margin = rules.margin if margin is None else margin
    if not math.isfinite(margin) or margin < 0:
        raise CompareError("--margin must be a finite number at least 0")
    if not 100 <= resamples <= 100_000:
        raise CompareError("--resamples must be between 100 and 100000")
    table, source = _rows(challenger, data)
    y, kept, dropped = _target(table, challenger.schema)
    frame = table.frame.loc[kept]
    if len(frame) < 2:
        raise CompareError(f"{source}: {len(frame)} rows with a target; at least 2 are needed")
    matrices = {side.role: _matrix(table, frame, side) for side in (champion, challenger)}
    answers = {
        side.role: _answer(side, matrices[side.role], classes) for side in (champion, challenger)
    }
    full_a = metrics.score(task, y, answers["champion"])
    full_b = metrics.score(task, y, answers["challenger"])
    low, high = _bootstrap(task, y, answers["champion"], answers["challenger"], resamples, seed)
    rows = tuple(Row(m, full_a[m], full_b[m], low[m], high[m]) for m in names if m in full_a)
    challenger_predictor = Predictor(challenger.artifact)
    checks = tuple(
        behaviour.run(rules, challenger.schema, challenger_predictor, matrices["challenger"])
    )
    promote, reason = decide(rows, metric, margin, checks)
    notes: tuple[str, ...] = ()
    if data is None and champion.artifact.card.get("training_data", {}).get("sha256") != (
        challenger.artifact.card.get("training_data", {}).get("sha256")
    ):
        notes = (
            "the models were trained on different data files: some of the challenger's "
            "held-out rows may have been in the champion's training rows",
        )
    return Comparison(
        champion,
        challenger,
        len(y),
        source,
        dropped,
        resamples,
        seed,
        metric,
        margin,
        rows,
        checks,
        promote,
        reason,
        notes,
    )


def decide(
    rows: Sequence[Row], metric: str, margin: float, checks: Sequence[behaviour.Outcome]
) -> tuple[bool, str]:
    """Promote (True) or keep the champion, and the reason (the rule in the module docstring)."""
    failed = [c for c in checks if not c.passed]
    if failed:
        return False, f"{len(failed)} behaviour check(s) failed: " + "; ".join(
            c.text for c in failed
        )
    row = next(r for r in rows if r.metric == metric)
    label = metrics.LABELS[metric]
    flip = -1.0 if metric in metrics.LOWER_IS_BETTER else 1.0
    gain = flip * row.difference + 0.0  # + 0.0: no "-0" in the reason
    lo, hi = sorted((flip * row.low + 0.0, flip * row.high + 0.0))
    interval = f"{CONFIDENCE:.0%} interval of the improvement {lo:+.4g} to {hi:+.4g}"
    if math.isnan(gain) or math.isnan(lo):
        return False, f"{label} could not be computed on these rows"
    if gain <= 0:
        return False, f"the challenger's {label} is not better ({gain:+.4g}; {interval})"
    if lo <= -margin:
        return False, (
            f"the challenger's {label} is better by {gain:.4g} on these rows, but the "
            f"{interval} reaches {lo:+.4g}, not above -{margin:g} (the margin)"
        )
    bound = "wholly above 0" if margin == 0 else f"lower end above -{margin:g}, the margin"
    return True, f"{label} better by {gain:.4g} ({interval}, {bound})"


def _same_target(champion: Side, challenger: Side) -> tuple[Task, tuple[str, ...]]:
    a, b = champion.schema, challenger.schema
    if a.task != b.task:
        raise CompareError(f"the champion is a {a.task} model, the challenger a {b.task} model")
    if a.target.name != b.target.name:
        raise CompareError(f"the champion predicts {a.target.name}, the challenger {b.target.name}")
    classes_a = tuple(str(c) for c in a.target.classes or ())
    classes_b = tuple(str(c) for c in b.target.classes or ())
    if set(classes_a) != set(classes_b):
        raise CompareError(
            f"the champion's classes ({', '.join(classes_a)}) differ from the challenger's "
            f"({', '.join(classes_b)})"
        )
    return b.task, classes_b


def _rows(challenger: Side, data: Path | None) -> tuple[Table, str]:
    """The rows to compare on: the data file, else the challenger's verified held-out rows."""
    if data is not None:
        try:
            return read_table(data), str(data)
        except ServiceError as exc:
            raise CompareError(exc.message) from None
    path, manifest = challenger.artifact.path, challenger.artifact.manifest
    if artifact.HOLDOUT_FILE not in manifest.files:
        raise CompareError(
            f"the challenger ({path}) carries no held-out rows ({artifact.HOLDOUT_FILE}); give "
            "the rows to compare on with --data FILE"
        )
    try:
        content = artifact.read_verified(path, manifest, artifact.HOLDOUT_FILE)
    except ServiceError as exc:
        raise CompareError(f"the challenger: {exc.message}") from None
    with tempfile.TemporaryDirectory(prefix="ml-service-compare-") as work:
        copy = Path(work) / artifact.HOLDOUT_FILE
        copy.write_bytes(content)
        table = read_table(copy)
    return Table(path / artifact.HOLDOUT_FILE, table.frame, table.sha256), (
        f"the challenger's held-out rows, {artifact.HOLDOUT_FILE}"
    )


def _target(table: Table, schema: ModelSchema) -> tuple[npt.NDArray[Any], pd.Index, int]:
    """The target of every row that has one, as the challenger's values or class indices."""
    name = schema.target.name
    if name not in table.frame.columns:
        raise CompareError(f"{table.path}: no column {name} (the target) to score against")
    column = table.frame[name]
    present = column.notna().to_numpy()
    kept = table.frame.index[present]
    column = column[present]
    problems: list[str] = []
    if schema.task == REGRESSION:
        y: npt.NDArray[Any] = as_numbers(column)
        bad = ~np.isfinite(y)
        what = "not a finite number"
    else:
        labels = pd.Index([str(c) for c in schema.target.classes or ()], dtype=object)
        y = labels.get_indexer(as_text(column).astype(object)).astype(np.int64)
        bad = y < 0
        what = "not a class the challenger knows"
    for i in np.flatnonzero(bad)[:SHOWN_PROBLEMS].tolist():
        problems.append(f"{table.where(int(kept[i]))}: {name} {column.iat[i]!r} is {what}")
    if problems:
        count = int(bad.sum())
        raise CompareError(f"{count} target value(s) cannot be scored: " + "; ".join(problems))
    return y, kept, int((~present).sum())


def _request_values(column: pd.Series[Any], categorical: bool) -> list[Any]:
    """A data column as a request would carry it: text for a category, a number where the cell
    reads as one (as training reads it), None for missing, else the text itself (which the
    checks refuse)."""
    if categorical:
        return [None if pd.isna(v) else str(v) for v in as_text(column).tolist()]
    numbers = as_numbers(column).tolist()
    return [
        None if pd.isna(raw) else raw if math.isnan(number) else number
        for raw, number in zip(column.tolist(), numbers, strict=True)
    ]


def _matrix(table: Table, frame: pd.DataFrame, side: Side) -> FloatArray:
    """The side's row matrix from the rows, checked exactly as the service checks a request."""
    schema = side.schema
    missing = [f.name for f in schema.features if f.name not in frame.columns]
    if missing:
        raise CompareError(
            f"{table.path}: no column(s) {', '.join(missing)}, which the {side.role} needs"
        )
    checker = Checker(schema)
    problems = Problems(SHOWN_PROBLEMS)
    records = frame.index.to_numpy()
    columns = []
    for j, feature in enumerate(schema.features):
        values = _request_values(frame[feature.name], feature.categorical)
        columns.append(checker.column(j, values, _locator(table, records, feature.name), problems))
    try:
        return checker.finish(columns, problems)
    except InvalidInput as exc:
        listed = "; ".join(f"{'/'.join(map(str, p.loc))}: {p.msg}" for p in exc.details)
        raise CompareError(
            f"the {side.role} cannot take {problems.total} value(s) of the rows: {listed}"
        ) from None


def _locator(
    table: Table, records: npt.NDArray[Any], name: str
) -> Callable[[int], tuple[str | int, ...]]:
    """Where row i's value of feature `name` is: the data file's line, and the column."""

    def where(i: int) -> tuple[str | int, ...]:
        return (table.where(int(records[i])), name)

    return where


def _answer(side: Side, matrix: FloatArray, classes: tuple[str, ...]) -> FloatArray:
    """Predictions (regression) or probabilities in the challenger's class order."""
    answer = Predictor(side.artifact).predict(matrix)
    if answer.values is not None:
        return answer.values
    own = [str(c) for c in side.schema.target.classes or ()]
    found: FloatArray = np.asarray(answer.probabilities)[:, [own.index(c) for c in classes]]
    # The graph computes in float32: rows sum to one within float32, not float64, rounding.
    total: FloatArray = found.sum(axis=1, keepdims=True)
    return found / total


def _bootstrap(
    task: Task,
    y: npt.NDArray[Any],
    champion: FloatArray,
    challenger: FloatArray,
    resamples: int,
    seed: int,
) -> tuple[dict[str, float], dict[str, float]]:
    """The percentile interval of each metric's difference over paired resamples of the rows."""
    import warnings

    rng = np.random.default_rng(seed)
    differences: dict[str, list[float]] = {}
    with warnings.catch_warnings():
        # A resample may hold one class only; its ROC AUC is NaN and is left out of the interval.
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(resamples):
            rows = rng.integers(0, len(y), size=len(y))
            a = metrics.score(task, y[rows], champion[rows])
            b = metrics.score(task, y[rows], challenger[rows])
            for name in b:
                differences.setdefault(name, []).append(b[name] - a[name])
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = {}, {}
    for name, values in differences.items():
        found = np.asarray(values)
        found = found[~np.isnan(found)]
        if found.size == 0:
            low[name] = high[name] = math.nan
            continue
        low[name], high[name] = (float(v) for v in np.percentile(found, [tail, 100 - tail]))
    return low, high
