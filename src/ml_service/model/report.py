"""The model report: how good the model is, shown rather than told.

`ml-service train` writes it into the artifact (so the manifest digests it), and the service
serves it at `/model/report`. It is one HTML page (`report.html`) with SVG plots and a stylesheet
under `report/`, so it reads the same opened from disk as served:

- regression: predicted against actual values and the residuals, on the held-out split;
- classification: the confusion matrix and a calibration plot, on the held-out split;
- every candidate's cross-validated score fold by fold, next to the baseline's;
- permutation importance of each original column on the held-out split;
- the model card's text: metrics against the baseline, the gate, candidates, features, the
  columns left out and any warnings.

Plots are drawn with matplotlib's object API (no pyplot state) and written deterministically.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from jinja2 import Environment, select_autoescape

if TYPE_CHECKING:  # the server reads REPORT_* names without importing scikit-learn
    from ml_service.model.training import TrainingResult

REPORT_FILE = "report.html"
REPORT_DIR = "report"
STYLESHEET = f"{REPORT_DIR}/report.css"
IMPORTANCE_REPEATS = 10


@dataclass(frozen=True, slots=True)
class Plot:
    """One figure of the report: its file (under `report/`), title, text alternative, and the
    tasks whose report has it."""

    file: str
    title: str
    alt: str
    tasks: tuple[str, ...] = ("regression", "classification")


PLOTS = (
    Plot(
        "predicted_vs_actual.svg",
        "Predicted against actual (held-out split)",
        "Scatter plot of predicted against actual values on the held-out rows, with the "
        "diagonal where they would be equal.",
        ("regression",),
    ),
    Plot(
        "residuals.svg",
        "Residuals (held-out split)",
        "Residuals (actual minus predicted) against the prediction, and their histogram.",
        ("regression",),
    ),
    Plot(
        "confusion_matrix.svg",
        "Confusion matrix (held-out split)",
        "Held-out rows by actual class (rows) and predicted class (columns), shaded by the "
        "share of each actual class.",
        ("classification",),
    ),
    Plot(
        "calibration.svg",
        "Calibration (held-out split)",
        "Predicted probability of each class against the share of rows that were that class, "
        "in bins of predicted probability, with the diagonal of perfect calibration.",
        ("classification",),
    ),
    Plot(
        "cv_spread.svg",
        "Cross-validation spread of every candidate",
        "The selection metric in every cross-validation fold for each candidate family at its "
        "best setting and for the baseline, with the held-out value of the chosen model.",
    ),
    Plot(
        "feature_importance.svg",
        "Permutation feature importance (held-out split)",
        "Loss of quality on the held-out rows when each original column is shuffled, over "
        "repeated shuffles.",
    ),
)


def plots_for(task: str) -> tuple[Plot, ...]:
    return tuple(p for p in PLOTS if task in p.tasks)


CSS = """\
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 1rem auto;
       padding: 0 1rem; color: #1b1f24; line-height: 1.45; }
h1 { font-size: 1.6rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #c8ccd0; padding: 0.25rem 0.6rem; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1rem 0 2rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #e1e4e8; }
figcaption { font-weight: 600; margin-bottom: 0.4rem; }
.caveats li { margin-bottom: 0.3rem; }
"""

TEMPLATE = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Model report: {{ card.name }} {{ card.version }}</title>
<link rel="stylesheet" href="{{ stylesheet }}">
</head>
<body>
<main>
<h1>Model report: {{ card.name }} <code>{{ card.version }}</code></h1>
<p>{{ card.description }}</p>
<ul>
<li>Task: {{ card.task }}{% if card.target.classes %} into {{ card.target.classes|length }}
classes ({{ card.target.classes|join(", ") }}){% endif %}.</li>
<li>Trained {{ card.trained_at }} with {{ card.algorithm }}
({% for k, v in card.hyperparameters.items() -%}
{{ k }}={{ v }}{{ ", " if not loop.last }}
{%- endfor %}){% if card.preprocessing %}; {{ card.preprocessing|join("; ") }}{% endif %}.</li>
<li>Training data <code>{{ card.training_data.file }}</code>: {{ card.training_data.rows }} rows
({{ card.training_data.train_rows }} for training, {{ card.training_data.test_rows }} held out;
{{ card.training_data.dropped_missing_target }} left out for a missing {{ card.target.name }}),
SHA-256 <code>{{ card.training_data.sha256 }}</code>.</li>
<li>Target: {{ card.target.name }}
{%- if card.target.description %}, {{ card.target.description }}{% endif %}
{%- if card.target.unit %} ({{ card.target.unit }}){% endif %}.</li>
</ul>

<h2>Metrics</h2>
<table>
<thead><tr><th scope="col">split</th>
{%- for h in metric_header %}<th scope="col">{{ h }}</th>{% endfor %}</tr></thead>
<tbody>
{% for label, values in metric_rows %}<tr><th scope="row">{{ label }}</th>
{%- for v in values %}<td class="num">{{ v }}</td>{% endfor %}</tr>
{% endfor %}
</tbody>
</table>
<p>Quality gate on the held-out split:
{% for c in card.quality_gate %}{{ c.text }} ({{ "passed" if c.passed else "failed" }}
{%- if c.source != "baseline" %}, {{ c.source }}{% endif %}){{ "; " if not loop.last }}
{%- endfor %}.</p>

<h2>Candidates</h2>
<p>Every family was cross-validated on the same folds at each of its settings; the one with the
{{ card.evaluation.selected_by }} was refitted on the whole training split. Held-out figures
are for information (no choice used them).</p>
<table>
<thead><tr><th scope="col">family</th><th scope="col">model</th>
<th scope="col">CV {{ primary }} (mean ± sd)</th><th scope="col">held-out {{ primary }}</th>
<th scope="col">settings tried</th></tr></thead>
<tbody>
{% for row in candidate_rows %}<tr><th scope="row">{{ row[0] }}</th><td>{{ row[1] }}</td>
<td class="num">{{ row[2] }}</td><td class="num">{{ row[3] }}</td>
<td class="num">{{ row[4] }}</td></tr>
{% endfor %}
</tbody>
</table>

{% for plot in plots %}
<figure id="{{ plot.file.split('.')[0] }}">
<figcaption>{{ plot.title }}</figcaption>
<img src="{{ directory }}/{{ plot.file }}" alt="{{ plot.alt }}" width="720"
 height="{{ heights[plot.file] }}">
</figure>
{% endfor %}

<h2>Permutation importance</h2>
<p>Each original column shuffled on the held-out rows ({{ repeats }} times): how much
{{ importance_metric }} gets worse. Near zero: the model barely uses the column.</p>
<table>
<thead><tr><th scope="col">feature</th><th scope="col">{{ importance_metric }} lost (mean)</th>
<th scope="col">sd</th></tr></thead>
<tbody>
{% for row in importance %}
<tr><th scope="row">{{ row.feature }}</th><td class="num">{{ "%.4f"|format(row.mean) }}</td>
<td class="num">{{ "%.4f"|format(row.std) }}</td></tr>
{% endfor %}
</tbody>
</table>

<h2>Features</h2>
<table>
<thead><tr><th scope="col">feature</th><th scope="col">kind</th><th scope="col">meaning</th>
<th scope="col">unit</th><th scope="col">accepted</th><th scope="col">seen in training</th>
<th scope="col">missing</th></tr></thead>
<tbody>
{% for f in card.features %}
<tr><th scope="row">{{ f.name }}</th><td>{{ f.kind }}</td><td>{{ f.description }}</td>
<td>{{ f.unit }}</td><td>{{ f.accepted }}</td><td>{{ seen(f) }}</td>
<td class="num">{{ "%.1f%%"|format(100 * f.missing) }}</td></tr>
{% endfor %}
</tbody>
</table>
{% if card.excluded_columns %}
<h2>Columns left out</h2>
<ul>{% for e in card.excluded_columns %}<li>{{ e.name }}: {{ e.reason }}</li>
{% endfor %}</ul>
{% endif %}
{% if card.warnings %}
<h2>Warnings</h2>
<ul>{% for w in card.warnings %}<li>{{ w }}</li>
{% endfor %}</ul>
{% endif %}

<h2>Intended use</h2>
<p>{{ card.intended_use or "Not stated." }}</p>
<h2>Caveats</h2>
<ul class="caveats">
{% for c in card.caveats %}<li>{{ c }}</li>
{% endfor %}
</ul>
<h2>Libraries</h2>
<ul>
{% for name, ver in card.libraries.items() %}<li>{{ name }} {{ ver }}</li>
{% endfor %}
</ul>
</main>
</body>
</html>
"""

_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))

WIDTH_IN = 7.2
DPI = 100


IMPORTANCE_ROWS = 5000


def permutation_importance(result: TrainingResult) -> list[dict[str, Any]]:
    """Mean and spread of the quality lost per original column, most important first.

    The row matrix's columns are the original columns (a category is one code), so shuffling
    one moves all of its one-hot columns together. Scored by R² (regression) or log loss.
    """
    from sklearn.inspection import permutation_importance as sklearn_importance
    from sklearn.metrics import log_loss

    rows = min(len(result.y_test), IMPORTANCE_ROWS)
    if result.task == "regression":
        scoring: Any = "r2"
    else:
        labels = list(range(len(result.schema.target.classes or ())))

        def scoring(model: Any, x: Any, y: Any) -> float:
            found = np.zeros((len(x), len(labels)))
            found[:, model.classes_] = model.predict_proba(x)
            return -float(log_loss(y, found, labels=labels))

    found = sklearn_importance(
        result.pipeline,
        result.x_test[:rows],
        result.y_test[:rows],
        n_repeats=IMPORTANCE_REPEATS,
        random_state=result.settings.seed,
        scoring=scoring,
    )
    ranked = [
        {
            "feature": name,
            "mean": float(found.importances_mean[j]),
            "std": float(found.importances_std[j]),
            "values": [float(v) for v in found.importances[j]],
        }
        for j, name in enumerate(result.schema.names)
    ]
    return sorted(ranked, key=lambda row: -row["mean"])


def build_report(result: TrainingResult, card: dict[str, Any]) -> dict[str, bytes]:
    """Every report file, keyed by its path inside the artifact."""
    from ml_service.model.card import candidate_table, metric_table, seen_in_training

    importance = permutation_importance(result)
    regression = result.task == "regression"
    figures = {
        "cv_spread.svg": _cv_spread(result),
        "feature_importance.svg": _importance(importance, _importance_metric(result)),
    }
    if regression:
        figures["predicted_vs_actual.svg"] = _predicted_vs_actual(result)
        figures["residuals.svg"] = _residuals(result)
    else:
        figures["confusion_matrix.svg"] = _confusion(result, card)
        figures["calibration.svg"] = _calibration(result)
    plots = plots_for(result.task)
    files = {f"{REPORT_DIR}/{p.file}": _svg(figures[p.file]) for p in plots}
    heights = {name: round(fig.get_figheight() * DPI) for name, fig in figures.items()}
    header, rows = metric_table(card)
    primary, candidates = candidate_table(card)
    html = _env.from_string(TEMPLATE).render(
        card=card,
        metric_header=header,
        metric_rows=rows,
        primary=primary,
        candidate_rows=candidates,
        plots=plots,
        heights=heights,
        importance=importance,
        importance_metric=_importance_metric(result),
        repeats=IMPORTANCE_REPEATS,
        seen=seen_in_training,
        directory=REPORT_DIR,
        stylesheet=STYLESHEET,
    )
    files[REPORT_FILE] = html.encode()
    files[STYLESHEET] = CSS.encode()
    return files


def _importance_metric(result: TrainingResult) -> str:
    return "R²" if result.task == "regression" else "log loss"


def _figure(height: float, columns: int = 1) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_IN, height), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, columns)
    return fig, axes


def _svg(fig: Any) -> bytes:
    import matplotlib

    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "ml-service", "svg.fonttype": "none"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def _target_label(result: TrainingResult) -> str:
    target = result.schema.target
    return f"{target.name} ({target.unit})" if target.unit else target.name


def _predicted_vs_actual(result: TrainingResult) -> Any:
    fig, ax = _figure(5.0)
    actual, predicted = result.y_test, result.y_pred
    low = float(min(actual.min(), predicted.min()))
    high = float(max(actual.max(), predicted.max()))
    ax.plot([low, high], [low, high], color="#888888", linewidth=1, label="predicted = actual")
    ax.scatter(actual, predicted, s=14, alpha=0.7, color="#1f6feb", label="held-out row")
    label = _target_label(result)
    ax.set_xlabel(f"actual {label}")
    ax.set_ylabel(f"predicted {label}")
    m = result.holdout
    ax.set_title(f"RMSE {m['rmse']:.3f}, MAE {m['mae']:.3f}, R² {m['r2']:.3f}")
    ax.legend(loc="upper left")
    return fig


def _residuals(result: TrainingResult) -> Any:
    fig, (left, right) = _figure(3.6, columns=2)
    residuals = result.y_test - result.y_pred
    left.axhline(0, color="#888888", linewidth=1)
    left.scatter(result.y_pred, residuals, s=14, alpha=0.7, color="#1f6feb")
    left.set_xlabel(f"predicted {_target_label(result)}")
    left.set_ylabel("actual - predicted")
    right.hist(residuals, bins=20, color="#1f6feb", alpha=0.8)
    right.set_xlabel("actual - predicted")
    right.set_ylabel("rows")
    right.set_title(f"mean {residuals.mean():+.3f}, sd {residuals.std():.3f}")
    return fig


def _confusion(result: TrainingResult, card: dict[str, Any]) -> Any:
    matrix = np.asarray(card["confusion_matrix"]["counts"], dtype=np.float64)
    labels = [str(label) for label in card["confusion_matrix"]["labels"]]
    size = len(labels)
    fig, ax = _figure(max(3.0, 0.5 * size + 2.0))
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(size):
        for j in range(size):
            color = "white" if shares[i, j] > 0.5 else "#1b1f24"
            ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", color=color)
    ax.set_xticks(range(size), labels, rotation=45 if size > 4 else 0)
    ax.set_yticks(range(size), labels)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("actual class")
    m = result.holdout
    ax.set_title(f"accuracy {m['accuracy']:.3f}, balanced accuracy {m['balanced_accuracy']:.3f}")
    return fig


CALIBRATION_BINS = 10
CALIBRATION_CLASSES = 8


def _calibration(result: TrainingResult) -> Any:
    if result.probabilities is None:
        raise ValueError("a calibration plot needs a classifier's probabilities")
    classes = result.schema.target.classes or ()
    fig, ax = _figure(4.5)
    ax.plot([0, 1], [0, 1], color="#888888", linewidth=1, label="perfectly calibrated")
    shown = [1] if len(classes) == 2 else range(min(len(classes), CALIBRATION_CLASSES))
    edges = np.linspace(0, 1, CALIBRATION_BINS + 1)
    for k in shown:
        predicted = result.probabilities[:, k]
        actual = (result.y_test == k).astype(np.float64)
        bins = np.clip(np.searchsorted(edges, predicted, side="right") - 1, 0, CALIBRATION_BINS - 1)
        counts = np.bincount(bins, minlength=CALIBRATION_BINS)
        used = counts > 0
        mean_p = np.bincount(bins, predicted, CALIBRATION_BINS)[used] / counts[used]
        share = np.bincount(bins, actual, CALIBRATION_BINS)[used] / counts[used]
        ax.plot(mean_p, share, marker="o", linewidth=1, label=f"{classes[k]}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted probability of the class")
    ax.set_ylabel("share of rows of that class")
    ax.set_title(
        f"log loss {result.holdout['log_loss']:.3f} (baseline {result.baseline['log_loss']:.3f})"
    )
    ax.legend(loc="upper left", fontsize="small")
    return fig


def _cv_spread(result: TrainingResult) -> Any:
    from ml_service.model.metrics import LABELS, primary

    metric = primary(result.task)
    evaluations = [f.best for f in result.families] + [result.baseline_cv]
    names = [e.candidate.family for e in evaluations]
    fig, ax = _figure(0.5 * len(names) + 1.6)
    values = [e.values(metric) for e in evaluations]
    ax.boxplot(values, orientation="horizontal", widths=0.5)
    for i, v in enumerate(values, start=1):
        jitter = np.linspace(-0.15, 0.15, len(v))
        ax.scatter(v, i + jitter, s=10, color="#1f6feb", zorder=3)
    ticks = [
        n + (" (chosen)" if e.candidate == result.chosen else "")
        for n, e in zip(names, evaluations, strict=True)
    ]
    ax.set_yticks(range(1, len(names) + 1), ticks)
    ax.axvline(result.holdout[metric], color="#d1242f", linewidth=1, linestyle="--")
    ax.set_xlabel(f"{LABELS[metric]} per fold (dashed: chosen model, held-out)")
    return fig


def _importance(importance: list[dict[str, Any]], metric: str) -> Any:
    ordered = importance[::-1]
    fig, ax = _figure(0.45 * len(ordered) + 1.4)
    ax.boxplot([row["values"] for row in ordered], orientation="horizontal", widths=0.5)
    ax.set_yticks(range(1, len(ordered) + 1), [row["feature"] for row in ordered])
    ax.axvline(0, color="#888888", linewidth=1)
    ax.set_xlabel(f"{metric} lost when shuffled ({IMPORTANCE_REPEATS} repeats)")
    return fig
