"""Human-readable views of a run summary: a terminal table and markdown (for PRs and CI)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

__all__ = ["render_markdown", "render_terminal"]


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _ci(s: dict[str, Any]) -> str:
    lo, hi = s["pass_rate_ci"]
    return f"[{100 * lo:.1f}, {100 * hi:.1f}]"


def _money(x: float) -> str:
    return f"${x:.4f}" if x < 1 else f"${x:,.2f}"


def _gate(s: dict[str, Any]) -> str:
    g = s["gate"]
    return "PASS" if g["status"] == "pass" else "FAIL: " + "; ".join(g.get("reasons", []))


def render_terminal(summary: dict[str, Any], run_dir: Path | str | None = None, width: int = 120) -> str:
    """A rich table per run, rendered to text so pytest's terminal writer can print it."""
    from rich.console import Console
    from rich.table import Table

    buf = io.StringIO()
    console = Console(file=buf, width=max(width, 120), force_terminal=False, color_system=None)
    table = Table(title=None, show_lines=False)
    # The suite column shows the node id and folds it over lines: cutting it made two suites of one
    # module indistinguishable (`test_inten…`). The numbers never wrap.
    table.add_column("suite (node id)", justify="left", overflow="fold", ratio=1, min_width=16)
    for col in ("n", "pass", "fail", "error", "pass rate [95% CI]", "cost", "p50 / p95 ms",
                "cached", "gate"):
        table.add_column(col, justify="left" if col == "gate" else "right", no_wrap=True)
    for s in summary["suites"]:
        # A judged suite's cost includes its judges' share, and its errors the judges' errors: their
        # part goes on a second line of the cell, so the table keeps its width.
        judge_cost = f"\njudge {_money(s['judge_cost_usd'])}" if s.get("judge_cost_usd") else ""
        judge_errors = f"\njudge {s['judge_errors']}" if s.get("judge_errors") else ""
        table.add_row(
            s.get("nodeid") or s["name"], str(s["n"]), str(s["passed"]), str(s["failed"]), f"{s['errors']}{judge_errors}",
            f"{_pct(s['pass_rate'])} {_ci(s)}", f"{_money(s['cost_usd'])}{judge_cost}",
            f"{1000 * s['latency_p50_s']:.0f} / {1000 * s['latency_p95_s']:.0f}",
            f"{s['cache_hits']}/{s['n']}", s["gate"]["status"].upper(),
        )
    console.print(table)
    for s in summary["suites"]:
        for reason in s["gate"].get("reasons", []):
            console.print(f"gate failed: {s.get('nodeid') or s['name']}: {reason}")
    for g in summary.get("judge_gates", []):
        console.print(f"judge {g['judge']}: {g['status'].upper()}" + "".join(f"; {r}" for r in g.get("reasons", [])))
    t = summary["totals"]
    judge_cost = f" (judges {_money(t['judge_cost_usd'])})" if t.get("judge_cost_usd") else ""
    console.print(
        f"{t['cases']} cases · {t['llm_calls']} LLM calls · {t['cache_hits']} cache hits · "
        f"cost {_money(t['cost_usd'])}{judge_cost} · {t['wall_s']:.1f}s · gates {summary['status'].upper()}"
    )
    for s in summary["suites"]:
        if "repeats" in s:
            r = s["repeats"]
            console.print(f"{s['name']}: k={r['k']} pass@k {_pct(r['pass_at_k'])} · all-k {_pct(r['pass_all_k'])} · "
                          f"flaky cases {r['flaky_cases']} ({_pct(r['flakiness'])})")
    if run_dir is not None:
        console.print(f"results: {run_dir}")
        if (Path(run_dir) / "report.html").is_file():
            console.print(f"report:  {Path(run_dir) / 'report.html'}")
    return buf.getvalue()


def render_markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"### goldgate run `{summary['run_id']}` — gates **{summary['status'].upper()}**",
        "",
        "| suite | n | passed | failed | errors | pass rate [95% CI] | cost | p95 latency | gate |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for s in summary["suites"]:
        lines.append(
            f"| {s['name']} | {s['n']} | {s['passed']} | {s['failed']} | {s['errors']} | "
            f"{_pct(s['pass_rate'])} {_ci(s)} | {_money(s['cost_usd'])} | "
            f"{1000 * s['latency_p95_s']:.0f} ms | {_gate(s)} |"
        )
    t = summary["totals"]
    totals = (f"{t['cases']} cases, {t['llm_calls']} LLM calls, {t['cache_hits']} cache hits, "
              f"cost {_money(t['cost_usd'])}.")
    lines += ["", totals]
    return "\n".join(lines) + "\n"
