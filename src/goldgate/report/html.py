"""`report.html`: one self-contained page per run (inline CSS, JS and SVG) that reviewers would rather
look at than logs: suites with their intervals drawn, gates, judge calibration, label confusions, and a
case browser. Built from the run's files only (plus the goldens, for the cases' inputs)."""

from __future__ import annotations

import base64
import html
import json
import mimetypes
import os
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from goldgate.config import DEFAULT_SPLITS
from goldgate.engine.results import load_cases, load_run
from goldgate.engine.stats import percentile
from goldgate.errors import GoldenFormatError
from goldgate.files import write_atomic
from goldgate.goldens.records import GoldenSet, load_goldens, resolve_golden_path
from goldgate.report.assets import CSS, JS
from goldgate.report.html_sections import compare_section, decision_section, interval_svg

__all__ = ["REPORT_FILE", "build_html", "case_inputs", "write_html"]

REPORT_FILE = "report.html"
TEXT_CAP = 2000  # characters of one output / message kept in the page
IMAGE_BUDGET = 3_000_000  # bytes of inline images per page; later images are shown as their path
TOP_CLASSES = 20  # a confusion matrix this wide stays readable; the rest are in the per-class table

e = html.escape


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _money(x: float) -> str:
    return f"${x:.4f}" if x < 1 else f"${x:,.2f}"


def _mark(ok: bool) -> str:
    return '<b style="color:var(--ok)">✓</b>' if ok else '<b style="color:var(--bad)">✗</b>'


def _badge(status: str) -> str:
    return f'<span class="badge {e(status)}">{e(status.upper())}</span>'


def case_inputs(summary: dict[str, Any], *, goldens_dir: Path, root: Path,
                load: Callable[[str], GoldenSet] | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """{dataset: {case id: inputs}} for the run's suites; a golden set that no longer reads is skipped
    (the report still shows expected and output). `load` reuses goldens already in memory (the engine's)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for s in summary["suites"]:
        name = s.get("dataset")
        if not name or name in out:
            continue
        try:
            golden = load(name) if load is not None else load_goldens(
                resolve_golden_path(name, goldens_dir=goldens_dir, root=root), splits=_all_splits(s))
        except GoldenFormatError:
            continue
        out[name] = {c.id: c.inputs for c in golden}
    return out


def _all_splits(suite: dict[str, Any]) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*DEFAULT_SPLITS, *(suite.get("split") or [])]))


class _Images:
    """Image inputs inlined as data URLs until the page's image budget is spent."""

    def __init__(self, root: Path):
        self.root = root
        self.left = IMAGE_BUDGET

    def __call__(self, value: Any) -> Any:
        if not isinstance(value, str) or not value.lower().endswith((".png", ".jpg", ".jpeg", ".gif", ".webp")):
            return value
        path = Path(value) if os.path.isabs(value) else self.root / value
        try:
            data = path.read_bytes()
        except OSError:
            return value
        if len(data) > self.left:
            return value
        self.left -= len(data)
        mime = mimetypes.guess_type(path.name)[0] or "image/png"
        return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _cap(value: Any) -> Any:
    return value[:TEXT_CAP] + "…" if isinstance(value, str) and len(value) > TEXT_CAP else value


def _label(value: Any) -> str | None:
    return value.get("label") if isinstance(value, dict) and isinstance(value.get("label"), str) else None


def _browser_data(summary: dict[str, Any], records: list[dict[str, Any]],
                  inputs: dict[str, dict[str, dict[str, Any]]], root: Path) -> dict[str, Any]:
    """The cases as compact JSON for the browser (short keys: the page stays small at 10,000 cases)."""
    names = [s["name"] for s in summary["suites"]]
    index = {n: i for i, n in enumerate(names)}
    dataset = {s["name"]: s.get("dataset") for s in summary["suites"]}
    images = _Images(root)
    cases, labels = [], set()
    for r in records:
        c: dict[str, Any] = {"s": index.get(r["suite"], 0), "id": r["case_id"], "st": r["status"],
                             "e": r.get("expected"), "o": _cap((r.get("output") or {}).get("text"))}
        if r.get("repeat"):
            c["r"] = r["repeat"]
        el, ol = _label(r.get("expected")), _label(r.get("output"))
        if el is not None:
            c["el"] = el
            labels.add(el)
        if ol is not None:
            c["ol"] = ol
            labels.add(ol)
        if r.get("message"):
            c["m"] = _cap(r["message"])
        if r.get("cost_usd") is not None:
            c["c"] = round(float(r["cost_usd"]), 8)
        if r.get("latency_s") is not None:
            c["l"] = round(float(r["latency_s"]), 4)
        if r.get("cached"):
            c["k"] = 1
        if r.get("judges"):
            c["j"] = [{k: _cap(v.get(k)) for k in ("judge", "verdict", "rationale", "calibrated")} for v in r["judges"]]
        if r.get("nodeid"):
            c["n"] = r["nodeid"]
        found = inputs.get(dataset.get(r["suite"]) or "", {}).get(r["case_id"])
        if found:
            c["i"] = {k: _cap(images(v)) for k, v in found.items()}
        cases.append(c)
    return {"suites": names, "labels": sorted(labels), "cases": cases}


def _script_json(data: Any) -> str:
    """JSON safe inside <script>: no `</script>` or `<!--` can end or bend the element."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def _latencies(records: list[dict[str, Any]]) -> list[float]:
    fresh = [r["latency_s"] for r in records if r.get("latency_s") and not r.get("cached")]
    return fresh or [r["latency_s"] for r in records if r.get("latency_s")]


def _suites_section(summary: dict[str, Any], by_suite: dict[str, list[dict[str, Any]]]) -> str:
    rows = []
    for s in summary["suites"]:
        lat = _latencies(by_suite.get(s["name"], []))
        p = [1000 * percentile(lat, q) for q in (50, 90, 95, 99)]
        lo, hi = s["pass_rate_ci"]
        floor = (s.get("gates") or {}).get("min_pass_rate")
        checks = "<br>".join(
            f'{_mark(bool(c.get("ok")))} {e(str(c.get("name")))}: {e(_num(c.get("value")))} '
            f'(limit {e(_num(c.get("threshold")))})' for c in s["gate"].get("checks", []))
        rows.append(
            f'<tr><td><code>{e(s.get("nodeid") or s["name"])}</code><div class="muted">{e(str(s.get("candidate") or ""))}'
            f'{" · " + e(str(s.get("dataset"))) if s.get("dataset") else ""}</div></td>'
            f'<td class="num" data-v="{s["n"]}">{s["n"]}</td><td class="num">{s["passed"]}</td>'
            f'<td class="num">{s["failed"]}</td><td class="num">{s["errors"]}</td>'
            f'<td class="num" data-v="{s["pass_rate"]:.6f}">{_pct(s["pass_rate"])} '
            f'<span class="muted">[{100 * lo:.1f}, {100 * hi:.1f}]</span><br>'
            f'{interval_svg(s["pass_rate"], lo, hi, floor)}</td>'
            f'<td class="num" data-v="{s["cost_usd"]}">{_money(s["cost_usd"])}<div class="muted">'
            f'${1000 * s["cost_per_case"]:.4f} / 1k cases</div></td>'
            f'<td class="num" data-v="{p[2]:.3f}">{p[0]:.0f} / {p[1]:.0f} / {p[2]:.0f} / {p[3]:.0f}</td>'
            f'<td class="num">{s["cache_hits"]}/{s["n"]}</td>'
            f'<td>{_badge(s["gate"]["status"])}<div class="muted">{checks}</div></td></tr>')
    return ('<h2 id="suites">Suites</h2><table class="sortable" id="suite-table"><thead><tr><th>suite</th>'
            '<th class="num">n</th><th class="num">passed</th><th class="num">failed</th><th class="num">errors</th>'
            '<th class="num">pass rate [95% CI]</th><th class="num">cost</th>'
            '<th class="num">latency p50 / p90 / p95 / p99 ms</th><th class="num">cached</th><th>gate</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _num(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def _errors_section(by_suite: dict[str, list[dict[str, Any]]]) -> str:
    parts = []
    for name, records in by_suite.items():
        msgs = Counter((r.get("message") or r.get("error") or "error").splitlines()[0][:300]
                       for r in records if r["status"] == "error")
        if msgs:
            items = "".join(f'<tr><td class="num">{n}</td><td><code>{e(m)}</code></td></tr>' for m, n in msgs.most_common(5))
            parts.append(f'<h3>{e(name)}: {sum(msgs.values())} error(s)</h3><table><thead><tr><th class="num">cases</th>'
                         f'<th>message</th></tr></thead><tbody>{items}</tbody></table>')
    return '<h2 id="errors">Errors</h2>' + "".join(parts) if parts else ""


def _judges_section(summary: dict[str, Any]) -> str:
    gates = summary.get("judge_gates") or []
    if not gates:
        return ""
    rows = []
    for g in gates:
        k, ci = g.get("kappa"), g.get("kappa_ci")
        drawn = interval_svg(max(k, 0.0), max(ci[0], 0.0), max(ci[1], 0.0), None) if k is not None and ci else ""
        rows.append(f'<tr><td>{e(g["judge"])}</td><td>{_badge(g["status"])}</td>'
                    f'<td class="num">{"—" if k is None else f"{k:.2f}"}'
                    f'{"" if not ci else f" [{ci[0]:.2f}, {ci[1]:.2f}]"}<br>{drawn}</td>'
                    f'<td class="num">{g.get("n", 0)}</td><td>{"<br>".join(e(r) for r in g.get("reasons", []))}</td></tr>')
    return ('<h2 id="judges">Judge calibration</h2><table><thead><tr><th>judge</th><th>gate</th>'
            '<th class="num">κ [95% CI] (0–1)</th><th class="num">N</th><th>against the floors</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _labels_section(summary: dict[str, Any], by_suite: dict[str, list[dict[str, Any]]]) -> str:
    nodeids = {s["name"]: s.get("nodeid") or s["name"] for s in summary["suites"]}
    parts = []
    for name, records in by_suite.items():
        pairs = [(_label(r.get("expected")), _label(r.get("output")) or ("(error)" if r["status"] == "error" else "(none)"))
                 for r in records if _label(r.get("expected")) is not None and r["status"] != "skipped"]
        if len(pairs) < 2:
            continue
        parts.append(f'<h3><code>{e(nodeids.get(name, name))}</code></h3>' + _confusion(pairs) + _per_class(pairs))
    return '<h2 id="labels">Labels</h2>' + "".join(parts) if parts else ""


def _confusion(pairs: list[tuple[Any, str]]) -> str:
    cells = Counter(pairs)
    wrong = Counter()
    for (exp, got), n in cells.items():
        if exp != got:
            wrong[exp] += n
            wrong[got] += n
    support = Counter(exp for exp, _ in pairs)
    classes = sorted(set(support) | {got for _, got in pairs}, key=lambda c: (-wrong[c], -support[c], c))
    shown = classes[:TOP_CLASSES]
    top = [(k, n) for k, n in cells.most_common() if k[0] != k[1]][:10]
    head = "".join(f'<th class="rot">{e(c)}</th>' for c in shown)
    body = []
    for exp in shown:
        total = sum(n for (x, _), n in cells.items() if x == exp) or 1
        tds = []
        for got in shown:
            n = cells.get((exp, got), 0)
            share = n / total
            color = f"rgba(26,127,55,{0.15 + 0.85 * share:.2f})" if exp == got else f"rgba(207,34,46,{min(1.0, 0.1 + 1.5 * share):.2f})"
            tds.append(f'<td title="expected {e(exp)}, output {e(got)}: {n}" style="background:{color if n else "#fff"}">'
                       f'{n or ""}</td>')
        body.append(f'<tr><th class="row">{e(exp)}</th>{"".join(tds)}</tr>')
    note = (f'<p class="muted">The {len(shown)} classes with the most confusions of {len(classes)}; '
            'rows are expected, columns the output; colour is the row share.</p>')
    tops = "".join(f'<tr><td>{e(a)}</td><td>{e(b)}</td><td class="num">{n}</td></tr>' for (a, b), n in top)
    return (f'<div class="cards"><div><table class="heat confusion"><thead><tr><th></th>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>{note}</div>'
            '<div><h3>Top confusions</h3><table><thead><tr><th>expected</th><th>output</th><th class="num">cases</th>'
            f'</tr></thead><tbody>{tops}</tbody></table></div></div>')


def _per_class(pairs: list[tuple[Any, str]]) -> str:
    tp: Counter[str] = Counter()
    predicted: Counter[str] = Counter()
    support: Counter[str] = Counter()
    for exp, got in pairs:
        support[exp] += 1
        predicted[got] += 1
        tp[exp] += exp == got
    rows = []
    for c in sorted(support, key=lambda c: -support[c]):
        prec = tp[c] / predicted[c] if predicted[c] else 0.0
        rec = tp[c] / support[c]
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        rows.append(f'<tr><td>{e(c)}</td><td class="num" data-v="{prec:.6f}">{prec:.3f}</td>'
                    f'<td class="num" data-v="{rec:.6f}">{rec:.3f}</td><td class="num" data-v="{f1:.6f}">{f1:.3f}</td>'
                    f'<td class="num">{support[c]}</td></tr>')
    return ('<table class="sortable per-class"><thead><tr><th>class</th><th class="num">precision</th>'
            '<th class="num">recall</th><th class="num">F1</th><th class="num">support</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _browser_section() -> str:
    return ('<h2 id="browser">Cases</h2><div id="filters"><select id="f-suite"><option value="">all suites</option>'
            '</select><select id="f-status"><option value="">pass, fail and error</option><option value="passed">'
            'passed</option><option value="failed">failed</option><option value="error">error</option>'
            '<option value="skipped">skipped</option></select><select id="f-label"><option value="">any label'
            '</option></select><input id="f-text" type="search" placeholder="search ids, inputs, outputs, messages">'
            '<span id="case-count" class="muted"></span></div><div id="cases"></div>'
            '<div id="more" class="muted" style="padding:10px">…</div>')


def build_html(run_dir: str | os.PathLike[str], *, inputs: dict[str, dict[str, dict[str, Any]]] | None = None,
               root: Path | None = None, compare: Any = None, decision: dict[str, Any] | None = None,
               summary: dict[str, Any] | None = None, records: list[dict[str, Any]] | None = None) -> str:
    """The page for one run; `compare` (a decide.compare.Comparison) and `decision` add their sections.
    A caller that holds the run in memory (the plugin) passes `summary` and `records` instead of a reread."""
    summary = summary if summary is not None else load_run(run_dir)
    records = records if records is not None else load_cases(run_dir)
    by_suite: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_suite[r["suite"]].append(r)
    t = summary["totals"]
    cards = "".join(f'<div class="card"><span class="muted">{e(k)}</span><b>{v}</b></div>' for k, v in [
        ("cases", f'{t["cases"]:,}'), ("passed", f'{t["passed"]:,}'), ("failed", f'{t["failed"]:,}'),
        ("errors", f'{t["errors"]:,}'), ("cost", _money(t["cost_usd"])), ("LLM calls", f'{t["llm_calls"]:,}'),
        ("cache hits", f'{t["cache_hits"]:,}'), ("throttled", f'{t.get("throttled", 0):,}'),
        ("wall time", f'{t["wall_s"]:.1f} s')])
    data = _browser_data(summary, records, inputs or {}, root or Path.cwd())
    body = "".join([
        decision_section(decision) if decision else "",
        compare_section(compare) if compare is not None else "",
        _suites_section(summary, by_suite), _errors_section(by_suite), _judges_section(summary),
        _labels_section(summary, by_suite), _browser_section()])
    title = f'goldgate run {summary["run_id"]}'
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width,initial-scale=1"><title>{e(title)}</title><style>{CSS}</style></head>'
            f'<body><header><h1>{e(title)} {_badge(summary["status"])}</h1><div class="muted">'
            f'created {e(str(summary.get("created", "")))} · goldgate {e(str(summary.get("goldgate_version", "")))}'
            f'</div><div class="cards">{cards}</div></header><main>{body}</main>'
            f'<script type="application/json" id="goldgate-data">{_script_json(data)}</script>'
            f'<script>{JS}</script></body></html>\n')


def write_html(run_dir: str | os.PathLike[str], out: Path | None = None, **kwargs: Any) -> Path:
    """Write the page (atomically) to `out`, by default `report.html` next to summary.json."""
    path = out or Path(run_dir) / REPORT_FILE
    write_atomic(path, build_html(run_dir, **kwargs))
    return path
