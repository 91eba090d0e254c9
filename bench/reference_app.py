"""The reference: what most people write to serve a scikit-learn model.

FastAPI routing, a pydantic request model, and `Pipeline.predict` on the rows, taking the
original dialect's body (`{feature: {row_key: value}}`). Served like the floor (gunicorn, the
same uvicorn worker class, one worker). The model is the artifact's scikit-learn pipeline
(`ML_SERVICE_MODEL_DIR`), so it predicts what ml-service predicts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI
from pydantic import create_model

from ml_service.model.artifact import load_pipeline, load_serving

MODEL_DIR = Path(os.environ.get("ML_SERVICE_MODEL_DIR", "models/housing"))
NAMES = load_serving(MODEL_DIR).schema.names
PIPELINE = load_pipeline(MODEL_DIR)
Request: Any = create_model(  # one field per feature: {row_key: value}
    "Request", **dict.fromkeys(NAMES, (dict[str, float], ...))
)

app = FastAPI()


@app.post("/predict")
def predict(request: Request) -> dict[str, list[float]]:  # type: ignore[valid-type]
    columns = [getattr(request, name) for name in NAMES]
    keys = list(columns[0])
    rows = np.array([[column[key] for column in columns] for key in keys], dtype=np.float64)
    return {"prediction": PIPELINE.predict(rows).tolist()}


@app.get("/health/ready")
def ready() -> dict[str, bool]:
    return {"ready": True}
