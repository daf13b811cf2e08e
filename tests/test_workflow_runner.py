"""The local workflow runner is honest: GitHub's expression rules, and a construct it cannot translate
fails by name instead of being skipped."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from workflow_runner import ACTIONS, Expr, Runner, Scenario, Untranslatable

WORKFLOWS = Path(__file__).resolve().parent.parent / ".github" / "workflows"


def ev(text: str, **contexts: Any) -> Any:
    funcs = {"always": lambda: True, "startsWith": lambda a, b: str(a).lower().startswith(str(b).lower())}
    return Expr(text, contexts, funcs).value()


def test_expressions_follow_githubs_rules() -> None:
    steps = {"app-token": {"outputs": {}}, "base": {"outcome": "success"}}
    assert ev("steps.app-token.outputs.token || secrets.T", steps=steps, secrets={"T": "pat"}) == "pat"
    assert ev("steps.base.outcome == 'SUCCESS'", steps=steps) is True  # strings compare ignoring case
    assert ev("vars.UNSET != ''", vars={}) is False  # a missing value is null, and null == ''
    assert ev("inputs.dry-run", inputs={"dry-run": True}) is True
    assert ev("always() && !(1 == 2)") is True
    assert ev("startsWith(github.ref, 'refs/tags/')", github={"ref": "refs/tags/v1"}) is True
    assert ev("github.event.pull_request.head.repo.full_name == github.repository",
              github={"repository": "a/b", "event": {"pull_request": {"head": {"repo": {"full_name": "a/b"}}}}})


@pytest.mark.parametrize(("text", "name"), [("matrix.os", "context 'matrix'"), ("toJSON(github)", "toJSON()"),
                                            ("a ~ b", "cannot parse")])
def test_an_untranslated_expression_fails_by_name(text: str, name: str) -> None:
    with pytest.raises(Untranslatable, match=name.replace("(", r"\(").replace(")", r"\)")):
        ev(text, github={}, a=1, b=2)


def test_every_construct_in_the_real_workflows_is_translated() -> None:
    for path in sorted(WORKFLOWS.glob("*.yml")):
        wf = yaml.safe_load(path.read_text())
        for job in wf["jobs"].values():
            for step in job.get("steps", []):
                if "uses" in step:
                    assert step["uses"].split("@")[0] in ACTIONS, f"{path.name}: {step['uses']}"


def _repo(tmp_path: Path) -> tuple[Path, str]:
    repo = tmp_path / "origin"
    repo.mkdir()
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}
    for args in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "x"]):
        subprocess.run(["git", *args], cwd=repo, check=True, env={**env, "PATH": "/usr/bin:/bin"})
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True)
    return repo, sha.stdout.strip()


def test_steps_outputs_env_summary_if_and_continue_on_error(tmp_path: Path) -> None:
    repo, sha = _repo(tmp_path)
    wf = tmp_path / "wf.yml"
    wf.write_text(yaml.safe_dump({"name": "t", "on": {"workflow_dispatch": {}}, "jobs": {"j": {
        "runs-on": "ubuntu-latest", "env": {"WHO": "${{ inputs.who }}"}, "steps": [
            {"uses": "actions/checkout@v5"},
            {"id": "a", "run": 'echo "n=$WHO" >> "$GITHUB_OUTPUT"; echo "X=1" >> "$GITHUB_ENV"'},
            {"id": "bad", "continue-on-error": True, "run": "exit 3"},
            {"name": "skipped", "if": "steps.bad.outcome == 'success'", "run": "exit 1"},
            {"name": "uses", "run": 'echo "${{ steps.a.outputs.n }}-$X" >> "$GITHUB_STEP_SUMMARY"'}]}}}))
    job = Runner(tmp_path / "w").run(wf, Scenario("workflow_dispatch", repo, sha, "refs/heads/main",
                                                  inputs={"who": "ann"}))["j"]
    assert job.result == "success", job.describe()
    assert [s.outcome for s in job.steps] == ["success", "success", "failure", "skipped", "success"]
    assert job.summary == "ann-1\n"


@pytest.mark.parametrize(("step", "name"), [({"uses": "actions/labeler@v5"}, "actions/labeler@v5"),
                                            ({"run": "true", "shell": "pwsh"}, "'shell'")])
def test_an_untranslated_step_fails_by_name(tmp_path: Path, step: dict[str, Any], name: str) -> None:
    repo, sha = _repo(tmp_path)
    wf = tmp_path / "wf.yml"
    wf.write_text(yaml.safe_dump({"on": {"push": {}}, "jobs": {"j": {"runs-on": "x", "steps": [step]}}}))
    with pytest.raises(Untranslatable, match=name):
        Runner(tmp_path / "w").run(wf, Scenario("push", repo, sha, "refs/heads/main"))
