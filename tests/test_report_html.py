"""report.html: written by every run, made on demand with a comparison, and opened in a real headless
Chromium (Debian's `chromium`, driven by Playwright as the Argilla browser test does)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from support import eval_source, make_project, run_cli

from goldgate.engine.results import build_summary, write_run
from goldgate.report.html import build_html, write_html

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _open(path: Path, user_data: Path, actions: Any) -> list[str]:
    """Open `path` in a fresh Chromium profile, run `actions(page)`, return the console errors."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(str(user_data), executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                                    headless=True, viewport={"width": 1400, "height": 1000})
        try:
            page = ctx.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("request", lambda r: errors.append(f"network request: {r.url}")
                    if not r.url.startswith(("file:", "data:")) else None)
            page.goto(path.as_uri())
            page.wait_for_selector("body[data-ready='1']", timeout=30_000)
            actions(page)
        finally:
            ctx.close()
    return errors


@pytest.mark.slow
def test_every_run_writes_a_report_that_renders_and_filters_in_chromium(tmp_path: Path, sim_env) -> None:
    proj = make_project(tmp_path)
    (proj / "evals" / "test_evals.py").write_text(eval_source(min_pass_rate=0.5))
    head, base = proj / "head", proj / "base"  # (the project is the tmp dir itself)
    assert run_cli("run", "--out", str(head), "-q", cwd=proj).returncode in (0, 1)
    assert (head / "report.html").is_file()  # every run, next to summary.json
    assert run_cli("run", "--out", str(base), "--candidate", "router=sim-weak", "-q", cwd=proj).returncode in (0, 1)
    res = run_cli("report", str(head), "--html", "--compare", str(base), cwd=proj)
    assert res.returncode in (0, 1), res.stderr
    page_path = head / "report.html"
    assert res.stdout.strip() == f"report: {page_path}"
    text = page_path.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']https?://""", text)  # nothing from a CDN
    seen: dict[str, Any] = {}

    def check(page: Any) -> None:
        page.screenshot(path=str(tmp_path / "report.png"))
        seen["suites"] = page.locator("#suite-table tbody tr").count()
        seen["interval"] = page.locator("#suite-table svg.interval").count()
        seen["heat"] = page.locator("table.confusion td").count()
        seen["classes"] = page.locator("table.per-class tbody tr").count()
        seen["compare"] = page.locator("#compare-table tbody tr").count()
        page.locator("details summary").first.click()
        seen["flips"] = page.locator("table.flips tbody tr").count()
        seen["rows"] = page.locator("#cases .case").count()
        page.locator("#cases .case").first.click()
        seen["inputs"] = page.locator("#cases .detail").first.inner_text()
        page.select_option("#f-status", "failed")
        seen["failed"] = page.locator("#cases .case .badge").all_inner_texts()
        page.select_option("#f-status", "")
        page.fill("#f-text", "c-0007")
        page.wait_for_function("document.querySelectorAll('#cases .case').length === 1")
        page.fill("#f-text", "")
        page.locator("table.per-class th", has_text="support").click()

    errors = _open(page_path, tmp_path / ".profile", check)
    assert errors == []
    assert seen["suites"] == 1 and seen["interval"] == 1
    assert seen["heat"] >= 4 and seen["classes"] == 10
    assert seen["compare"] == 1 and seen["flips"] > 0
    assert seen["rows"] == 200
    assert "test question 0: something about my card" in seen["inputs"]
    assert seen["failed"] and set(seen["failed"]) == {"failed"}
    if os.environ.get("GOLDGATE_SCREENSHOT_TO"):
        shutil.copy(tmp_path / "report.png", os.environ["GOLDGATE_SCREENSHOT_TO"])


def _big_run(run_dir: Path, n: int) -> None:
    labels = [f"intent_{i:02d}" for i in range(60)]
    records = []
    for i in range(n):
        exp = labels[i % 60]
        got = exp if i % 7 else labels[(i * 13) % 60]
        records.append({"suite": "test_intent", "case_id": f"c-{i:05d}", "repeat": 0,
                        "status": "passed" if got == exp else "failed", "nodeid": f"evals/t.py::test_intent[c-{i:05d}]",
                        "expected": {"label": exp}, "output": {"label": got, "text": got},
                        "message": "" if got == exp else f"assert '{got}' == '{exp}'",
                        "cost_usd": 2e-5, "latency_s": 0.2 + (i % 50) / 100, "cached": False})
    meta = {"test_intent": {"name": "test_intent", "nodeid": "evals/t.py::test_intent", "dataset": "big",
                            "gates": {"min_pass_rate": 0.8}}}
    summary = build_summary(meta, records, run_id="big", call_stats={"llm_calls": n}, wall_s=60.0)
    write_run(run_dir, summary, records)


@pytest.mark.slow
def test_a_ten_thousand_case_page_stays_small_and_renders_rows_lazily(tmp_path: Path) -> None:
    run = tmp_path / "big"
    _big_run(run, 10_000)
    path = write_html(run)
    assert path.stat().st_size < 10_000_000
    seen: dict[str, Any] = {}

    def check(page: Any) -> None:
        seen["rows"] = page.locator("#cases .case").count()
        seen["count"] = page.locator("#case-count").inner_text()
        seen["heat_cols"] = page.locator("table.confusion thead th").count()

    assert _open(path, tmp_path / "profile", check) == []
    assert seen["rows"] == 200 and seen["count"].startswith("10000 of 10000 cases")
    assert seen["heat_cols"] == 1 + 20  # top confusions first: 20 of the 60 classes


def test_script_data_cannot_close_the_script_element(tmp_path: Path) -> None:
    run = tmp_path / "r"
    _big_run(run, 3)
    cases = [json.loads(x) for x in (run / "cases.jsonl").read_text().splitlines()]
    cases[0]["output"] = {"label": None, "text": "</script><script>alert(1)</script>"}
    (run / "cases.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cases))
    page = build_html(run)
    assert page.count("</script>") == 2  # the data block's and the code block's own
