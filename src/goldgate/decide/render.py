"""The decision document on disk: decision.json, a one-screen decision.md, and the accuracy-vs-cost chart."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from goldgate.decide.splitlog import MAX_DECISIONS
from goldgate.files import check_output_dir, write_atomic

__all__ = ["money", "plot_candidates", "render_report", "write_decision"]


def break_even_text(volume: float) -> str:
    """A break-even volume in words: an infinite one means the student saves nothing per request."""
    return f"{volume:,.0f} requests" if math.isfinite(volume) else "never (the student saves nothing per request)"


def money(x: float) -> str:
    return f"${x:.6f}" if x < 0.01 else f"${x:,.4f}"


def plot_candidates(candidates: list[dict[str, Any]], path: Path) -> None:
    """Accuracy (Wilson 95% bars) against cost per 1k requests, log scale, one point per candidate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for cand in candidates:
        cost = max(cand["cost_per_1k"] or 0.0, 1e-6)
        lo, hi = cand["accuracy_ci95"]
        acc = cand["accuracy"]
        ax.errorbar([cost], [acc], yerr=[[acc - lo], [hi - acc]], fmt="o", capsize=4,
                    color="tab:blue" if cand["role"] == "current" else "tab:orange")
        ax.annotate(f"{cand['name']}\n{acc:.3f} @ ${cost:.4f}/1k", (cost, acc), textcoords="offset points",
                    xytext=(8, -4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("cost per 1k requests (USD, log scale)")
    ax.set_ylabel("accuracy on the test split")
    ax.set_title("accuracy vs cost per 1k requests")
    ax.grid(True, which="both", alpha=0.3)
    xs = [max(c["cost_per_1k"] or 0.0, 1e-6) for c in candidates]
    ax.set_xlim(min(xs) / 3, max(xs) * 8)
    fig.tight_layout()
    fig.savefig(path)
    fig.savefig(path.with_suffix(".svg"))
    plt.close(fig)


def _mark(ok: bool) -> str:
    return "✅" if ok else "❌"


def _side_errors(name: str, e: dict[str, Any]) -> str:
    return (f"{name}: {e['transport']} transport ({100 * e['transport_rate']:.1f}%) / {e['output']} output "
            f"({100 * e['output_rate']:.1f}%) of {e['n']}")


def render_report(dec: dict[str, Any]) -> str:
    """A one-screen markdown report: verdict, candidates, checks, cost formula, evidence."""
    ch = dec["checks"]
    b, c, d, err = ch["b_noninferiority"], ch["c_cost"], ch["d_guards"], ch["errors"]
    head = (f"**Swap** `{dec['slot']}`: `{dec['current']}` → `{dec['proposed']}`" if dec["decision"] == "swap"
            else f"**Keep** `{dec['current']}` for `{dec['slot']}` (candidate `{dec['proposed']}` not adopted)")
    lines = [f"# goldgate decide: {dec['decision'].upper()}", "", head, ""]
    lines += [f"- {r}" for r in dec["reasons"]]
    lines += ["", "| candidate | accuracy [95% CI] | $/request | $/1k req | accuracy per $1k | $/correct | p95 ms |",
              "|---|---|---|---|---|---|---|"]
    for p in ch["candidates"]:
        lo, hi = p["accuracy_ci95"]
        cost = p["cost_per_request"]
        apd = p["accuracy_per_usd_1k"]
        lines.append(
            f"| `{p['name']}` ({p['role']}) | {p['accuracy']:.3f} [{lo:.3f}, {hi:.3f}] | "
            f"{'—' if cost is None else money(cost)} | {'—' if cost is None else f'${cost * 1000:.4f}'} | "
            f"{'—' if apd is None else f'{apd:,.1f}'} | "
            f"{'—' if p['cost_per_correct'] is None else money(p['cost_per_correct'])} | "
            f"{p['latency_p95_ms']:.1f} |")
    lines += ["", "| check | result | numbers |", "|---|---|---|",
              (f"| errors | {_mark(err['pass'])} | {_side_errors('LLM', err['llm'])}; "
               f"{_side_errors('student', err['student'])}; limit {100 * err['max_error_rate']:.1f}% transport "
               f"per side; {err['excluded_cases']} case(s) left out of the pairing, output errors counted wrong |"),
              (f"| (a) test split | {_mark(ch['a_test_split']['pass'])} | N = {ch['a_test_split']['n']}, sources "
              f"{ch['a_test_split']['test_sources']}, overlaps {ch['a_test_split'].get('overlaps', 0)} |"),
              (f"| (b) non-inferiority | {_mark(b['pass'])} | Δ = {b['difference']:+.3f}, lower bound "
              f"{b['lower_bound']:+.3f} vs −δ = {-b['delta']:+.3f}; discordant {b['student_better']} / "
              f"{b['llm_better']} (student / LLM better); {b['method']} |"),
              (f"| test split use | {_mark(b['decision_number'] <= MAX_DECISIONS)} | decision {b['decision_number']} "
               f"on this split (log `{b['split_log']}`): one-sided α = {b['alpha']:.4f} = 0.05 · 6 / (π² k²), so "
               f"all decisions on the split together risk a false swap ≤ 5 %; at most {MAX_DECISIONS} |")]
    if "ratio" in c:
        lines.append(f"| (c) cost | {_mark(c['pass'])} | ratio {c['ratio']:.2f}× (limit {c['max_ratio']}×), "
                     f"break-even {break_even_text(c['break_even_volume'])} vs projected {c['projected_volume']:,.0f}; "
                     f"monthly saving ${c['monthly_saving_usd']:,.2f}; {c['student']['hosting']} hosting |")
    else:
        lines.append(f"| (c) cost | {_mark(False)} | no cost assumptions configured |")
    g = d["class_recall"]
    lines += [(f"| (d) per-class recall | {_mark(g['pass'])} | {g['tested_classes']} classes tested "
              f"(≥ {g['min_cases']} cases), failing: {', '.join(g['failing']) or 'none'} |"),
              (f"| (d) p95 latency | {_mark(d['latency_pass'])} | {d['latency_p95_ms']:.1f} ms "
              f"(SLO {d['latency_slo_ms'] or 'not set'}) |"), ""]
    if "student" in c:
        s = c["student"]
        lines += [("**Cost model.** LLM: mean per-call cost over the run = "
                  f"{money(c['llm']['per_request'])} ({c['llm']['price_source']}, price date "
                  f"{c['llm']['price_date']}). Student: {s['formula']} = {money(s['per_request'])} "
                  f"(one-time: training ${s['training_usd']:.4f} + labelling ${s['labelling_usd']:.2f} + "
                  f"LLM labels ${s['teacher_usd']:.4f}). Assumes {s['assumption']}."), ""]
    worst = sorted(g["classes"], key=lambda r: r["difference"])[:5]
    if worst:
        lines.append("Largest per-class recall changes (student − LLM): " + ", ".join(
            f"`{r['label']}` {r['difference']:+.2f} (p = {r['p_value']:.2f})" for r in worst) + ".")
        lines.append("")
    ev = dec["evidence"]
    lines += ["**Evidence.** " + "; ".join(f"{k}: `{v}`" for k, v in ev.items() if not isinstance(v, dict)),
              "", f"![accuracy vs cost]({dec['chart']})", ""]
    return "\n".join(lines)


def write_decision(out_dir: Path, dec: dict[str, Any]) -> Path:
    """decision.json, decision.md and the chart (PNG + SVG), side by side in `out_dir`."""
    check_output_dir(out_dir)
    plot_candidates(dec["checks"]["candidates"], out_dir / dec["chart"])
    write_atomic(out_dir / dec["report"], render_report(dec))
    path = out_dir / "decision.json"
    write_atomic(path, json.dumps(_finite(dec), indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    return path


def _finite(x: Any) -> Any:
    """JSON has no infinity: an unreachable break-even is written as null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x
