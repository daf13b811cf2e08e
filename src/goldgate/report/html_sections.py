"""The HTML report's drawn pieces (intervals, the accuracy-vs-cost chart) and its optional sections:
base vs head (`--compare`) and a swap decision."""

from __future__ import annotations

import html
import json
import math
from typing import Any

__all__ = ["compare_section", "decision_section", "interval_svg"]

e = html.escape
FLIPS_SHOWN = 200


def interval_svg(point: float, lo: float, hi: float, floor: float | None, width: int = 180) -> str:
    """A [0, 1] axis with the 95% interval as a bar, the estimate as a dot and the gate's floor as a tick."""
    def x(v: float) -> float:
        return 4 + max(0.0, min(1.0, v)) * (width - 8)

    tick = (f'<line x1="{x(floor):.1f}" x2="{x(floor):.1f}" y1="2" y2="16" stroke="#cf222e" stroke-width="2">'
            f'<title>floor {100 * floor:.1f}%</title></line>') if floor else ""
    return (f'<svg class="interval" width="{width}" height="18" role="img" aria-label="{100 * point:.1f}% '
            f'[{100 * lo:.1f}, {100 * hi:.1f}]"><line x1="4" x2="{width - 4}" y1="9" y2="9" stroke="#d0d7de"/>'
            f'<rect x="{x(lo):.1f}" y="5" width="{max(1.0, x(hi) - x(lo)):.1f}" height="8" rx="3" fill="#0969da" '
            f'fill-opacity="0.35"/><circle cx="{x(point):.1f}" cy="9" r="4" fill="#0969da"/>{tick}</svg>')


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _pts(x: float) -> str:
    return f"{100 * x:+.1f} pts"


def _flips(title: str, flips: list[Any]) -> str:
    if not flips:
        return ""
    rows = "".join(f"<tr><td><code>{e(f.case_id)}</code></td><td>{e(_expected(f.expected))}</td><td>{e(f.base_output)}</td>"
                   f"<td>{e(f.head_output)}</td></tr>" for f in flips[:FLIPS_SHOWN])
    more = f'<p class="muted">and {len(flips) - FLIPS_SHOWN} more</p>' if len(flips) > FLIPS_SHOWN else ""
    return (f"<details><summary><b>{e(title)} ({len(flips)})</b></summary><table class=\"flips\"><thead><tr>"
            f"<th>case</th><th>expected</th><th>base</th><th>head</th></tr></thead><tbody>{rows}</tbody></table>"
            f"{more}</details>")


def _expected(value: Any) -> str:
    if isinstance(value, dict) and len(value) == 1:
        value = next(iter(value.values()))
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _verdict(verdict: str) -> str:
    return "worse" if verdict == "worse" else "better" if verdict == "better" else "neutral"


def compare_section(cmp: Any) -> str:
    """Base vs head side by side per suite, the paired test (`decide.compare`), and the flipped cases."""
    rows, flips = [], []
    for s in cmp.suites:
        lo, hi = s.delta_ci
        b, h = s.base, s.head
        rows.append(
            f'<tr><td>{e(s.name)}</td><td class="num">{_pct(s.base_pass_rate)}<br>'
            f'{interval_svg(s.base_pass_rate, *(b.get("pass_rate_ci") or [s.base_pass_rate] * 2), None, 140)}</td>'
            f'<td class="num">{_pct(s.head_pass_rate)}<br>'
            f'{interval_svg(s.head_pass_rate, *(h.get("pass_rate_ci") or [s.head_pass_rate] * 2), None, 140)}</td>'
            f'<td class="num">{_pts(s.delta)} [{_pts(lo)}, {_pts(hi)}]</td><td class="num">{s.p_value:.3g}</td>'
            f'<td><span class="badge {_verdict(s.verdict)}">'
            f'{e(s.verdict)}</span></td><td class="num">{s.regressed} / {s.fixed}</td>'
            f'<td class="num">${b.get("cost_per_case", 0) * 1000:.4f} → ${h.get("cost_per_case", 0) * 1000:.4f}</td>'
            f'<td class="num">{1000 * b.get("latency_p95_s", 0):.0f} → {1000 * h.get("latency_p95_s", 0):.0f}</td>'
            f'<td>{e(", ".join(sorted(s.changed)) or "—")}</td></tr>')
        flips.append(_flips(f"{s.name}: regressions (base passed, head fails)", s.regressions)
                     + _flips(f"{s.name}: fixes (base failed, head passes)", s.fixes))
    return (f'<h2 id="compare">Head vs base: <span class="badge {_verdict(cmp.verdict)}">'
            f'{e(cmp.verdict)}</span></h2><p class="muted">base <code>{e(cmp.base_run)}</code> → head '
            f'<code>{e(cmp.head_run)}</code>; paired on the cases both runs share ({e(cmp.suites[0].method if cmp.suites else "")}; '
            'overall verdict Holm-corrected across suites).</p><table id="compare-table"><thead><tr><th>suite</th>'
            '<th class="num">base</th><th class="num">head</th><th class="num">Δ pass rate [95% CI]</th>'
            '<th class="num">p</th><th>verdict</th><th class="num">regressed / fixed</th>'
            '<th class="num">$ / 1k cases</th><th class="num">p95 ms</th><th>changed</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>{"".join(flips)}')


def _chart(candidates: list[dict[str, Any]], width: int = 560, height: int = 320) -> str:
    """Accuracy (Wilson 95% whiskers) against cost per 1k requests on a log axis, one dot per candidate."""
    pts = [(max(c.get("cost_per_1k") or 0.0, 1e-6), c) for c in candidates]
    xs = [math.log10(x) for x, _ in pts]
    x0, x1 = min(xs) - 0.5, max(xs) + 0.7
    ys = [v for _, c in pts for v in c["accuracy_ci95"]]
    y0, y1 = max(0.0, min(ys) - 0.05), min(1.0, max(ys) + 0.05)
    if y1 - y0 < 0.05:
        y0, y1 = max(0.0, y0 - 0.05), min(1.0, y1 + 0.05)
    left, bottom = 56, height - 40

    def px(v: float) -> float:
        return left + (math.log10(v) - x0) / (x1 - x0) * (width - left - 16)

    def py(v: float) -> float:
        return bottom - (v - y0) / ((y1 - y0) or 1) * (bottom - 16)

    parts = [f'<line x1="{left}" y1="{bottom}" x2="{width - 8}" y2="{bottom}" stroke="#57606a"/>',
             f'<line x1="{left}" y1="16" x2="{left}" y2="{bottom}" stroke="#57606a"/>']
    for k in range(math.ceil(x0), math.floor(x1) + 1):
        parts.append(f'<line x1="{px(10 ** k):.1f}" y1="{bottom}" x2="{px(10 ** k):.1f}" y2="16" stroke="#eaeef2"/>'
                     f'<text x="{px(10 ** k):.1f}" y="{bottom + 14}" text-anchor="middle">${10 ** k:g}</text>')
    for i in range(5):
        v = y0 + (y1 - y0) * i / 4
        parts.append(f'<text x="{left - 6}" y="{py(v) + 4:.1f}" text-anchor="end">{v:.2f}</text>')
    for x, c in pts:
        lo, hi = c["accuracy_ci95"]
        color = "#0969da" if c["role"] == "current" else "#bc4c00" if c["role"] == "proposed" else "#57606a"
        parts.append(f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{py(lo):.1f}" y2="{py(hi):.1f}" stroke="{color}" '
                     f'stroke-width="2"/><circle cx="{px(x):.1f}" cy="{py(c["accuracy"]):.1f}" r="5" fill="{color}">'
                     f'<title>{e(c["name"])}: {c["accuracy"]:.3f} at ${x:.4f}/1k</title></circle>'
                     f'<text x="{px(x) + 8:.1f}" y="{py(c["accuracy"]) - 6:.1f}">{e(c["name"])} ({c["accuracy"]:.3f})</text>')
    parts.append(f'<text x="{(left + width) / 2:.0f}" y="{height - 6}" text-anchor="middle">cost per 1k requests '
                 '(USD, log scale)</text>')
    parts.append(f'<text x="14" y="{bottom / 2:.0f}" transform="rotate(-90 14 {bottom / 2:.0f})" '
                 'text-anchor="middle">accuracy</text>')
    return (f'<svg id="decision-chart" width="{width}" height="{height}" role="img" '
            f'aria-label="accuracy vs cost per 1k requests">{"".join(parts)}</svg>')


def _per_1k(x: float | None) -> str:
    return "—" if x is None else f"${x:.4f}"


def decision_section(dec: dict[str, Any]) -> str:
    """The swap decision: verdict and reasons, the accuracy-vs-cost chart, the check and candidate tables."""
    ch = dec["checks"]
    checks = [("(a) test split", ch["a_test_split"]), ("(b) non-inferiority", ch["b_noninferiority"]),
              ("(c) cost", ch["c_cost"]), ("(d) guards", ch["d_guards"])]
    rows = "".join(f'<tr><td>{e(name)}</td><td><span class="badge {"pass" if c.get("pass") else "fail"}">'
                   f'{"PASS" if c.get("pass") else "FAIL"}</span></td></tr>' for name, c in checks)
    cands = "".join(
        f'<tr><td><code>{e(c["name"])}</code> <span class="muted">{e(c["role"])}</span></td>'
        f'<td class="num">{c["accuracy"]:.3f} [{c["accuracy_ci95"][0]:.3f}, {c["accuracy_ci95"][1]:.3f}]</td>'
        f'<td class="num">{_per_1k(c.get("cost_per_1k"))}</td>'
        f'<td class="num">{c.get("latency_p95_ms", 0):.1f}</td></tr>' for c in ch["candidates"])
    reasons = "".join(f"<li>{e(r)}</li>" for r in dec.get("reasons", []))
    head = (f'swap <code>{e(dec["slot"])}</code>: <code>{e(dec["current"])}</code> → <code>{e(dec["proposed"])}</code>'
            if dec["decision"] == "swap" else
            f'keep <code>{e(dec["current"])}</code> for <code>{e(dec["slot"])}</code>')
    return (f'<h2 id="decision">Decision: <span class="badge {e(dec["decision"])}">{e(dec["decision"].upper())}</span> '
            f'{head}</h2><ul>{reasons}</ul><div class="cards"><div>{_chart(ch["candidates"])}</div><div>'
            f'<table id="decision-table"><thead><tr><th>check</th><th>result</th></tr></thead><tbody>{rows}</tbody>'
            '</table><table><thead><tr><th>candidate</th><th class="num">accuracy [95% CI]</th>'
            f'<th class="num">$ / 1k requests</th><th class="num">p95 ms</th></tr></thead><tbody>{cands}</tbody>'
            '</table></div></div>')
