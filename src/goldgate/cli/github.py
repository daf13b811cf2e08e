"""`goldgate github comment | summary | swap-pr`: publish results and model swaps on GitHub."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("github", help="sticky PR comment, step summary and model-swap PR")
    gs = p.add_subparsers(dest="github_command", metavar="ACTION", required=True)

    def runs(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--head", required=True, type=Path, help="the run directory of this change")
        parser.add_argument("--base", type=Path, help="the base run directory (adds the paired comparison)")
        parser.add_argument("--artifact", default="goldgate-runs",
                            help="name of the workflow artifact that holds the head run (for the report link)")

    def remote(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--repo", default=os.environ.get("GITHUB_REPOSITORY"),
                            help="owner/name (default: $GITHUB_REPOSITORY)")
        parser.add_argument("--api-url", default=os.environ.get("GITHUB_API_URL"),
                            help="REST API base URL (default: $GITHUB_API_URL or api.github.com)")

    c = gs.add_parser("comment", help="create or edit this workflow's sticky comment on the PR")
    runs(c)
    remote(c)
    c.add_argument("--pr", type=int, help="pull request number (default: from the Actions event)")
    c.add_argument("--marker", default=os.environ.get("GITHUB_WORKFLOW") or "evals",
                   help="name in the hidden marker that identifies the comment (default: $GITHUB_WORKFLOW)")
    c.add_argument("--dry-run", action="store_true", help="print the comment body; no network")
    c.set_defaults(func=_comment)

    s = gs.add_parser("summary", help="step summary, ::error annotations for failing gates, outputs")
    runs(s)
    s.set_defaults(func=_summary)

    w = gs.add_parser("swap-pr", help="open, update or close each slot's model-swap PR from its decision")
    w.add_argument("--decision", required=True, type=Path,
                   help="decision.json written by `goldgate decide`, or its --out folder (one decision per slot)")
    remote(w)
    w.add_argument("--base-branch", help="branch the PR targets (default: the repository's default)")
    w.add_argument("--path", default="pyproject.toml", help="the config file's path in the repository")
    w.add_argument("--label", action="append", default=[], help="extra label (repeatable)")
    w.add_argument("--dry-run", action="store_true",
                   help="print title, branch, diff and body against the local pyproject.toml; no network")
    w.set_defaults(func=_swap_pr)


def _report(head: Path, base: Path | None, artifact: str = "goldgate-runs") -> tuple[str, Any]:
    """Markdown for the comment / summary, and the comparison when there is a base. The head run's
    report.html is (re)written with the comparison, and the markdown links to it."""
    from goldgate.cli.run import write_report_html
    from goldgate.engine.results import load_run

    page = write_report_html(head, base=base)
    if base is None:
        from goldgate.report.terminal import render_markdown

        markdown, cmp = render_markdown(load_run(head)), None
    else:
        from goldgate.decide.compare import compare_runs
        from goldgate.decide.compare import render_markdown as render_comparison

        cmp = compare_runs(base, head)
        markdown = render_comparison(cmp)
    url = _run_url()
    where = (f"in the `{artifact}` artifact of [this workflow run]({url}#artifacts)" if url
             else f"at `{page}`")
    return markdown + f"\n📊 The HTML report (every case, confusions, charts) is `{page.name}` {where}.\n", cmp


def _repo(args: argparse.Namespace, token: str) -> Any:
    from goldgate.github.client import GitHubError, connect, github_errors

    if not args.repo or "/" not in args.repo:
        raise GitHubError("no repository: pass --repo owner/name or set GITHUB_REPOSITORY")
    with github_errors(f"open {args.repo}", token):
        return connect(token, args.api_url).get_repo(args.repo)


def _run_url() -> str | None:
    env = os.environ
    if env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        return f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    return None


def _comment(args: argparse.Namespace) -> int:
    from goldgate.github.client import GitHubError, token_from_env
    from goldgate.github.comment import marker, pr_number_from_env, upsert_comment

    markdown, _ = _report(args.head, args.base, args.artifact)
    tag = marker(args.marker)
    if args.dry_run:
        print(f"{tag}\n{markdown}", end="")
        return 0
    number = args.pr or pr_number_from_env()
    if number is None:
        raise GitHubError("no pull request: pass --pr N or run on a pull_request event")
    token = token_from_env()
    result = upsert_comment(_repo(args, token), number, markdown, tag, token=token)
    print(f"{result.action} comment {result.url}")
    return 0


def _summary(args: argparse.Namespace) -> int:
    from goldgate.engine.results import load_run
    from goldgate.errors import ConfigError
    from goldgate.github.summary import annotations, write_outputs, write_step_summary

    markdown, cmp = _report(args.head, args.base, args.artifact)
    summary = load_run(args.head)
    try:
        from goldgate.config import load_config

        cfg = load_config()
        root, goldens = cfg.root, cfg.goldens
    except ConfigError:
        root, goldens = Path.cwd(), "evals/goldens"
    changed = {str(s.head.get("fingerprints", {}).get("prompt")) for s in cmp.suites
               if "prompt" in s.changed} if cmp else set()
    workspace = Path(os.environ.get("GITHUB_WORKSPACE") or Path.cwd())
    for line in annotations(summary, goldens_dir=goldens, changed_prompts=changed, root=root,
                            workspace=workspace):
        print(line)
    if write_step_summary(markdown) is None:
        print(markdown, end="")
    outputs: dict[str, Any] = {"status": summary.get("status", "unknown"),
                               "pass-rate": f"{summary['totals'].get('passed', 0) / max(1, summary['totals'].get('cases', 0)):.4f}"}
    if cmp is not None:
        outputs.update({"verdict": cmp.verdict, "regressions": sum(s.regressed for s in cmp.suites),
                        "fixes": sum(s.fixed for s in cmp.suites)})
    write_outputs(outputs)
    return 0


def _swap_pr(args: argparse.Namespace) -> int:
    from goldgate.github.client import token_from_env
    from goldgate.github.swap import SWAP_LABELS, decision_files, load_decision, sync_swap_pr

    decisions = [load_decision(p) for p in decision_files(args.decision)]  # all checked before any change
    labels = (*SWAP_LABELS, *args.label)
    if args.dry_run:
        for decision in decisions:
            _swap_dry_run(args, decision, labels)
        return 0
    token = token_from_env()
    repo = _repo(args, token)
    for decision in decisions:
        result = sync_swap_pr(repo, decision, path=args.path, base=args.base_branch,
                              labels=labels, run_url=_run_url(), token=token)
        for note in result.notes:
            print(note)
        if result.url:
            print(f"{result.action} swap PR #{result.number}: {result.url}")
    return 0


def _swap_dry_run(args: argparse.Namespace, decision: Any, labels: tuple[str, ...]) -> None:
    from goldgate.config import find_pyproject
    from goldgate.github.pyproject_edit import SwapError
    from goldgate.github.swap import plan_swap

    pyproject = find_pyproject()
    if pyproject is None:
        raise SwapError("no pyproject.toml with [tool.goldgate] at or above the current directory")
    plan = plan_swap(decision, pyproject.read_text(encoding="utf-8"), path=args.path, labels=labels,
                     run_url=_run_url())
    if decision.decision == "keep":
        print(f"decision: keep {decision.current} for slot {decision.slot}: would close the open PR "
              f"from branch {plan.branch}, if any, with a comment")
        return
    print(f"title:  {plan.title}\nbranch: {plan.branch}\nlabels: {', '.join(plan.labels)}\n")
    print(plan.diff)
    print(plan.body, end="")
