"""Serving the scikit-learn student from its saved pipeline (trained by `goldgate.students.sklearn`).

The artifact is a joblib pickle: load only artifacts you trust (your own, or ones whose card hashes
you checked).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["MODEL_FILE", "SklearnBackend"]

MODEL_FILE = "model.joblib"


class SklearnBackend:
    """Predicts labels from a saved pipeline; the confidence is the softmax of the SVM margins."""

    batch_size = 64

    def __init__(self, artifact: Path):
        import joblib

        self.pipe = joblib.load(artifact / MODEL_FILE)

    def predict_texts(self, texts: list[str]) -> list[tuple[str, float | None]]:
        import numpy as np

        margins = np.atleast_2d(self.pipe.decision_function(texts))
        classes = self.pipe.classes_
        if margins.shape[1] == 1:  # binary: one margin column
            margins = np.hstack([-margins, margins])
        exp = np.exp(margins - margins.max(axis=1, keepdims=True))
        probs = exp / exp.sum(axis=1, keepdims=True)
        best = probs.argmax(axis=1)
        return [(str(classes[i]), float(probs[row, i])) for row, i in enumerate(best)]
