"""The model report: how good the model is, shown rather than told.

`ml-service train` writes it into the artifact (so the manifest digests it), and the service
serves it at `/model/report`. It is one HTML page (`report.html`) with SVG plots and a stylesheet
under `report/`, so it reads the same opened from disk as served:

- predicted against actual values on the held-out split;
- residuals on the held-out split, against the prediction and as a histogram;
- the spread of each metric across the cross-validation folds;
- permutation feature importance on the held-out split (drop in R² when a feature is shuffled);
- the model card's text.

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
    """One figure of the report: its file (under `report/`), title and text alternative."""

    file: str
    title: str
    alt: str


PLOTS = (
    Plot(
        "predicted_vs_actual.svg",
        "Predicted against actual (held-out split)",
        "Scatter plot of predicted against actual values on the held-out rows, with the "
        "diagonal where they would be equal.",
    ),
    Plot(
        "residuals.svg",
        "Residuals (held-out split)",
        "Residuals (actual minus predicted) against the prediction, and their histogram.",
    ),
    Plot(
        "cv_spread.svg",
        "Cross-validation spread",
        "Each metric's value in every cross-validation fold, with its mean.",
    ),
    Plot(
        "feature_importance.svg",
        "Permutation feature importance (held-out split)",
        "Drop in R² on the held-out rows when each feature is shuffled, over repeated shuffles.",
    ),
)

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
<li>Trained {{ card.trained_at }} with {{ card.algorithm }}
({% for k, v in card.hyperparameters.items() -%}
{{ k }}={{ v }}{{ ", " if not loop.last }}
{%- endfor %}).</li>
<li>Training data <code>{{ card.training_data.file }}</code>: {{ card.training_data.rows }} rows
({{ card.training_data.train_rows }} for training, {{ card.training_data.test_rows }} held out),
SHA-256 <code>{{ card.training_data.sha256 }}</code>.</li>
<li>Target: {{ card.target.name }}, {{ card.target.description }} ({{ card.target.unit }}).</li>
</ul>

<h2>Metrics</h2>
<table>
<thead><tr><th scope="col">split</th><th scope="col">RMSE</th><th scope="col">MAE</th>
<th scope="col">R²</th></tr></thead>
<tbody>
<tr><th scope="row">held-out ({{ card.training_data.test_rows }} rows)</th>
<td class="num">{{ "%.3f"|format(card.metrics.rmse) }}</td>
<td class="num">{{ "%.3f"|format(card.metrics.mae) }}</td>
<td class="num">{{ "%.3f"|format(card.metrics.r2) }}</td></tr>
<tr><th scope="row">cross-validation, {{ card.evaluation.cv }} (mean ± sd)</th>
<td class="num">{{ "%.3f"|format(cv.rmse_mean) }} ± {{ "%.3f"|format(cv.rmse_std) }}</td>
<td class="num">{{ "%.3f"|format(cv.mae_mean) }} ± {{ "%.3f"|format(cv.mae_std) }}</td>
<td class="num">{{ "%.3f"|format(cv.r2_mean) }} ± {{ "%.3f"|format(cv.r2_std) }}</td></tr>
</tbody>
</table>
<p>Quality gate: R² ≥ {{ card.quality_gate.min_r2 }}, RMSE ≤ {{ card.quality_gate.max_rmse }}
on the held-out split.</p>

{% for plot in plots %}
<figure id="{{ plot.file.split('.')[0] }}">
<figcaption>{{ plot.title }}</figcaption>
<img src="{{ directory }}/{{ plot.file }}" alt="{{ plot.alt }}" width="720"
 height="{{ heights[plot.file] }}">
</figure>
{% endfor %}

<h2>Permutation importance</h2>
<table>
<thead><tr><th scope="col">feature</th><th scope="col">drop in R² (mean)</th>
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
<thead><tr><th scope="col">feature</th><th scope="col">meaning</th><th scope="col">unit</th>
<th scope="col">accepted</th><th scope="col">seen in training</th></tr></thead>
<tbody>
{% for f in card.features %}
<tr><th scope="row">{{ f.name }}</th><td>{{ f.description }}</td><td>{{ f.unit }}</td>
<td>{{ f.accepted }}</td><td>{{ f.train_min }} to {{ f.train_max }}</td></tr>
{% endfor %}
</tbody>
</table>

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


def permutation_importance(result: TrainingResult) -> list[dict[str, Any]]:
    """Mean and spread of the R² drop per feature, most important first."""
    from sklearn.inspection import permutation_importance as sklearn_importance

    found = sklearn_importance(
        result.pipeline,
        result.x_test,
        result.y_test,
        n_repeats=IMPORTANCE_REPEATS,
        random_state=result.settings.seed,
        scoring="r2",
    )
    rows = [
        {
            "feature": name,
            "mean": float(found.importances_mean[j]),
            "std": float(found.importances_std[j]),
            "values": [float(v) for v in found.importances[j]],
        }
        for j, name in enumerate(result.schema.names)
    ]
    return sorted(rows, key=lambda row: -row["mean"])


def build_report(result: TrainingResult, card: dict[str, Any]) -> dict[str, bytes]:
    """Every report file, keyed by its path inside the artifact."""
    importance = permutation_importance(result)
    figures = {
        "predicted_vs_actual.svg": _predicted_vs_actual(result),
        "residuals.svg": _residuals(result),
        "cv_spread.svg": _cv_spread(result),
        "feature_importance.svg": _importance(importance),
    }
    files = {f"{REPORT_DIR}/{name}": _svg(fig) for name, fig in figures.items()}
    heights = {name: round(fig.get_figheight() * DPI) for name, fig in figures.items()}
    html = _env.from_string(TEMPLATE).render(
        card=card,
        cv=card["cv_metrics"],
        plots=PLOTS,
        heights=heights,
        importance=importance,
        directory=REPORT_DIR,
        stylesheet=STYLESHEET,
    )
    files[REPORT_FILE] = html.encode()
    files[STYLESHEET] = CSS.encode()
    return files


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
    ax.set_title(
        f"RMSE {result.holdout.rmse:.3f}, MAE {result.holdout.mae:.3f}, R² {result.holdout.r2:.3f}"
    )
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


def _cv_spread(result: TrainingResult) -> Any:
    fig, axes = _figure(3.2, columns=3)
    for ax, name, label in zip(axes, ("rmse", "mae", "r2"), ("RMSE", "MAE", "R²"), strict=True):
        values = np.array([getattr(m, name) for m in result.cv_folds])
        jitter = np.linspace(-0.12, 0.12, len(values))
        ax.boxplot([values], widths=0.5)
        ax.scatter(1 + jitter, values, s=14, color="#1f6feb", zorder=3)
        ax.axhline(getattr(result.holdout, name), color="#d1242f", linewidth=1, linestyle="--")
        ax.set_xticks([1], [f"{len(values)} folds"])
        ax.set_title(f"{label}: {values.mean():.3f} ± {values.std():.3f}")
    axes[0].set_ylabel("value per fold (dashed: held-out)")
    return fig


def _importance(importance: list[dict[str, Any]]) -> Any:
    ordered = importance[::-1]
    fig, ax = _figure(0.45 * len(ordered) + 1.4)
    ax.boxplot([row["values"] for row in ordered], orientation="horizontal", widths=0.5)
    ax.set_yticks(range(1, len(ordered) + 1), [row["feature"] for row in ordered])
    ax.axvline(0, color="#888888", linewidth=1)
    ax.set_xlabel(f"drop in R² when shuffled ({IMPORTANCE_REPEATS} repeats)")
    return fig
