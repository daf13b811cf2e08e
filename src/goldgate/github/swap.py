"""The model-swap PR: a decision JSON turned into one branch per slot, one commit editing
pyproject.toml, and one PR that is opened, updated, or closed with the reason when the decision
changes to keep."""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from goldgate.files import read_versioned
from goldgate.github.client import GitHubError, github_errors, message_of, status_of
from goldgate.github.comment import BODY_LIMIT, fit_markdown, marker
from goldgate.github.pyproject_edit import SwapError, edit_pyproject
from goldgate.markdown import escape_prose, quote

if TYPE_CHECKING:
    from github.Repository import Repository

__all__ = ["DECISION_SCHEMA", "SWAP_LABELS", "Decision", "SwapPlan", "SwapResult", "decision_files", "load_decision", "plan_swap", "swap_body", "swap_branch", "sync_swap_pr"]

DECISION_SCHEMA = "goldgate.decision/v1"
SWAP_LABELS = ("goldgate", "model-swap")


@dataclass(frozen=True)
class Decision:
    path: Path
    decision: Literal["swap", "keep"]
    slot: str
    current: str
    proposed: str
    proposed_config: dict[str, Any]
    reasons: list[str]
    evidence: dict[str, Any]
    report: str


def decision_files(path: str | os.PathLike[str]) -> list[Path]:
    """A decision.json, or a folder holding one (`goldgate decide --student`) or one per slot
    (`<folder>/<slot>/decision.json`, as `goldgate decide` writes without arguments)."""
    p = Path(path)
    if p.is_dir():
        found = [p / "decision.json"] if (p / "decision.json").is_file() else sorted(p.glob("*/decision.json"))
        if not found:
            raise SwapError(f"{p}: no decision.json in it or in its slot folders (run `goldgate decide --out {p}` "
                            f"first)")
        return found
    return [p]


def load_decision(path: str | os.PathLike[str]) -> Decision:
    """Read and check `goldgate decide`'s JSON; the report markdown is read from beside it."""
    p = Path(path)
    data = read_versioned(p, schema=DECISION_SCHEMA, error=SwapError, missing="run `goldgate decide` first")
    if data.get("decision") not in ("swap", "keep"):
        raise SwapError(f"{p}: decision: expected 'swap' or 'keep', got {data.get('decision')!r}")
    for key in ("slot", "current", "proposed"):
        if not isinstance(data.get(key), str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", data[key]):
            raise SwapError(f"{p}: {key}: expected a candidate/slot name, got {data.get(key)!r}")
    config = data.get("proposed_config") or {}
    if data["decision"] == "swap" and not isinstance(config, dict):
        raise SwapError(f"{p}: proposed_config: expected a table")
    report = ""
    if data.get("report"):
        report_path = p.parent / str(data["report"])
        try:
            report = report_path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SwapError(f"{p}: report: cannot read {report_path}: {exc.strerror}") from None
    return Decision(path=p, decision=data["decision"], slot=data["slot"], current=data["current"],
                    proposed=data["proposed"], proposed_config=dict(config),
                    reasons=[str(r) for r in data.get("reasons") or []],
                    evidence=data.get("evidence") or {}, report=report)


def swap_branch(slot: str) -> str:
    """One branch per slot, so a later decision updates the same PR instead of opening another."""
    return f"goldgate/swap-{slot}"


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(data, dict):
        out = []
        for k, v in data.items():
            out += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    return [(prefix, data)]


def _report_without_evidence(report: str) -> str:
    """decision.md minus its evidence line and chart: the body folds the evidence once, and the chart's
    relative path does not resolve on GitHub (it is in the workflow artifacts)."""
    return "\n".join(line for line in report.strip().splitlines()
                     if not line.startswith(("**Evidence.**", "![accuracy vs cost]"))).strip()


def swap_body(decision: Decision, tag: str, run_url: str | None = None) -> str:
    """The PR body: the decision report (reasons included), then the evidence folded, each once."""
    report = _report_without_evidence(decision.report)
    lines = [tag, report or f"goldgate decided to swap slot `{decision.slot}` from `{decision.current}` "
             f"to `{decision.proposed}`.", ""]
    if decision.reasons and not report:
        lines += ["**Reasons**", "", *[f"- {escape_prose(r)}" for r in decision.reasons], ""]
    rows = _flatten(decision.evidence)
    if rows:
        lines += ["<details>", "<summary>Evidence (prices, hardware, data hashes)</summary>", "",
                  "| key | value |", "|---|---|",
                  *[f"| {quote(k, 80)} | {quote(json.dumps(v) if not isinstance(v, str) else v, 200)} |"
                    for k, v in rows], "", "</details>", ""]
    if run_url:
        lines += [(f"Produced by [this workflow run]({run_url}); the chart, the HTML report and the full "
                  "decision are in its artifacts."), ""]
    lines += [("Merging this PR switches production: the app loads the slot through "
              "`goldgate.load_model`."), ""]
    return fit_markdown("\n".join(lines), BODY_LIMIT, "See the decision report in the workflow artifacts.")


@dataclass(frozen=True)
class SwapPlan:
    """Everything the swap PR will contain; computed without any network call."""

    decision: Decision
    branch: str
    title: str
    body: str
    labels: tuple[str, ...]
    path: str
    old_text: str
    new_text: str

    @property
    def diff(self) -> str:
        return "".join(difflib.unified_diff(self.old_text.splitlines(keepends=True),
                                            self.new_text.splitlines(keepends=True),
                                            f"a/{self.path}", f"b/{self.path}"))


def plan_swap(decision: Decision, pyproject_text: str, *, path: str = "pyproject.toml",
              labels: tuple[str, ...] = SWAP_LABELS, run_url: str | None = None) -> SwapPlan:
    new = pyproject_text
    if decision.decision == "swap":
        new = edit_pyproject(pyproject_text, slot=decision.slot, proposed=decision.proposed,
                             proposed_config=decision.proposed_config, where=path)
    return SwapPlan(
        decision=decision, branch=swap_branch(decision.slot),
        title=f"goldgate: swap {decision.slot} to {decision.proposed} (from {decision.current})",
        body=swap_body(decision, marker(f"swap-pr:{decision.slot}"), run_url),
        labels=tuple(dict.fromkeys(labels)), path=path, old_text=pyproject_text, new_text=new,
    )


@dataclass(frozen=True)
class SwapResult:
    action: Literal["created", "updated", "closed", "none"]
    url: str | None = None
    number: int | None = None
    committed: bool = False
    notes: list[str] = field(default_factory=list)


def sync_swap_pr(repo: Repository, decision: Decision, *, path: str = "pyproject.toml",
                 base: str | None = None, labels: tuple[str, ...] = SWAP_LABELS,
                 run_url: str | None = None, token: str | None = None) -> SwapResult:
    """Make GitHub match the decision: open or update the swap PR, or close it on `keep`."""
    branch = swap_branch(decision.slot)
    with github_errors(f"swap PR on {repo.full_name} ({branch})", token):
        head = f"{repo.owner.login}:{branch}"
        open_prs = list(repo.get_pulls(state="open", head=head))
        if decision.decision == "keep":
            return _close(repo, open_prs, decision, branch)
        base = base or repo.default_branch
        base_sha = repo.get_branch(base).commit.sha
        base_file = repo.get_contents(path, ref=base)
        if isinstance(base_file, list):
            raise GitHubError(f"{repo.full_name}: {path} is a directory on {base}")
        plan = plan_swap(decision, base_file.decoded_content.decode("utf-8"), path=path,
                         labels=labels, run_url=run_url)
        if plan.new_text == plan.old_text:
            return SwapResult("none", notes=[f"{base} already uses {decision.proposed} for {decision.slot}"])
        committed = _push_change(repo, plan, base_sha, base_file.sha, keep_history=bool(open_prs))
        if open_prs:
            pr, action = open_prs[0], "updated"
            pr.edit(title=plan.title, body=plan.body)
        else:
            pr, action = _create_pr(repo, plan, base, head)
        pr.add_to_labels(*plan.labels)
        return SwapResult(action, pr.html_url, pr.number, committed)


def _push_change(repo: Repository, plan: SwapPlan, base_sha: str, base_blob: str, *,
                 keep_history: bool) -> bool:
    """Put the edited file on the swap branch; False when it is already there.

    With an open PR, commit on top (force-moving its head to base could make GitHub close it);
    without one, restart the branch from base. A 409 (the branch moved under us) is retried once.
    """
    from github import GithubException

    message = f"goldgate: swap {plan.decision.slot} to {plan.decision.proposed}"
    try:
        ref = repo.get_git_ref(f"heads/{plan.branch}")
        ref_sha = ref.object.sha
    except GithubException as exc:
        if status_of(exc) != 404:
            raise
        ref = None
    if ref is None:
        try:
            repo.create_git_ref(f"refs/heads/{plan.branch}", base_sha)
        except GithubException as exc:
            if status_of(exc) != 422 or "already exists" not in message_of(exc):
                raise
            ref = repo.get_git_ref(f"heads/{plan.branch}")
            ref.edit(base_sha, force=True)
    elif not keep_history and ref_sha != base_sha:
        ref.edit(base_sha, force=True)
    for attempt in (1, 2):
        current = repo.get_contents(plan.path, ref=plan.branch)
        assert not isinstance(current, list)
        if current.decoded_content.decode("utf-8") == plan.new_text:
            return False
        try:
            repo.update_file(plan.path, message, plan.new_text, sha=current.sha, branch=plan.branch)
            return True
        except GithubException as exc:
            if status_of(exc) != 409 or attempt == 2:
                raise
    return False


def _create_pr(repo: Repository, plan: SwapPlan, base: str, head: str) -> tuple[Any, Literal["created", "updated"]]:
    from github import GithubException

    try:
        return repo.create_pull(base=base, head=plan.branch, title=plan.title, body=plan.body), "created"
    except GithubException as exc:
        if status_of(exc) != 422 or "already exists" not in message_of(exc):
            raise
    pr = next(iter(repo.get_pulls(state="open", head=head)))
    pr.edit(title=plan.title, body=plan.body)
    return pr, "updated"


def _close(repo: Repository, open_prs: list[Any], decision: Decision, branch: str) -> SwapResult:
    from github import GithubException

    if not open_prs:
        return SwapResult("none", notes=[f"no open swap PR for slot {decision.slot}"])
    pr = open_prs[0]
    reasons = "".join(f"\n- {escape_prose(r)}" for r in decision.reasons)
    pr.create_issue_comment(f"goldgate now decides to **keep** `{decision.current}` for slot "
                            f"`{decision.slot}`, so this swap is closed.\n{reasons}")
    pr.edit(state="closed")
    try:
        repo.get_git_ref(f"heads/{branch}").delete()
    except GithubException as exc:
        if status_of(exc) not in (404, 422):
            raise
    return SwapResult("closed", pr.html_url, pr.number)
