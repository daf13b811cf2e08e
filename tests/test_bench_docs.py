"""The decision numbers the docs quote are the ones bench/bench_decision_oc.py computes today."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench/bench_decision_oc.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_decision_oc", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize("name", ["oc", "transport", "size", "split", "kappa", "compare"])
def test_docs_quote_the_tables_the_bench_computes(name: str) -> None:
    bench = _bench()
    _, make = bench.TABLES[name]
    assert bench.quoted(name) == make(), f"run `python bench/bench_decision_oc.py --write` ({name})"
