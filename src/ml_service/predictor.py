"""The predictor: the artifact's ONNX graph in onnxruntime, one session per worker process."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from ml_service.errors import ArtifactError
from ml_service.model.artifact import ONNX_INPUT, ServingArtifact
from ml_service.model.schema import FloatArray


class Predictor:
    """Predicts a float64 vector from an (N, F) float64 matrix of already validated rows."""

    def __init__(self, artifact: ServingArtifact, threads: int = 1) -> None:
        options = ort.SessionOptions()
        # One worker per core is the unit of scaling; threads inside a worker only contend.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(
                artifact.onnx_model, options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ArtifactError(
                f"{artifact.path / 'model.onnx'}: onnxruntime {ort.__version__} cannot load it "
                f"({str(exc).splitlines()[0]}); it may come from an incompatible library version"
            ) from exc
        inputs = self._session.get_inputs()
        if [i.name for i in inputs] != [ONNX_INPUT] or inputs[0].shape[1] != len(
            artifact.schema.features
        ):
            raise ArtifactError(
                f"{artifact.path / 'model.onnx'}: its input does not match the schema's "
                f"{len(artifact.schema.features)} features"
            )
        # The session's own run, without the Python wrapper's per-call checks (input names,
        # OrtValue ownership, provider fallback), which hold by construction: one input, a numpy
        # array, the CPU provider only. Its cost is most of a one-row prediction otherwise.
        self._run = self._session._sess.run
        self._outputs = [self._session.get_outputs()[0].name]
        self.n_features = len(artifact.schema.features)

    def predict(self, rows: FloatArray) -> FloatArray:
        """One prediction per row, in row order."""
        if rows.ndim != 2 or rows.shape[1] != self.n_features:
            raise ValueError(f"expected shape (N, {self.n_features}), got {rows.shape}")
        if rows.shape[0] == 0:
            return np.empty(0, dtype=np.float64)
        (out,) = self._run(self._outputs, {ONNX_INPUT: rows.astype(np.float32)}, None)
        return np.asarray(out).ravel().astype(np.float64)
