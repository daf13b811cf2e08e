"""Bad input, as a new user gives it: every one ends in one clear line that names the file or key,
a non-zero exit, no traceback, and no file changed (issue 22). Each case runs the CLI as a
subprocess against a fresh project; none needs a live model endpoint."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support import eval_source, golden_records, make_project, run_cli, write_jsonl
from test_compare import make_run

GOLDEN = "evals/goldens/tiny.jsonl"
ARGILLA = '\n[tool.goldgate.argilla]\nurl = "http://127.0.0.1:9"\n'
JUDGE = '\n[tool.goldgate.judges.j]\nmodel = "openai/sim-judge"\nrubric = "rubric.md"\n'


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


def _append(rel: str, text: str) -> Callable[[Path], None]:
    def go(root: Path) -> None:
        p = root / rel
        p.write_text(p.read_text(encoding="utf-8") + text, encoding="utf-8")
    return go


def _replace(rel: str, old: str, new: str, count: int = -1) -> Callable[[Path], None]:
    def go(root: Path) -> None:
        p = root / rel
        text = p.read_text(encoding="utf-8")
        assert old in text
        p.write_text(text.replace(old, new, count), encoding="utf-8")
    return go


def _write(rel: str, data: str | bytes) -> Callable[[Path], None]:
    def go(root: Path) -> None:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return go


def _eval(extra: str = "", min_pass_rate: float = 0.5) -> Callable[[Path], None]:
    return _write("evals/test_evals.py", eval_source(min_pass_rate=min_pass_rate, extra=extra))


def _golden(edit: Callable[[list[dict]], None]) -> Callable[[Path], None]:
    def go(root: Path) -> None:
        recs = golden_records()
        edit(recs)
        write_jsonl(root / GOLDEN, recs)
    return go


def _non_utf8_golden(root: Path) -> None:
    lines = (root / GOLDEN).read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b"question", b"qu\xe9stion")  # Latin-1 é
    (root / GOLDEN).write_bytes(b"\n".join(lines))


def _rename_input(recs: list[dict]) -> None:
    recs[3]["inputs"] = {"txt": recs[3]["inputs"]["text"]}


def _unknown_label(recs: list[dict]) -> None:
    recs[7]["expected"]["label"] = "card_swallowed_by_atm"


def _no_provenance(recs: list[dict]) -> None:
    del recs[4]["provenance"]


def _two_runs(root: Path) -> None:
    make_run(root / "runs" / "base", {"a": True, "b": True}, suite="test_other_project")
    make_run(root / "runs" / "head", {"a": True, "b": False}, suite="test_intent")


def _fake_missing(module: str) -> Callable[[Path], None]:
    return _write(f"fake/{module}/__init__.py",
                  f"raise ModuleNotFoundError({f'No module named {module!r}'!r}, name={module!r})\n")


def _labels_file(root: Path) -> None:
    p = root / "pyproject.toml"
    p.write_text(re.sub(r"^labels = \[.*\]$", 'labels = "labels.json"', p.read_text(encoding="utf-8"), flags=re.MULTILINE),
                 encoding="utf-8")


def _key_env(root: Path) -> None:
    _replace("pyproject.toml", 'api_base = "${GOLDGATE_SIM_URL}"\nparams',
             'api_base = "${GOLDGATE_SIM_URL}"\napi_key_env = "GG_TEST_UNSET_KEY"\nparams')(root)


@dataclass
class Bad:
    id: str
    setup: list[Callable[[Path], None]]
    args: list[str]
    says: str  # the one line must contain this (it names the file, line or key)
    env: dict[str, str] = field(default_factory=dict)


_RUN = ["run", "--out", "out/run", "--", "-q", "-p", "no:cacheprovider"]
_CSV = "text,label\nhello,card_arrival\nbye,exchange_rate\n"

CASES = [
    # --- damage
    Bad("import-merge-unknown-split", [_write("src.csv", _CSV)],
        ["goldens", "import", "src.csv", "--out", GOLDEN, "--merge", "--input", "text=text",
         "--expected", "label=label", "--split", "tset"], "src.csv:2: unknown split 'tset'"),
    # --- crashes
    Bad("golden-non-utf8-check", [_non_utf8_golden], ["goldens", "check", GOLDEN], "tiny.jsonl:3: not UTF-8"),
    Bad("golden-non-utf8-fmt", [_non_utf8_golden], ["goldens", "fmt", GOLDEN], "tiny.jsonl:3: not UTF-8"),
    Bad("golden-non-utf8-run", [_non_utf8_golden, _eval()], _RUN, "tiny.jsonl:3: not UTF-8"),
    Bad("csv-non-utf8-import", [_write("src.csv", b"text,label\nh\xe9llo,card_arrival\n")],
        ["goldens", "import", "src.csv", "--out", "evals/goldens/new.jsonl", "--input", "text=text",
         "--split", "test"], "src.csv:2: not UTF-8"),
    Bad("fmt-no-provenance", [_golden(_no_provenance)], ["goldens", "fmt", GOLDEN],
        "tiny.jsonl:5: missing field(s): provenance"),
    Bad("eval-min-pass-rate-1.5", [_eval(min_pass_rate=1.5)], _RUN, "test_evals.py: @goldgate.eval on test_intent: min_pass_rate"),
    Bad("eval-unknown-kwarg", [_eval(extra=", min_pass=0.5")], _RUN, "@goldgate.eval on test_intent: unknown argument(s) min_pass"),
    Bad("eval-repeats-0", [_eval(extra=", repeats=0")], _RUN, "repeats must be a whole number >= 1"),
    Bad("run-out-under-file", [_eval(), _write("afile", "x")],
        ["run", "--out", "afile/run", "--", "-q"], "afile is a file, not a folder"),
    Bad("import-out-under-file", [_write("src.csv", _CSV), _write("afile", "x")],
        ["goldens", "import", "src.csv", "--out", "afile/g.jsonl", "--input", "text=text", "--split", "test"],
        "afile is a file, not a folder"),
    Bad("report-output-under-file", [_two_runs, _write("afile", "x")],
        ["report", "runs/head", "--output", "afile/report.md"], "afile is a file, not a folder"),
    Bad("missing-extra-argilla", [_fake_missing("argilla"), _append("pyproject.toml", ARGILLA)], ["argilla", "push", "tiny"],
        "pip install 'goldgate[argilla]'",
        env={"PYTHONPATH": os.pathsep.join(["fake", os.environ.get("PYTHONPATH", "")]), "ARGILLA_API_KEY": "k"}),
    # --- misleading
    Bad("pyproject-malformed", [_append("pyproject.toml", "\n[tool.goldgate.cost\n"), _eval()], _RUN,
        "pyproject.toml:27:20: invalid TOML: Expected ']' at the end of a table declaration"),
    Bad("labels-file-empty", [_write("labels.json", "[]"), _eval(), _labels_file], _RUN, "labels.json holds an empty list"),
    Bad("input-field-renamed", [_golden(_rename_input), _eval()], _RUN,
        "tiny.jsonl:4: case 'c-0003': "),
    Bad("api-base-unreachable", [_eval()], _RUN, "api_base: cannot connect to http://127.0.0.1:"),
    Bad("api-base-no-scheme", [_eval()], _RUN, "is not an http(s) URL", env={"GOLDGATE_SIM_URL": "127.0.0.1:9/v1"}),
    Bad("distill-unknown-split", [],
        ["distill", "--slot", "router", "--candidate", "s", "--goldens", "tiny", "--train-split", "tset"],
        "--train-split 'tset': unknown split"),
    # --- noisy
    Bad("api-key-unset", [_key_env, _eval()], _RUN, "environment variable GG_TEST_UNSET_KEY is not set"),
    Bad("judge-table-typo", [_append("pyproject.toml", JUDGE + 'rubirc = "x"\n'), _write("rubric.md", "ok"), _eval()],
        _RUN, "[tool.goldgate.judges.j] rubirc: Extra inputs are not permitted"),
    # --- silent
    Bad("distill-table-unknown-key", [_append("pyproject.toml", "\n[tool.goldgate.distill]\ndetla = 0.05\n"), _eval()],
        _RUN, "[tool.goldgate] distill.detla: Extra inputs are not permitted"),
    Bad("decide-negative-delta", [], ["decide", "--slot", "router", "--student", "s", "--delta", "-0.5"],
        "--delta: Input should be greater than or equal to 0"),
    Bad("labels-missing-a-golden-label", [_golden(_unknown_label), _eval()], _RUN,
        "tiny.jsonl:8: case 'c-0007' expects label 'card_swallowed_by_atm'"),
    Bad("goldens-check-empty-file", [_write(GOLDEN, "")], ["goldens", "check", GOLDEN], "tiny.jsonl: no records"),
    Bad("compare-different-projects", [_two_runs],
        ["compare", "runs/base", "runs/head", "--fail-on-worse"], "share no suite"),
]


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


@pytest.mark.slow
@pytest.mark.parametrize("bad", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_nonzero_and_changes_nothing(tmp_path: Path, bad: Bad) -> None:
    root = make_project(tmp_path, n=20)
    for step in bad.setup:
        step(root)
    before = _snapshot(root)
    env = {"GOLDGATE_SIM_URL": f"http://127.0.0.1:{_closed_port()}/v1", **bad.env}
    res = run_cli(*bad.args, cwd=root, env=env, timeout=180)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out[-3000:]
    assert "Traceback" not in out and "INTERNALERROR" not in out, out[-3000:]
    said = [line for line in out.splitlines() if bad.says in line]
    if bad.args[0] == "run" and len(said) == 2:
        # A collection error: pytest's ERRORS section and its closing `ERROR:` line, nothing per case.
        assert len(out.splitlines()) < 15, out[-3000:]
    else:
        assert len(said) == 1, f"expected one line with {bad.says!r}:\n{out[-3000:]}"
    if bad.args[0] != "run":  # pytest adds its own header around the line
        assert res.stderr.strip() == said[0] and said[0].startswith("goldgate: error: "), out[-3000:]
    assert _snapshot(root) == before


def test_import_merge_leaves_the_golden_file_byte_identical_and_loadable(tmp_path: Path) -> None:
    root = make_project(tmp_path, n=20)
    _write("src.csv", _CSV + "third,exchange_rate\n")(root)
    before = (root / GOLDEN).read_bytes()
    res = run_cli("goldens", "import", "src.csv", "--out", GOLDEN, "--merge", "--input", "text=text",
                  "--split-column", "label", cwd=root)  # every row's "split" is a label: unknown
    assert res.returncode == 2 and "src.csv:2: unknown split 'card_arrival'" in res.stderr
    assert (root / GOLDEN).read_bytes() == before
    assert run_cli("goldens", "check", GOLDEN, cwd=root).returncode == 0


def test_sim_serve_on_a_busy_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = run_cli("sim", "serve", "--no-config", "--port", str(port), cwd=tmp_path, timeout=60)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert res.stderr.strip().endswith(f"cannot listen on 127.0.0.1:{port} (address already in use); "
                                       "pick another --port, or 0 for a free one"), res.stderr


def test_eval_arguments_are_checked_without_raising_at_import() -> None:
    import goldgate as gg

    @gg.eval("tiny", model="router", min_pass_rate=1.5)
    def f() -> None: ...

    assert "min_pass_rate" in f._goldgate_spec.problem  # type: ignore[attr-defined]
    assert gg.eval("tiny", repeats=2)(f)._goldgate_spec.problem is None  # type: ignore[attr-defined]


def test_candidate_preflight_checks_each_endpoint_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from goldgate.calls import preflight
    from goldgate.errors import ConfigError

    url = f"http://127.0.0.1:{_closed_port()}/v1"
    tried: list[tuple[str, int]] = []
    real = socket.create_connection
    monkeypatch.setattr(preflight.socket, "create_connection",
                        lambda addr, timeout: (tried.append(addr), real(addr, timeout))[1])
    for _ in range(3):
        with pytest.raises(ConfigError, match=r"\[tool.goldgate.candidates.x\] api_base: cannot connect to "):
            preflight.check_endpoint("[tool.goldgate.candidates.x]", api_base=url, api_key_env=None)
    assert len(tried) == 1
    monkeypatch.delenv("GG_NOT_SET", raising=False)
    with pytest.raises(ConfigError, match="environment variable GG_NOT_SET is not set"):
        preflight.check_endpoint("[tool.goldgate.judges.j]", api_base=None, api_key_env="GG_NOT_SET")


def test_golden_loader_reads_json_line_separators_inside_strings(tmp_path: Path) -> None:
    from goldgate.goldens.records import load_goldens

    recs = golden_records(3)
    recs[1]["inputs"]["text"] = "a\u2028b\x0cc"
    path = tmp_path / "g.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
    assert load_goldens(path).get("c-0001").inputs["text"] == "a\u2028b\x0cc"


# --- the ones that need a model endpoint: a real sim ------------------------------------------


def test_calibrate_refuses_to_overwrite_a_good_record_with_a_broken_judge(tmp_path: Path) -> None:
    from test_judge import goldgate, sim_settings
    from test_judge import make_project as judge_project

    from goldgate.sim.process import SimProcess

    root = judge_project(tmp_path / "p", n_pass=40, n_fail=30, floors="min_n = 50\nmin_minority = 20")
    record = root / "evals" / "judges" / "j.calibration.json"
    with SimProcess(sim_settings()) as good:
        ok = goldgate("judge", "calibrate", "j", "--no-progress", cwd=root, url=good.url)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    before = record.read_bytes()
    for cached in root.rglob("cache.sqlite*"):
        cached.unlink()  # the good answers are cached: make the broken judge really answer
    with SimProcess(sim_settings(judge_garbage_rate=1.0)) as garbage:
        bad = goldgate("judge", "calibrate", "j", "--no-progress", cwd=root, url=garbage.url)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stdout + bad.stderr
    assert "judge 'j': the judge's answers could not be parsed (70 of 70; e.g. unparseable verdict" in bad.stderr
    assert f"{record} was not changed" in bad.stderr and bad.stdout == ""
    assert record.read_bytes() == before


def test_unknown_judge_in_a_test_body_stops_the_run_with_one_line(tmp_path: Path, sim_env) -> None:
    from test_judge import EVAL
    from test_judge import make_project as judge_project

    root = judge_project(tmp_path / "p")
    (root / "evals" / "test_judged.py").write_text(EVAL.replace('judge("j")', 'judge("jj")'), encoding="utf-8")
    res = run_cli("run", "--out", "out", "--", "-q", "-p", "no:cacheprovider", cwd=root)
    out = res.stdout + res.stderr
    assert res.returncode not in (0, 1) and "Traceback" not in out, out[-3000:]
    said = [line for line in out.splitlines() if "no judge 'jj' in [tool.goldgate.judges] (known: j)" in line]
    # pytest's frame (the stopping case's report and summary line, its stop banner, the closing
    # error), not one line per case
    assert 1 <= len(said) <= 4 and len(out.splitlines()) < 25, out[-3000:]
    assert not (root / "out" / "summary.json").exists()


@pytest.mark.slow
def test_ctrl_c_is_one_line_without_tracebacks_from_call_workers(tmp_path: Path, sim_key: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    from goldgate.sim.process import SimProcess
    from goldgate.sim.settings import SimSettings

    root = make_project(tmp_path, n=200)
    _eval()(root)
    with SimProcess(SimSettings(keys=[sim_key], latency_ms=400, port=0)) as sim:
        proc = subprocess.Popen(
            [sys.executable, "-m", "goldgate", "run", "--", "-q", "-p", "no:cacheprovider"], cwd=root,
            env={**os.environ, "GOLDGATE_SIM_URL": sim.url}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True)
        deadline = time.monotonic() + 120
        while sim.stats().get("requests", 0) < 20 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
        out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert "Traceback" not in out + err, (out + err)[-3000:]
    assert err.strip().splitlines()[-1] == "goldgate: interrupted", err[-3000:]


def test_answers_all_from_the_cache_need_no_endpoint_or_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fork PR's run has no provider key and may have no endpoint, but every answer is cached: the
    pre-flight check belongs to the calls that are really made, not to the configuration."""
    from goldgate.calls.base import CallRequest, CallResult
    from goldgate.calls.batch import RunnerSettings
    from goldgate.calls.cache import CallCache
    from goldgate.calls.runner import run_calls
    from goldgate.errors import ConfigError

    monkeypatch.delenv("GG_NOT_SET", raising=False)
    reqs = [CallRequest(model="openai/m", messages=[{"role": "user", "content": f"q{i}"}], owner="[tool.goldgate.candidates.x]",
                        api_base=f"http://127.0.0.1:{_closed_port()}/v1", api_key_env="GG_NOT_SET") for i in range(3)]
    settings = RunnerSettings(cache_path=tmp_path / "cache.sqlite", progress=False)
    with CallCache(settings.cache_path) as cache:
        cache.put_many(("app", CallResult(key=r.key, content="cached", model="m")) for r in reqs[:2])
    results, stats = run_calls(reqs[:2], settings)
    assert [results[r.key].content for r in reqs[:2]] == ["cached", "cached"] and stats.llm_calls == 0
    with pytest.raises(ConfigError, match=r"\[tool.goldgate.candidates.x\] api_key_env: environment variable GG_NOT_SET"):
        run_calls(reqs, settings)  # the third one is a real call
