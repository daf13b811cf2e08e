"""The scikit-learn student: TF-IDF word 1–2-grams + char 2–5-grams into a linear SVM.

Chosen because it trains in seconds on CPUs and is within a couple of points of a fine-tuned BERT on
intent routing (Banking77: 0.91 vs ~0.93). The artifact is a joblib pickle: load only artifacts you
trust (your own, or ones whose card hashes you checked).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from goldgate.models.sklearn import MODEL_FILE
from goldgate.students.dataset import TrainingSet

__all__ = ["build_pipeline", "train_sklearn"]

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
