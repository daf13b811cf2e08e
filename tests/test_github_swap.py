"""`goldgate github swap-pr`: the config edit, and the PR lifecycle against the GitHub stand-in."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from github_standin import GitHubStandIn
from test_compare import goldgate

from goldgate.github.client import GitHubError, connect, github_errors
from goldgate.github.pyproject_edit import SwapError, edit_pyproject
from goldgate.github.swap import load_decision, sync_swap_pr

TOKEN = "ghs_swapTOKEN0123456789abcdef"
BRANCH = "goldgate/swap-router"

PYPROJECT = """\
[project]
name = "app"

[tool.goldgate]
evals = "evals"

[tool.goldgate.slots.router]
use = "sim-llm"   # production model
task = "label"

[tool.goldgate.candidates.sim-llm]
type = "llm"
model = "openai/sim-router"
params = { temperature = 0, max_tokens = 16 }

# the offline simulator
[tool.goldgate.sim]
accuracy = 0.87
"""

STUDENT = {"type": "sklearn", "artifact": "artifacts/router-tfidf/model.joblib",
           "description": "TF-IDF + logistic regression on 8,000 human labels"}


def write_decision(dirpath: Path, decision: str = "swap", proposed: str = "tfidf-student",
                   config: dict[str, Any] | None = None) -> Path:
    dirpath.mkdir(parents=True, exist_ok=True)
    (dirpath / "decision.md").write_text(
        f"## goldgate decision: {decision}\n\nAccuracy 0.912 vs 0.874 (Δ lower bound +0.021).\n")
    data = {"schema": "goldgate.decision/v1", "decision": decision, "slot": "router", "current": "sim-llm",
            "proposed": proposed, "proposed_config": config or STUDENT,
            "reasons": ["non-inferior: lower bound +0.021 > -0.03", "cost 0.08x the LLM's"],
            "checks": {"non_inferiority": True},
            "evidence": {"price": {"llm_per_1k_usd": 0.0194, "student_per_1k_usd": 0.0016},
                         "hardware": {"instance": "c7i.large", "usd_per_hour": 0.089},
                         "data": {"test_sha256": "9" * 64, "train_sha256": "8" * 64}},
            "report": "decision.md", "chart": "decision.png"}
    (dirpath / "decision.json").write_text(json.dumps(data))
    return dirpath / "decision.json"


def test_edit_changes_only_the_use_line_and_adds_the_candidate() -> None:
    new = edit_pyproject(PYPROJECT, slot="router", proposed="tfidf-student", proposed_config=STUDENT)
    block = ("[tool.goldgate.candidates.tfidf-student]\n"
             'type = "sklearn"\n'
             'artifact = "artifacts/router-tfidf/model.joblib"\n'
             'description = "TF-IDF + logistic regression on 8,000 human labels"\n\n')
    expected = (PYPROJECT.replace('use = "sim-llm"   # production model', 'use = "tfidf-student"   # production model')
                .replace("# the offline simulator", block + "# the offline simulator"))
    assert new == expected
    assert new.index("[tool.goldgate.candidates.tfidf-student]") < new.index("# the offline simulator")
    cfg = tomllib.loads(new)["tool"]["goldgate"]
    assert cfg["slots"]["router"]["use"] == "tfidf-student"
    assert cfg["candidates"]["tfidf-student"] == STUDENT


def test_edit_updates_an_existing_candidates_artifact_and_refuses_what_it_cannot_edit() -> None:
    once = edit_pyproject(PYPROJECT, slot="router", proposed="tfidf-student", proposed_config=STUDENT)
    back = edit_pyproject(once, slot="router", proposed="sim-llm", proposed_config={})
    assert back.count("[tool.goldgate.candidates.tfidf-student]") == 1 and 'use = "sim-llm"' in back
    moved = edit_pyproject(once, slot="router", proposed="tfidf-student",
                           proposed_config=STUDENT | {"artifact": "artifacts/v2/model.joblib"})
    assert 'artifact = "artifacts/v2/model.joblib"' in moved and moved.count("artifact =") == 1
    inline = '[tool.goldgate]\nslots = { router = { use = "a" } }\ncandidates = { a = { model = "m" } }\n'
    with pytest.raises(SwapError, match=r"no `use = \"…\"` line in \[tool.goldgate.slots.router\]"):
        edit_pyproject(inline, slot="router", proposed="b", proposed_config=STUDENT)
    with pytest.raises(SwapError, match=r"candidates.bad\] type"):
        edit_pyproject(PYPROJECT, slot="router", proposed="bad", proposed_config={"type": "onnx"})


def test_dry_run_prints_the_pr_without_network(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    decision = write_decision(tmp_path / "decide")
    proc = goldgate("github", "swap-pr", "--decision", str(decision), "--dry-run", cwd=tmp_path,
                    env={"GITHUB_API_URL": "http://127.0.0.1:9", "GITHUB_TOKEN": "", "GOLDGATE_GITHUB_TOKEN": ""})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("title:  goldgate: swap router to tfidf-student (from sim-llm)\n")
    assert f"branch: {BRANCH}\n" in out and "labels: goldgate, model-swap" in out
    assert '-use = "sim-llm"   # production model\n+use = "tfidf-student"   # production model' in out
    assert "## goldgate decision: swap" in out and "c7i.large" in out
    assert (tmp_path / "pyproject.toml").read_text() == PYPROJECT


def test_invalid_decision_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "decision.json"
    bad.write_text(json.dumps({"schema": "goldgate.decision/v1", "decision": "maybe"}))
    proc = goldgate("github", "swap-pr", "--decision", str(bad), "--dry-run", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == f"goldgate: error: {bad}: decision: expected 'swap' or 'keep', got 'maybe'\n"


@pytest.fixture
def gh(tmp_path: Path) -> Iterator[GitHubStandIn]:
    with GitHubStandIn(tmp_path, "acme/app", tokens={TOKEN: "write"}) as standin:
        standin.seed({"pyproject.toml": PYPROJECT, "src/app.py": "print('hi')\n"})
        yield standin


def _swap(gh: GitHubStandIn, decision: Path) -> Any:
    proc = goldgate("github", "swap-pr", "--decision", str(decision), "--label", "needs-review",
                    env={"GOLDGATE_GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": gh.api_url,
                         "GITHUB_REPOSITORY": gh.full_name})
    assert proc.returncode == 0, proc.stderr
    assert TOKEN not in proc.stdout + proc.stderr
    return proc.stdout


def test_swap_pr_create_update_close(gh: GitHubStandIn, tmp_path: Path) -> None:
    gh.push("feature", {"src/app.py": "print('feature')\n"}, "a person's change")
    human = gh.open_pull("feature", title="a person's PR")

    out = _swap(gh, write_decision(tmp_path / "d1"))
    assert out.startswith("created swap PR #2:")
    pr = gh.pulls[2]
    assert (pr.head, pr.base, pr.state) == (BRANCH, "main", "open")
    assert pr.labels == ["goldgate", "model-swap", "needs-review"]
    assert pr.body.startswith("<!-- goldgate:swap-pr:router -->\n## goldgate decision: swap")
    assert "c7i.large" in pr.body and "9" * 64 in pr.body
    on_branch = gh.file(BRANCH, "pyproject.toml")
    assert on_branch == edit_pyproject(PYPROJECT, slot="router", proposed="tfidf-student", proposed_config=STUDENT)
    assert gh.git.commits_between("main", BRANCH) == 1
    first_head = gh.git.ref(BRANCH)

    assert _swap(gh, write_decision(tmp_path / "d1")).startswith("updated swap PR #2:")
    assert gh.git.ref(BRANCH) == first_head  # nothing changed: no new commit

    out = _swap(gh, write_decision(tmp_path / "d2", proposed="bert-student",
                                   config=STUDENT | {"type": "peft", "artifact": "artifacts/bert"}))
    assert out.startswith("updated swap PR #2:")
    assert len([p for p in gh.pulls.values() if p.head == BRANCH]) == 1
    assert gh.pulls[2].title == "goldgate: swap router to bert-student (from sim-llm)"
    assert 'use = "bert-student"' in gh.file(BRANCH, "pyproject.toml")
    assert gh.git.commits_between("main", BRANCH) == 2

    out = _swap(gh, write_decision(tmp_path / "d3", decision="keep"))
    assert gh.pulls[2].state == "closed" and gh.git.ref(BRANCH) is None
    assert "keep" in gh.issue_comments(2)[-1].body and "non-inferior" in gh.issue_comments(2)[-1].body
    assert gh.pulls[human].state == "open" and gh.pulls[human].title == "a person's PR"
    assert gh.issue_comments(human) == []
    assert "no open swap PR" in _swap(gh, write_decision(tmp_path / "d3", decision="keep"))


def _repo(gh: GitHubStandIn) -> Any:
    return connect(TOKEN, gh.api_url, retry=None).get_repo(gh.full_name)


def test_stale_sha_409_is_retried(gh: GitHubStandIn, tmp_path: Path) -> None:
    def someone_pushes_first(standin: GitHubStandIn, method: str, path: str) -> None:
        if method == "PUT" and path.startswith("/contents/"):
            standin.hooks.clear()
            standin.push(BRANCH, {"NOTES.md": "racing commit\n"}, "someone else")
            standin.push(BRANCH, {"pyproject.toml": PYPROJECT + "# touched\n"}, "someone else again")

    gh.hooks.append(someone_pushes_first)
    result = sync_swap_pr(_repo(gh), load_decision(write_decision(tmp_path / "d")))
    assert result.action == "created" and result.committed
    assert [m for m, path in gh.requests if m == "PUT"] == ["PUT", "PUT"]  # 409, then the retry
    assert 'use = "tfidf-student"' in gh.file(BRANCH, "pyproject.toml")
    assert gh.file(BRANCH, "NOTES.md") == "racing commit\n"


def test_pr_opened_meanwhile_is_updated_not_duplicated(gh: GitHubStandIn, tmp_path: Path) -> None:
    def race(standin: GitHubStandIn, method: str, path: str) -> None:
        if method == "POST" and path == "/pulls":
            standin.hooks.clear()
            standin.open_pull(BRANCH, title="opened by a parallel run")

    gh.hooks.append(race)
    result = sync_swap_pr(_repo(gh), load_decision(write_decision(tmp_path / "d")))
    assert result.action == "updated"
    assert [p.title for p in gh.pulls.values()] == ["goldgate: swap router to tfidf-student (from sim-llm)"]


def test_leftover_branch_is_restarted_from_base(gh: GitHubStandIn, tmp_path: Path) -> None:
    gh.push(BRANCH, {"junk.txt": "old attempt\n"}, "old attempt")
    result = sync_swap_pr(_repo(gh), load_decision(write_decision(tmp_path / "d")))
    assert result.action == "created"
    assert gh.file(BRANCH, "junk.txt") is None and gh.git.commits_between("main", BRANCH) == 1


def test_nothing_to_do_when_base_already_uses_the_candidate(gh: GitHubStandIn, tmp_path: Path) -> None:
    gh.seed({"pyproject.toml": edit_pyproject(PYPROJECT, slot="router", proposed="tfidf-student",
                                              proposed_config=STUDENT)})
    result = sync_swap_pr(_repo(gh), load_decision(write_decision(tmp_path / "d")))
    assert result.action == "none" and gh.pulls == {} and gh.git.ref(BRANCH) is None


def test_githubs_422s_become_one_line_errors(gh: GitHubStandIn) -> None:
    repo = _repo(gh)
    main = gh.git.ref("main")
    repo.create_git_ref("refs/heads/empty", main)
    with pytest.raises(GitHubError, match=r"^branch: GitHub answered 422 Reference already exists$"), \
            github_errors("branch", TOKEN):
        repo.create_git_ref("refs/heads/empty", main)
    with pytest.raises(GitHubError, match=r"^open PR: GitHub answered 422 Validation Failed; No commits between main "
                                          r"and empty$"), github_errors("open PR", TOKEN):
        repo.create_pull(base="main", head="empty", title="t", body="b")
    with pytest.raises(GitHubError, match=r"^read: GitHub answered 404 Not Found \(check the repository"), \
            github_errors("read", TOKEN):
        repo.get_contents("nope.txt", ref="main")
