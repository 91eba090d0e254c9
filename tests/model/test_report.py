"""The model report: written by training into the artifact, digested, and served."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from starlette.testclient import TestClient
from tests.conftest import Trained

from ml_service.config import Settings
from ml_service.http.app import create_app
from ml_service.model import artifact
from ml_service.model.report import REPORT_DIR, REPORT_FILE, STYLESHEET, build_report, plots_for
from ml_service.model.training import TrainingResult

SVG = "{http://www.w3.org/2000/svg}svg"
PLOTS = plots_for("regression")


def test_training_writes_the_report_into_the_manifest(model_dir: Path) -> None:
    manifest = artifact.verify(model_dir)
    expected = {REPORT_FILE, STYLESHEET, *(f"{REPORT_DIR}/{p.file}" for p in PLOTS)}
    assert expected <= set(manifest.files)


def test_plots_are_svg_documents(model_dir: Path) -> None:
    for plot in PLOTS:
        root = ET.fromstring((model_dir / REPORT_DIR / plot.file).read_bytes())  # noqa: S314
        assert root.tag == SVG, plot.file
        assert root.get("width")
        assert root.get("height")


def test_report_links_every_plot_and_tells_the_card(
    model_dir: Path, trained: tuple[Path, TrainingResult]
) -> None:
    html = (model_dir / REPORT_FILE).read_text(encoding="utf-8")
    _, result = trained
    for plot in PLOTS:
        assert f'src="{REPORT_DIR}/{plot.file}"' in html
        assert plot.title in html
    assert f'href="{STYLESHEET}"' in html
    assert f"{result.holdout['rmse']:.3f}" in html
    assert f"{result.holdout['r2']:.3f}" in html
    for family in ("linear", "gradient_boosting", "hist_gradient_boosting", "extra_trees"):
        assert f'<th scope="row">{family}' in html
    for name in result.schema.names:
        assert re.search(rf'<th scope="row">{name}</th><td class="num">-?\d', html), name
    for caveat in result.schema.caveats:
        assert caveat.split(";")[0][:40] in html.replace("&#39;", "'")
    assert "<script" not in html
    assert "style=" not in html


def test_report_is_reproducible(model_dir: Path, trained: tuple[Path, TrainingResult]) -> None:
    """The same training result and card give byte-identical report files."""
    _, result = trained
    card = json.loads((model_dir / artifact.CARD_JSON).read_text())
    again = build_report(result, card)
    for name, data in again.items():
        assert data == (model_dir / name).read_bytes(), name


def test_service_serves_the_report_and_its_plots(client: TestClient, model_dir: Path) -> None:
    page = client.get("/model/report")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    for plot in PLOTS:
        image = client.get(f"/model/report/{plot.file}")
        assert image.status_code == 200, plot.file
        assert image.headers["content-type"] == "image/svg+xml"
    style = client.get("/model/report/report.css")
    assert style.headers["content-type"].startswith("text/css")
    assert client.get("/model/report/missing.svg").status_code == 404
    assert client.get("/model/report/..%2Fmodel.onnx").status_code == 404
    version = json.loads((model_dir / artifact.CARD_JSON).read_text())["version"]
    link = f"/models/housing/versions/{version}/report"
    assert client.get("/v1/models/housing").json()["report"] == link  # the page links it
    assert client.get(link).content == page.content


def test_tampered_report_is_refused(artifact_copy: Path) -> None:
    plot = artifact_copy / REPORT_DIR / PLOTS[0].file
    plot.write_bytes(plot.read_bytes().replace(b"#1f6feb", b"#d1242f", 1))
    settings = Settings(model_dir=artifact_copy)  # type: ignore[call-arg]
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        answer = client.get(f"/model/report/{PLOTS[0].file}")
        assert answer.status_code == 503
        assert "modified since training" in answer.json()["error"]
        assert client.get("/model/report").status_code == 200


def test_a_classifier_report_shows_confusion_and_calibration(churn: Trained) -> None:
    manifest = artifact.verify(churn.path)
    plots = {f"{REPORT_DIR}/{p.file}" for p in plots_for("classification")}
    assert plots <= set(manifest.files)
    assert f"{REPORT_DIR}/residuals.svg" not in manifest.files
    assert f"{REPORT_DIR}/confusion_matrix.svg" in plots
    html = (churn.path / REPORT_FILE).read_text(encoding="utf-8")
    assert "balanced accuracy" in html
    assert "log loss lost (mean)" in html
    assert "customer: row identifier" in html
    for name in churn.result.schema.names:
        assert re.search(rf'<th scope="row">{name}</th><td class="num">-?\d', html), name
    for plot in plots_for("classification"):
        root = ET.fromstring((churn.path / REPORT_DIR / plot.file).read_bytes())  # noqa: S314
        assert root.tag == SVG
