"""A person validates in the real Argilla web UI (headless Debian Chromium), and the answer reaches git.

Also: answers survive `goldgate argilla down` / `up` (SQLite holds them, `up` rebuilds osmem's index).
Both restart or drive the shared stack, so they are slow tests; run tests/argilla without xdist.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest
from argilla_helpers import record, respond

pytestmark = [pytest.mark.argilla, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _run_dir(tmp_path, outputs: dict[str, str]):
    run = tmp_path / "run"
    run.mkdir()
    (run / "cases.jsonl").write_text("".join(
        json.dumps({"suite": "s", "case_id": cid, "repeat": 0, "status": "passed", "model": "openai/sim-router",
                    "output": {"label": label, "text": label}, "error": None}) + "\n"
        for cid, label in outputs.items()))
    return run


def test_label_picked_in_the_web_ui_reaches_the_golden(make_project, owner, tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    import argilla as rg

    proj = make_project()
    ticket = record(1, None, split="pool")
    ticket["inputs"]["text"] = "I was charged twice for the same card payment, please refund one of them."
    proj.write([record(0, "card"), record(2, "refund"), record(3, "transfer"), ticket])
    proj.goldgate("argilla", "push-candidates", proj.name, str(_run_dir(tmp_path, {"r0001": "card"})))
    dataset_id = json.loads(proj.lock.read_text())["dataset_id"]

    password = uuid.uuid4().hex
    person = rg.User(username=f"ui-{uuid.uuid4().hex[:6]}", password=password, role="annotator",
                     client=owner).create()
    owner.workspaces("argilla").add_user(person.username)

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(f"{owner.api_url}/sign-in")
        page.locator("input").first.fill(person.username)
        page.locator("input[type=password]").fill(password)
        page.keyboard.press("Enter")
        page.wait_for_url(lambda url: "sign-in" not in url, timeout=30_000)
        page.goto(f"{owner.api_url}/dataset/{dataset_id}/annotation-mode")
        page.get_by_text("charged twice", exact=False).wait_for(timeout=30_000)
        page.get_by_text("refund", exact=True).click()
        page.screenshot(path=str(tmp_path / "argilla-annotate.png"))
        page.get_by_role("button", name="Submit").click()
        page.get_by_text("Submitted", exact=False).first.wait_for(timeout=15_000)
        ds = owner.datasets(proj.name, workspace="argilla")
        for _ in range(50):
            answered = [r for r in ds.records() if r.id == "r0001" and r._model.responses]
            if answered:
                break
            page.wait_for_timeout(200)
        browser.close()
    if os.environ.get("GOLDGATE_SCREENSHOT_TO"):
        shutil.copy(tmp_path / "argilla-annotate.png", os.environ["GOLDGATE_SCREENSHOT_TO"])

    out = proj.goldgate("argilla", "pull", proj.name)
    assert "1 updated" in out.stdout, out.stdout
    got = proj.read()["r0001"]
    assert got["expected"] == {"label": "refund"}
    assert got["provenance"]["source"] == "llm-corrected"
    assert got["provenance"]["annotators"] == [person.username]
    assert got["provenance"]["llm"] == {"label": {"model": "openai/sim-router", "suggested": "card"}}


def test_answers_survive_down_and_up(make_project, annotators, owner, argilla):
    import argilla as rg

    proj = make_project()
    proj.write([record(i, "card" if i % 2 else "refund") for i in range(5)])
    proj.goldgate("argilla", "push", proj.name)
    ((ann, client),) = annotators(1)
    respond(owner, client, proj.name, "r0003", "submitted", "refund")

    cli = [sys.executable, "-m", "goldgate", "argilla"]
    state = ["--state-dir", str(argilla.state_dir)]
    subprocess.run([*cli, "down", *state], check=True, capture_output=True, timeout=60)
    up = subprocess.run([*cli, "up", *state], check=False, capture_output=True, text=True, timeout=300)
    assert up.returncode == 0, up.stderr

    fresh = rg.Argilla(api_url=argilla.url, api_key=argilla.api_key)
    ds = fresh.datasets(proj.name, workspace="argilla")
    submitted = rg.Query(filter=rg.Filter([("response.status", "==", "submitted")]))
    found = [(r.id, [(x.value, str(x.user_id)) for x in r.responses]) for r in ds.records(query=submitted)]
    assert found == [("r0003", [("refund", str(ann.id))])]
    assert [r.id for r in ds.records(query=rg.Query(query="number 3"))][:1] == ["r0003"]
    assert proj.goldgate("argilla", "pull", proj.name).returncode == 0
    assert proj.read()["r0003"]["expected"] == {"label": "refund"}
