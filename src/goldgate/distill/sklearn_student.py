"""The scikit-learn student: TF-IDF word 1–2-grams + char 2–5-grams into a linear SVM.

Chosen because it trains in seconds on CPUs and is within a couple of points of a fine-tuned BERT on
intent routing (Banking77: 0.91 vs ~0.93). The artifact is a joblib pickle: load only artifacts you
trust (your own, or ones whose card hashes you checked).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from goldgate.distill.dataset import TrainingSet

__all__ = ["MODEL_FILE", "SklearnBackend", "train_sklearn"]

MODEL_FILE = "model.joblib"


def build_pipeline(C: float, seed: int) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.svm import LinearSVC

    features = make_union(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2),
    )
    return make_pipeline(features, LinearSVC(C=C, random_state=seed))


def train_sklearn(ts: TrainingSet, out_dir: Path, *, C: float = 0.5, seed: int = 0) -> dict[str, Any]:
    """Fit on the training set (LLM labels at their weight) and save the pipeline to `out_dir`."""
    import joblib

    t0 = time.perf_counter()
    pipe = build_pipeline(C, seed)
    pipe.fit([e.text for e in ts.examples], [e.target for e in ts.examples],
             linearsvc__sample_weight=[e.weight for e in ts.examples])
    train_s = time.perf_counter() - t0
    out_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipe, out_dir / MODEL_FILE)
    return {"kind": "sklearn", "params": {"C": C, "features": "tfidf word1-2 + char_wb2-5", "model": "LinearSVC"},
            "seed": seed, "train_s": train_s}


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
