"""`goldgate github comment | summary` against the GitHub API stand-in (real HTTP, PyGithub)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from github_standin import GitHubStandIn
from test_compare import FINGERPRINTS, goldgate, make_run

from goldgate.github.client import GitHubError, connect, github_errors
from goldgate.github.comment import BODY_LIMIT, fit_markdown, marker, upsert_comment

TOKEN = "ghs_standinTOKEN0123456789abcdef"
READ_ONLY = "ghs_readonlyTOKEN0123456789abcdef"


@pytest.fixture
def gh(tmp_path: Path) -> Iterator[GitHubStandIn]:
    with GitHubStandIn(tmp_path, "acme/app", tokens={TOKEN: "write", READ_ONLY: "read"}) as standin:
        standin.seed({"pyproject.toml": "[tool.goldgate]\n", "README.md": "app\n"})
        yield standin


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, Path]:
    base = make_run(tmp_path / "base", {f"c{i:02d}": True for i in range(50)})
    head = make_run(tmp_path / "head", {f"c{i:02d}": i >= 15 for i in range(50)},
                    fingerprints=FINGERPRINTS | {"prompt_sha256": "b" * 64})
    return base, head


def _env(gh: GitHubStandIn, token: str = TOKEN) -> dict[str, str]:
    return {"GITHUB_TOKEN": token, "GITHUB_API_URL": gh.api_url, "GITHUB_REPOSITORY": gh.full_name,
            "GOLDGATE_GITHUB_TOKEN": "", "GITHUB_WORKFLOW": "evals"}


def test_comment_upsert_edits_the_same_comment(gh: GitHubStandIn, runs: tuple[Path, Path], tmp_path: Path) -> None:
    number = gh.open_pull("main")
    gh.add_comment(number, "LGTM, but see <!-- goldgate:evals --> below", user="reviewer")
    base, head = runs
    first = goldgate("github", "comment", "--base", str(base), "--head", str(head), "--pr", str(number),
                     env=_env(gh))
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("created comment ")
    better = make_run(tmp_path / "head2", {f"c{i:02d}": True for i in range(50)})
    second = goldgate("github", "comment", "--base", str(base), "--head", str(better), "--pr", str(number),
                      env=_env(gh))
    assert second.stdout.startswith("updated comment "), second.stderr
    ours = [c for c in gh.issue_comments(number) if c.user == gh.bot]
    assert len(ours) == 1 and ours[0].body.startswith("<!-- goldgate:evals -->\n")
    assert "no detectable change" in ours[0].body and "worse" not in ours[0].body
    assert any(c.user == "reviewer" and c.body.startswith("LGTM") for c in gh.issue_comments(number))
    other = goldgate("github", "comment", "--head", str(head), "--pr", str(number), "--marker", "release",
                     env=_env(gh))
    assert other.stdout.startswith("created comment ")
    assert len([c for c in gh.issue_comments(number) if c.user == gh.bot]) == 2
    assert TOKEN not in first.stdout + first.stderr + second.stdout + second.stderr


def test_comment_pr_number_comes_from_the_actions_event(gh: GitHubStandIn, runs: tuple[Path, Path],
                                                        tmp_path: Path) -> None:
    number = gh.open_pull("main")
    event = tmp_path / "event.json"
    event.write_text(f'{{"pull_request": {{"number": {number}}}}}')
    proc = goldgate("github", "comment", "--head", str(runs[1]), env=_env(gh) | {"GITHUB_EVENT_PATH": str(event)})
    assert proc.returncode == 0, proc.stderr
    assert len(gh.issue_comments(number)) == 1


def test_comment_body_fits_githubs_limit_and_stays_valid(gh: GitHubStandIn, tmp_path: Path) -> None:
    ids = [f"case-{i:05d}-{'x' * 40}" for i in range(3000)]
    base = make_run(tmp_path / "base", dict.fromkeys(ids, True))
    head = make_run(tmp_path / "head", dict.fromkeys(ids, False), outputs=dict.fromkeys(ids, "y" * 300))
    number = gh.open_pull("main")
    proc = goldgate("github", "comment", "--base", str(base), "--head", str(head), "--pr", str(number),
                    env=_env(gh))
    assert proc.returncode == 0, proc.stderr
    (comment,) = gh.issue_comments(number)
    assert len(comment.body) <= BODY_LIMIT
    assert "truncated to fit" in comment.body
    assert comment.body.count("<details>") == comment.body.count("</details>")
    assert comment.body.index("| suite |") < comment.body.index("<details>")


def test_fit_markdown_closes_open_blocks() -> None:
    text = "head\n\n<details>\n<summary>s</summary>\n\n```\n" + "line\n" * 5000 + "```\n</details>\n"
    cut = fit_markdown(text, 2000)
    assert len(cut) <= 2000 and cut.count("```") % 2 == 0 and cut.count("</details>") == 1
    assert fit_markdown("short", 2000) == "short"


def test_bad_token_is_one_line_and_never_printed(gh: GitHubStandIn, runs: tuple[Path, Path]) -> None:
    number = gh.open_pull("main")
    bad = "ghp_wrongTOKENabcdef0123456789"
    proc = goldgate("github", "comment", "--head", str(runs[1]), "--pr", str(number), env=_env(gh, bad))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("goldgate: error: ")
    assert "401 Bad credentials" in proc.stderr
    assert bad not in proc.stdout + proc.stderr
    ro = goldgate("github", "comment", "--head", str(runs[1]), "--pr", str(number), env=_env(gh, READ_ONLY))
    assert ro.returncode == 2 and "403 Resource not accessible by integration" in ro.stderr
    assert READ_ONLY not in ro.stdout + ro.stderr
    missing = goldgate("github", "comment", "--head", str(runs[1]), "--pr", str(number), "--repo", "acme/nope",
                       env=_env(gh))
    assert missing.returncode == 2 and "404" in missing.stderr and missing.stderr.count("\n") == 1
    none = goldgate("github", "comment", "--head", str(runs[1]), "--pr", "1",
                    env=_env(gh) | {"GITHUB_TOKEN": ""})
    assert none.returncode == 2 and "no GitHub token" in none.stderr


def test_comment_too_long_for_github_is_a_one_line_422(gh: GitHubStandIn) -> None:
    repo = connect(TOKEN, gh.api_url, retry=None).get_repo(gh.full_name)
    number = gh.open_pull("main")
    with (pytest.raises(GitHubError, match=r"^post: GitHub answered 422 Validation Failed; body is too long"),
          github_errors("post", TOKEN)):
        repo.get_issue(number).create_comment("x" * (BODY_LIMIT + 1))
    assert upsert_comment(repo, number, "x" * (2 * BODY_LIMIT), marker("evals")).action == "created"
    assert len(gh.issue_comments(number)[0].body) <= BODY_LIMIT


def test_summary_annotations_and_outputs(runs: tuple[Path, Path], tmp_path: Path) -> None:
    base, head = runs
    summary_file, output_file = tmp_path / "summary.md", tmp_path / "out.txt"
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text('[tool.goldgate]\ngoldens = "data/goldens"\n')
    env = {"GITHUB_STEP_SUMMARY": str(summary_file), "GITHUB_OUTPUT": str(output_file),
           "GITHUB_WORKSPACE": str(project)}
    proc = goldgate("github", "summary", "--base", str(base), "--head", str(head), env=env, cwd=project)
    assert proc.returncode == 0, proc.stderr
    # head fails its min_pass_rate gate and the PR changed the prompt: the annotation goes there
    assert ("::error file=evals/prompts/router.md,line=1,title=goldgate gate failed%3A test_intent::"
            "min_pass_rate: 0.7 >= 0.8 FAILED") in proc.stdout.splitlines()
    assert "### goldgate: head vs base" in summary_file.read_text()
    outputs = dict(line.split("=", 1) for line in output_file.read_text().splitlines())
    assert outputs["status"] == "fail" and outputs["verdict"] == "worse" and outputs["regressions"] == "15"

    alone = goldgate("github", "summary", "--head", str(head), env=env, cwd=project)
    assert "::error file=data/goldens/banking77.jsonl,line=1" in alone.stdout
