"""Head vs base, paired: the same cases ran on both sides, so compare them case by case.

Per suite one score test gives both the verdict and the interval: Tango's score interval for the
paired pass-rate delta (two-sided 95%), continuity-corrected by one discordant pair, so that at
"no change" its statistic is the corrected McNemar test (|b − c| − 1) / √(b + c). The interval
excludes 0 exactly when p < α, so they never disagree (an exact McNemar verdict next to a Newcombe
interval could). Across suites the overall verdict is Holm-corrected: with five unchanged suites,
uncorrected verdicts call one "worse" in about one run in ten. Model text only ever reaches
markdown through `quote`, so an output cannot inject markup into a PR.
"""

from __future__ import annotations

import html
import os
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from goldgate.decide.guards import holm
from goldgate.decide.noninferiority import phi, tango_lower_bound, tango_z
from goldgate.engine.results import load_cases, load_run
from goldgate.engine.stats import Z95
from goldgate.markdown import escape_prose, quote, quote_plain

__all__ = [
    "SCHEMA",
    "CaseFlip",
    "Comparison",
    "SuiteComparison",
    "compare_runs",
    "escape_prose",
    "paired_test",
    "quote",
    "render_markdown",
]

SCHEMA = "goldgate.compare/v1"
ALPHA = 0.05
CORRECTION = 1.0
METHOD = "Tango score test and interval (95%, continuity-corrected by 1 pair = corrected McNemar at Δ = 0)"
FINGERPRINT_KEYS = {
    "prompt": ("prompt", "prompt_sha256"),
    "model": ("candidate", "model"),
    "params": ("params",),
    "dataset": ("dataset", "dataset_sha256"),
}
Verdict = Literal["worse", "better", "no detectable change", "not comparable"]


def paired_test(fixed: int, regressed: int, n: int) -> tuple[float, tuple[float, float]]:
    """Two-sided p-value of "no change" and the 95% interval on head − base, from one score test;
    `fixed` = head-only passes, `regressed` = base-only passes."""
    if n == 0:
        return 1.0, (-1.0, 1.0)
    z = tango_z(max(fixed, regressed), min(fixed, regressed), n, 0.0, CORRECTION)
    p = min(1.0, 2 * (1 - phi(z)))
    lo = tango_lower_bound(fixed, regressed, n, Z95, CORRECTION)
    hi = -tango_lower_bound(regressed, fixed, n, Z95, CORRECTION)
    return p, (lo, hi)


@dataclass(frozen=True)
class CaseFlip:
    case_id: str
    expected: Any
    base_output: str
    head_output: str
    head_message: str


@dataclass
class SuiteComparison:
    name: str
    verdict: Verdict
    shared: int
    base_pass_rate: float
    head_pass_rate: float
    delta: float
    delta_ci: tuple[float, float]
    p_value: float
    both_pass: int
    fixed: int
    regressed: int
    both_fail: int
    regressions: list[CaseFlip] = field(default_factory=list)
    fixes: list[CaseFlip] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: dict[str, dict[str, Any]] = field(default_factory=dict)
    base: dict[str, Any] = field(default_factory=dict)
    head: dict[str, Any] = field(default_factory=dict)
    method: str = METHOD
    holm_significant: bool = False

    @property
    def deltas(self) -> dict[str, float]:
        """Suite-level cost and latency deltas (head − base), from the two summaries."""
        keys = ("cost_usd", "cost_per_case", "latency_p50_s", "latency_p95_s")
        return {k: float(self.head.get(k, 0.0)) - float(self.base.get(k, 0.0)) for k in keys}


@dataclass
class Comparison:
    base_run: str
    head_run: str
    verdict: Verdict
    head_status: str
    suites: list[SuiteComparison]
    suites_added: list[str] = field(default_factory=list)
    suites_removed: list[str] = field(default_factory=list)
    alpha: float = ALPHA

    def to_json(self) -> dict[str, Any]:
        suites = []
        for s in self.suites:
            d = asdict(s)
            d["delta_ci"] = list(s.delta_ci)
            d["deltas"] = s.deltas
            d["base"] = _suite_numbers(s.base)
            d["head"] = _suite_numbers(s.head)
            suites.append(d)
        return {
            "schema": SCHEMA,
            "base_run": self.base_run,
            "head_run": self.head_run,
            "verdict": self.verdict,
            "head_status": self.head_status,
            "suites": suites,
            "suites_added": self.suites_added,
            "suites_removed": self.suites_removed,
            "alpha": self.alpha,
            "overall": "Holm across suites",
        }


def _suite_numbers(s: dict[str, Any]) -> dict[str, Any]:
    keys = ("n", "passed", "failed", "errors", "pass_rate", "pass_rate_ci", "cost_usd", "cost_per_case",
            "latency_p50_s", "latency_p95_s", "fingerprints", "gate")
    return {k: s[k] for k in keys if k in s}


def _per_case(records: list[dict[str, Any]]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """suite → case id → its counted records (all repeats); skipped cases are not outcomes."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        if r.get("status") != "skipped":
            out[r["suite"]][r["case_id"]].append(r)
    return out


def _passes(records: list[dict[str, Any]]) -> bool:
    """A case passes when at least half of its repeats passed; an error counts as a failure."""
    return 2 * sum(r["status"] == "passed" for r in records) >= len(records)


def _output_text(records: list[dict[str, Any]]) -> str:
    r = records[0]
    if r.get("status") == "error" and not r.get("output"):
        return f"error: {r.get('message') or r.get('error') or ''}"
    out = r.get("output") or {}
    if isinstance(out, dict):
        label = out.get("label")
        return str(label if label is not None else out.get("text", ""))
    return str(out)


def _flip(cid: str, base: list[dict[str, Any]], head: list[dict[str, Any]]) -> CaseFlip:
    return CaseFlip(cid, head[0].get("expected"), _output_text(base), _output_text(head),
                    str(head[0].get("message") or ""))


def _changed_fingerprints(base: dict[str, Any], head: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, keys in FINGERPRINT_KEYS.items():
        b = {k: base.get(k) for k in keys if k in base}
        h = {k: head.get(k) for k in keys if k in head}
        if b != h:
            out[name] = {"base": b, "head": h}
    return out


def _compare_suite(name: str, base_s: dict[str, Any], head_s: dict[str, Any],
                   base_cases: dict[str, list[dict[str, Any]]],
                   head_cases: dict[str, list[dict[str, Any]]], alpha: float) -> SuiteComparison:
    shared = sorted(set(base_cases) & set(head_cases))
    a = b = c = d = 0
    regressions, fixes = [], []
    for cid in shared:
        bp, hp = _passes(base_cases[cid]), _passes(head_cases[cid])
        if bp and hp:
            a += 1
        elif hp:
            b += 1
            fixes.append(_flip(cid, base_cases[cid], head_cases[cid]))
        elif bp:
            c += 1
            regressions.append(_flip(cid, base_cases[cid], head_cases[cid]))
        else:
            d += 1
    n = len(shared)
    p, interval = paired_test(b, c, n)
    delta = (b - c) / n if n else 0.0
    verdict: Verdict
    if n == 0:
        verdict = "not comparable"
    elif p < alpha:
        verdict = "worse" if c > b else "better"
    else:
        verdict = "no detectable change"
    return SuiteComparison(
        name=name, verdict=verdict, shared=n,
        base_pass_rate=(a + c) / n if n else 0.0, head_pass_rate=(a + b) / n if n else 0.0,
        delta=delta, delta_ci=interval, p_value=p,
        both_pass=a, fixed=b, regressed=c, both_fail=d, regressions=regressions, fixes=fixes,
        added=sorted(set(head_cases) - set(base_cases)), removed=sorted(set(base_cases) - set(head_cases)),
        changed=_changed_fingerprints(base_s.get("fingerprints", {}), head_s.get("fingerprints", {})),
        base=base_s, head=head_s,
    )


def compare_runs(base_dir: str | os.PathLike[str], head_dir: str | os.PathLike[str], *,
                 alpha: float = ALPHA) -> Comparison:
    """Compare two run directories suite by suite on the cases both ran."""
    base, head = load_run(base_dir), load_run(head_dir)
    base_cases, head_cases = _per_case(load_cases(base_dir)), _per_case(load_cases(head_dir))
    base_suites = {s["name"]: s for s in base["suites"]}
    head_suites = {s["name"]: s for s in head["suites"]}
    suites = [
        _compare_suite(name, base_suites[name], head_suites[name], base_cases.get(name, {}),
                       head_cases.get(name, {}), alpha)
        for name in sorted(set(base_suites) & set(head_suites))
    ]
    significant = holm({s.name: s.p_value for s in suites if s.shared}, alpha)
    verdicts = {s.verdict for s in suites if s.name in significant}
    overall: Verdict = ("worse" if "worse" in verdicts else "better" if "better" in verdicts
                        else "no detectable change" if suites else "not comparable")
    for s in suites:
        s.holm_significant = s.name in significant
    return Comparison(
        base_run=str(base.get("run_id", base_dir)), head_run=str(head.get("run_id", head_dir)),
        verdict=overall, head_status=str(head.get("status", "unknown")), suites=suites,
        suites_added=sorted(set(head_suites) - set(base_suites)),
        suites_removed=sorted(set(base_suites) - set(head_suites)), alpha=alpha,
    )


# --- markdown -------------------------------------------------------------------------------

def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _pts(x: float) -> str:
    return f"{100 * x:+.1f} pts"


def _per_1k(x: float) -> str:
    """Per-case costs are fractions of a cent; per 1,000 cases they read at a glance."""
    return f"{'+' if x >= 0 else '-'}${abs(1000 * x):,.4f}"


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _ms(x: float) -> str:
    return f"{1000 * x:+.0f} ms"


_BADGE = {"worse": "🔴 worse", "better": "🟢 better", "no detectable change": "⚪ no detectable change",
          "not comparable": "⚠️ not comparable"}


def _expected(e: Any) -> Any:
    if isinstance(e, dict) and len(e) == 1:
        return next(iter(e.values()))
    return e


def _flip_table(title: str, flips: list[CaseFlip]) -> list[str]:
    if not flips:
        return []
    lines = [f"**{title}** ({len(flips)})", "", "| case | expected | base | head |", "|---|---|---|---|"]
    lines += [f"| {quote(f.case_id, 60)} | {quote(_expected(f.expected))} | {quote(f.base_output)} | "
              f"{quote(f.head_output)} |" for f in flips]
    return lines + [""]


def _ids(title: str, ids: list[str], limit: int = 50) -> list[str]:
    if not ids:
        return []
    shown = ", ".join(quote(i, 60, in_table=False) for i in ids[:limit])
    more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
    return [f"**{title}** ({len(ids)}): {shown}{more}", ""]


def _holm_note(s: SuiteComparison) -> str:
    return " (not after Holm)" if s.verdict in ("worse", "better") and not s.holm_significant else ""


def _changes(s: SuiteComparison) -> str:
    return ", ".join(sorted(s.changed)) or "—"


def render_markdown(cmp: Comparison) -> str:
    """The comparison table on top, then each suite's flipped cases folded in <details>."""
    lines = [
        f"### goldgate: head vs base — {_BADGE[cmp.verdict]} · head gates **{cmp.head_status.upper()}**",
        "",
        ("| suite | base | head | Δ pass rate [95% CI] | p | verdict | regressed / fixed | "
        "Δ cost / 1k cases | Δ p95 latency | changed | head gate |"),
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---|---|",
    ]
    for s in cmp.suites:
        lo, hi = s.delta_ci
        gate = s.head.get("gate", {}).get("status", "?").upper()
        lines.append(
            f"| {quote(s.name, 60)} | {_pct(s.base_pass_rate)} | {_pct(s.head_pass_rate)} | "
            f"{_pts(s.delta)} [{_pts(lo)}, {_pts(hi)}] | {_p(s.p_value)} | {_BADGE[s.verdict]}{_holm_note(s)} | "
            f"{s.regressed} / {s.fixed} | {_per_1k(s.deltas['cost_per_case'])} | "
            f"{_ms(s.deltas['latency_p95_s'])} | {_changes(s)} | {gate} |"
        )
    lines += ["", (f"Paired on the {sum(s.shared for s in cmp.suites)} cases both runs share; "
              f"base `{quote_plain(cmp.base_run)}` → head `{quote_plain(cmp.head_run)}`. One score test per "
              f"suite gives p and the interval; the overall verdict is Holm-corrected across "
              f"{len(cmp.suites)} suite(s) at α = {cmp.alpha:g}."), ""]
    for name in cmp.suites_added:
        lines.append(f"- suite {quote(name, 60, in_table=False)} is new in head (no base to compare)")
    for name in cmp.suites_removed:
        lines.append(f"- suite {quote(name, 60, in_table=False)} is gone from head")
    if cmp.suites_added or cmp.suites_removed:
        lines.append("")
    for s in cmp.suites:
        reasons = s.head.get("gate", {}).get("reasons", [])
        body = [f"- gate: {escape_prose(r)}" for r in reasons]
        for kind, ch in sorted(s.changed.items()):
            body.append(f"- {kind} changed: {quote(_fp(ch['base']), 200, in_table=False)} → "
                        f"{quote(_fp(ch['head']), 200, in_table=False)}")
        body += [""] if body else []
        body += _flip_table("Regressions (base passed, head fails)", s.regressions)
        body += _flip_table("Fixes (base failed, head passes)", s.fixes)
        body += _ids("Cases added", s.added) + _ids("Cases removed", s.removed)
        if not body:
            continue
        summary = (f"{html.escape(s.name)}: {s.regressed} regressed, {s.fixed} fixed, "
                   f"{len(s.added)} added, {len(s.removed)} removed")
        lines += ["<details>", f"<summary>{summary}</summary>", "", *body, "</details>", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _fp(values: dict[str, Any]) -> str:
    parts = []
    for k, v in values.items():
        if isinstance(v, str) and len(v) == 64 and all(ch in "0123456789abcdef" for ch in v):
            v = v[:12]
        parts.append(f"{k}={v}")
    return " ".join(parts) or "(none)"
