"""GitHub: the sticky PR comment, the Actions step summary, and the model-swap PR.

Everything here reads run directories or a decision JSON and writes to GitHub; nothing flows back.
PyGithub is imported only inside `connect`. The token comes from the environment and never appears
in output: API failures become one-line `GitHubError`s built from GitHub's status and message.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from goldgate.errors import GoldgateError
from goldgate.files import read_versioned
from goldgate.markdown import escape_prose, quote

if TYPE_CHECKING:
    from github import Github
    from github.Repository import Repository

__all__ = [
    "BODY_LIMIT",
    "Decision",
    "GitHubError",
    "SwapError",
    "SwapPlan",
    "SwapResult",
    "annotations",
    "connect",
    "edit_pyproject",
    "fit_markdown",
    "load_decision",
    "marker",
    "plan_swap",
    "pr_number_from_env",
    "sync_swap_pr",
    "token_from_env",
    "upsert_comment",
    "write_outputs",
    "write_step_summary",
]

BODY_LIMIT = 65_536
TOKEN_ENVS = ("GOLDGATE_GITHUB_TOKEN", "GITHUB_TOKEN")
DECISION_SCHEMA = "goldgate.decision/v1"
SWAP_LABELS = ("goldgate", "model-swap")


class GitHubError(GoldgateError):
    """A GitHub API call failed, or the environment lacks what the call needs (token, repo, PR)."""


class SwapError(GoldgateError):
    """A decision JSON is invalid, or the config change it asks for cannot be made safely."""


# --- connection and errors ------------------------------------------------------------------


def token_from_env(env: Mapping[str, str] = os.environ) -> str:
    for name in TOKEN_ENVS:
        if env.get(name):
            return env[name]
    raise GitHubError(f"no GitHub token: set {' or '.join(TOKEN_ENVS)}")


def connect(token: str, api_url: str | None = None, *, retry: Any = "default") -> Github:
    """A PyGithub client without request spacing: goldgate makes a handful of writes per run, and
    PyGithub's default retry still backs off on GitHub's rate-limit answers."""
    from github import Auth, Github

    kwargs: dict[str, Any] = {} if retry == "default" else {"retry": retry}
    return Github(auth=Auth.Token(token), base_url=(api_url or "https://api.github.com").rstrip("/"),
                  seconds_between_requests=0, seconds_between_writes=0, **kwargs)


_HINTS = {
    401: "check GOLDGATE_GITHUB_TOKEN / GITHUB_TOKEN",
    403: "the token lacks a permission (see docs/ci.md: contents, pull-requests and issues: write)",
    404: "check the repository name and that the token can see it",
    409: "someone else changed it meanwhile; re-run",
}


@contextmanager
def github_errors(action: str, token: str | None = None) -> Iterator[None]:
    """Turn PyGithub and connection failures into one line naming what goldgate was doing."""
    from github import GithubException
    from requests.exceptions import RequestException

    try:
        yield
    except GithubException as exc:
        data = exc.data if isinstance(exc.data, dict) else {}
        msg = str(data.get("message") or exc.message or "")
        details = [str(e.get("message") or e.get("code") or "") if isinstance(e, dict) else str(e)
                   for e in data.get("errors") or []]
        text = "; ".join([msg, *[d for d in details if d]])
        hint = _HINTS.get(exc.status)
        line = f"{action}: GitHub answered {exc.status} {text}" + (f" ({hint})" if hint else "")
        raise GitHubError(_scrub(line, token)) from None
    except RequestException as exc:
        raise GitHubError(_scrub(f"{action}: cannot reach GitHub: {type(exc).__name__}", token)) from None


def _scrub(text: str, token: str | None) -> str:
    text = " ".join(text.split())
    return text.replace(token, "***") if token else text


def _status(exc: Exception) -> int:
    return int(getattr(exc, "status", 0) or 0)


def _message(exc: Exception) -> str:
    data = getattr(exc, "data", None)
    parts = [str(data.get("message", ""))] if isinstance(data, dict) else []
    if isinstance(data, dict):
        parts += [str(e.get("message", "")) for e in data.get("errors") or [] if isinstance(e, dict)]
    return " ".join(parts)


# --- markdown bodies --------------------------------------------------------------------------


def marker(name: str) -> str:
    """The hidden HTML comment that identifies goldgate's comment for one workflow."""
    safe = re.sub(r"[^A-Za-z0-9_.:/ -]", "", name).strip() or "goldgate"
    return f"<!-- goldgate:{safe} -->"


def fit_markdown(text: str, limit: int = BODY_LIMIT, note: str = "") -> str:
    """Cut markdown to `limit` characters at a line boundary and close what the cut left open
    (code fences, <details>), so a truncated body still renders as intended."""
    if len(text) <= limit:
        return text
    tail = f"\n\n> ✂️ truncated to fit GitHub's {limit:,}-character limit. {note}".rstrip() + "\n"
    budget = limit - len(tail) - 64
    lines, used = [], 0
    for line in text.splitlines():
        if used + len(line) + 1 > budget:
            break
        lines.append(line)
        used += len(line) + 1
    closers = []
    fences = sum(1 for line in lines if line.lstrip().startswith("```"))
    if fences % 2:
        closers.append("```")
    opened = sum(line.count("<details") for line in lines) - sum(line.count("</details>") for line in lines)
    closers += ["", "</details>"] * max(0, opened)
    return "\n".join(lines + closers) + tail


def pr_number_from_env(env: Mapping[str, str] = os.environ) -> int | None:
    """The pull request number of the running workflow (event payload, then GITHUB_REF)."""
    event = env.get("GITHUB_EVENT_PATH")
    if event and Path(event).is_file():
        try:
            payload = json.loads(Path(event).read_text(encoding="utf-8"))
        except ValueError:
            payload = {}
        number = (payload.get("pull_request") or {}).get("number")
        if isinstance(number, int):
            return number
    m = re.fullmatch(r"refs/pull/(\d+)/(merge|head)", env.get("GITHUB_REF", ""))
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class CommentResult:
    action: Literal["created", "updated"]
    url: str


def upsert_comment(repo: Repository, number: int, body: str, tag: str, *,
                   token: str | None = None) -> CommentResult:
    """Edit the comment that starts with `tag` on PR `number`, or create it: one per workflow."""
    full = fit_markdown(f"{tag}\n{body}", BODY_LIMIT)
    with github_errors(f"comment on {repo.full_name}#{number}", token):
        issue = repo.get_issue(number)
        for comment in issue.get_comments():
            if (comment.body or "").startswith(tag):
                comment.edit(full)
                return CommentResult("updated", comment.html_url)
        created = issue.create_comment(full)
        return CommentResult("created", created.html_url)


# --- Actions step summary, annotations, outputs -----------------------------------------------


def write_step_summary(markdown: str, env: Mapping[str, str] = os.environ) -> Path | None:
    """Append to $GITHUB_STEP_SUMMARY (1 MiB per step on GitHub); None outside Actions."""
    path = env.get("GITHUB_STEP_SUMMARY")
    if not path:
        return None
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(fit_markdown(markdown, 1_000_000) + "\n")
    return Path(path)


def _cmd_escape(value: str, *, prop: bool = False) -> str:
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return value.replace(":", "%3A").replace(",", "%2C") if prop else value


def annotations(summary: dict[str, Any], *, goldens_dir: str, changed_prompts: set[str],
                root: Path, workspace: Path) -> list[str]:
    """`::error` lines for failing suite gates, placed on the prompt the PR changed, else the golden."""
    lines = []
    for s in summary.get("suites", []):
        gate = s.get("gate") or {}
        if gate.get("status") != "fail":
            continue
        fp = s.get("fingerprints") or {}
        prompt = fp.get("prompt")
        target = prompt if prompt and prompt in changed_prompts else \
            f"{goldens_dir}/{s.get('dataset') or fp.get('dataset')}.jsonl"
        rel = os.path.relpath(root / target, workspace)
        reasons = "; ".join(gate.get("reasons") or ["gate failed"])
        title = f"goldgate gate failed: {s['name']}"
        lines.append(f"::error file={_cmd_escape(rel, prop=True)},line=1,"
                     f"title={_cmd_escape(title, prop=True)}::{_cmd_escape(reasons)}")
    return lines


def write_outputs(values: Mapping[str, str | int | float], env: Mapping[str, str] = os.environ) -> Path | None:
    """Step outputs via $GITHUB_OUTPUT (single-line values only)."""
    path = env.get("GITHUB_OUTPUT")
    if not path:
        return None
    with open(path, "a", encoding="utf-8") as fh:
        fh.writelines(f"{key}={' '.join(str(value).split())}\n" for key, value in values.items())
    return Path(path)


# --- the model-swap PR -----------------------------------------------------------------------


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


_HEADER = re.compile(r"^\s*\[(?P<name>[^\[\]]+)\]\s*(#.*)?$")


def _table_name(line: str) -> str | None:
    """The normalised name of a `[table]` header line (quotes and spaces around dots removed)."""
    m = _HEADER.match(line)
    if not m:
        return None
    return ".".join(part.strip().strip('"').strip("'") for part in m.group("name").split("."))


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)) and math.isfinite(value):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v, where) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v, where)}" for k, v in value.items()) + " }"
    raise SwapError(f"{where}: cannot write {type(value).__name__} value {value!r} to TOML")


def _set_key(lines: list[str], table: str, key: str, value: str, *, where: str) -> bool:
    """Replace `key = …` inside `[table]` keeping indentation and any trailing comment."""
    inside = False
    pat = re.compile(rf"^(?P<pre>\s*{re.escape(key)}\s*=\s*)(?P<val>\"[^\"]*\"|'[^']*')(?P<post>\s*(#.*)?)$")
    for i, line in enumerate(lines):
        name = _table_name(line)
        if name is not None or line.lstrip().startswith("[["):
            inside = name == table
            continue
        if inside:
            m = pat.match(line.rstrip("\r\n"))
            if m:
                end = line[len(line.rstrip("\r\n")):]
                lines[i] = f"{m.group('pre')}{value}{m.group('post')}{end}"
                return True
    raise SwapError(f"{where}: no `{key} = \"…\"` line in [{table}] to edit (is it written inline?)")


def _insert_table(lines: list[str], after_prefix: str, block: list[str]) -> None:
    """Insert a table after the last table whose name starts with `after_prefix` (else at the end),
    above the comments that introduce whatever table follows."""
    last = max((i for i, line in enumerate(lines) if (_table_name(line) or "").startswith(after_prefix)),
               default=None)
    at = len(lines)
    if last is not None:
        nxt = next((i for i in range(last + 1, len(lines)) if _table_name(lines[i]) is not None
                    or lines[i].lstrip().startswith("[[")), len(lines))
        at = nxt
        while at > last + 1 and (not lines[at - 1].strip() or lines[at - 1].lstrip().startswith("#")):
            at -= 1
    if lines and not lines[-1].endswith("\n") and at == len(lines):
        lines[-1] += "\n"
    lines[at:at] = ["\n", *block] + (["\n"] if at < len(lines) and lines[at].strip() else [])


def edit_pyproject(text: str, *, slot: str, proposed: str, proposed_config: Mapping[str, Any],
                   where: str = "pyproject.toml") -> str:
    """The swap as a text edit: the slot's `use` line, plus the candidate's table (added when
    missing, its `artifact` line updated when it changed); every other byte stays as it was."""
    try:
        before = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SwapError(f"{where}: invalid TOML: {exc}") from None
    gg = before.get("tool", {}).get("goldgate", {})
    if slot not in gg.get("slots", {}):
        raise SwapError(f"{where}: no [tool.goldgate.slots.{slot}] table")
    lines = text.splitlines(keepends=True)
    _set_key(lines, f"tool.goldgate.slots.{slot}", "use", json.dumps(proposed), where=where)
    existing = gg.get("candidates", {}).get(proposed)
    table = f"tool.goldgate.candidates.{proposed}"
    if existing is None:
        block = [f"[{table}]\n"] + [f"{_toml_key(k)} = {_toml_value(v, f'{where}: [{table}] {k}')}\n"
                                    for k, v in proposed_config.items()]
        _insert_table(lines, "tool.goldgate.candidates.", block)
    elif proposed_config.get("artifact") and existing.get("artifact") != proposed_config["artifact"]:
        _set_key(lines, table, "artifact", json.dumps(proposed_config["artifact"]), where=where)
    new = "".join(lines)
    _check_edit(before, new, slot=slot, proposed=proposed, proposed_config=proposed_config, where=where)
    return new


def _check_edit(before: dict[str, Any], new: str, *, slot: str, proposed: str,
                proposed_config: Mapping[str, Any], where: str) -> None:
    """Parse the edited file and require exactly the intended change, and a valid candidate."""
    from pydantic import ValidationError

    from goldgate.config import CandidateConfig

    after = tomllib.loads(new)
    expected = json.loads(json.dumps(before))
    gg = expected["tool"]["goldgate"]
    gg["slots"][slot]["use"] = proposed
    cands = gg.setdefault("candidates", {})
    if proposed not in cands:
        cands[proposed] = json.loads(json.dumps(dict(proposed_config)))
    elif proposed_config.get("artifact"):
        cands[proposed]["artifact"] = proposed_config["artifact"]
    if json.loads(json.dumps(after)) != expected:
        raise SwapError(f"{where}: the edit would change more than [tool.goldgate.slots.{slot}] use; "
                        "edit it by hand")
    try:
        CandidateConfig.model_validate(after["tool"]["goldgate"]["candidates"][proposed])
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise SwapError(f"{where}: [tool.goldgate.candidates.{proposed}] {key}: {first['msg']}") from None


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


def swap_body(decision: Decision, tag: str, run_url: str | None = None) -> str:
    """The PR body: the decision report, then the evidence (prices, hardware, data hashes) folded."""
    lines = [tag, decision.report.strip() or
             f"goldgate decided to swap slot `{decision.slot}` from `{decision.current}` "
             f"to `{decision.proposed}`.", ""]
    if decision.reasons:
        lines += ["**Reasons**", "", *[f"- {escape_prose(r)}" for r in decision.reasons], ""]
    rows = _flatten(decision.evidence)
    if rows:
        lines += ["<details>", "<summary>Evidence (prices, hardware, data hashes)</summary>", "",
                  "| key | value |", "|---|---|",
                  *[f"| {quote(k, 80)} | {quote(json.dumps(v) if not isinstance(v, str) else v, 200)} |"
                    for k, v in rows], "", "</details>", ""]
    if run_url:
        lines += [f"Produced by [this workflow run]({run_url}); the chart and full decision are in its artifacts.", ""]
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
        if _status(exc) != 404:
            raise
        ref = None
    if ref is None:
        try:
            repo.create_git_ref(f"refs/heads/{plan.branch}", base_sha)
        except GithubException as exc:
            if _status(exc) != 422 or "already exists" not in _message(exc):
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
            if _status(exc) != 409 or attempt == 2:
                raise
    return False


def _create_pr(repo: Repository, plan: SwapPlan, base: str, head: str) -> tuple[Any, Literal["created", "updated"]]:
    from github import GithubException

    try:
        return repo.create_pull(base=base, head=plan.branch, title=plan.title, body=plan.body), "created"
    except GithubException as exc:
        if _status(exc) != 422 or "already exists" not in _message(exc):
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
        if _status(exc) not in (404, 422):
            raise
    return SwapResult("closed", pr.html_url, pr.number)
