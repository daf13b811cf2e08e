"""Shared fixtures: a real `goldgate sim` over HTTP for the suites that need one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import golden_records, write_jsonl

from goldgate.sim.process import SimProcess
from goldgate.sim.settings import SimSettings

pytest_plugins = ["pytester"]

for _k, _v in {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}.items():
    os.environ.setdefault(_k, _v)


@pytest.fixture(scope="session")
def sim_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("key") / "tiny.jsonl", golden_records())


@pytest.fixture(scope="session")
def sim(sim_key: Path) -> Iterator[SimProcess]:
    """One simulator for the session: 80% accurate, `sim-weak` 50%, no latency."""
    with SimProcess(SimSettings(keys=[sim_key], accuracy=0.8, model_accuracy={"sim-weak": 0.5},
                                format_noise=0.0, port=0)) as s:
        yield s


@pytest.fixture
def sim_env(sim: SimProcess, monkeypatch: pytest.MonkeyPatch) -> SimProcess:
    monkeypatch.setenv("GOLDGATE_SIM_URL", sim.url)
    sim.reset()
    return sim


