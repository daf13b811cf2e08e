"""`goldgate demo`: the whole loop on the embedded default — no API key, no Argilla, no GitHub.

It starts `goldgate sim` (an offline stand-in for a hosted LLM: its numbers are simulator
numbers, never model results), runs the project's evals against it, and prints the report.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the project's evals against the offline simulator and report")
    p.add_argument("--out", type=Path, help="run directory (default: a new one under the runs folder)")
    p.set_defaults(func=_demo)


def sim_settings(config: Any) -> Any:
    """The project's `[tool.goldgate.sim]` table with key paths made absolute and an ephemeral port."""
    from goldgate.sim.settings import SimSettings

    table = dict(config.sim)
    table["keys"] = [str(config.path(k)) for k in table.get("keys", [])]
    table["port"] = 0
    return SimSettings.model_validate(table)


def _step(title: str) -> None:
    print(f"\n\033[1m==> {title}\033[0m" if sys.stdout.isatty() else f"\n==> {title}", flush=True)


def _goldgate(*args: str, env: dict[str, str], cwd: Path) -> int:
    return subprocess.call([sys.executable, "-m", "goldgate", *args], cwd=cwd, env=env)


STUDENTS = {
    "student-tfidf": "TF-IDF + linear SVM on the human-labelled train split",
    "student-encoder": "MiniLM encoder student (a real pretrained transformer, frozen, ONNX Runtime) on 1k human "
                       "labels + 4k labelled by the prompted LLM",
}
ENCODER_NEEDS = ("torch", "transformers", "onnx", "onnxruntime")


def _students(cfg: Any) -> list[tuple[str, str]]:
    """The demo's students: the encoder too when the distill extra is installed (`make demo` installs
    it); otherwise one line says what is skipped and why, and the demo goes on with TF-IDF."""
    import importlib.util

    names = [n for n in STUDENTS if n in cfg.candidates]
    missing = [m for m in ENCODER_NEEDS if importlib.util.find_spec(m) is None]
    if "student-encoder" in names and missing:
        print(f"student-encoder skipped: needs {', '.join(missing)} (pip install 'goldgate[distill]')")
        names.remove("student-encoder")
    return [(n, STUDENTS[n]) for n in names]


def _demo(args: argparse.Namespace) -> int:
    from goldgate.cli.run import OFFLINE_ENV, pytest_command
    from goldgate.config import load_config
    from goldgate.engine.results import load_run, new_run_id
    from goldgate.report.terminal import render_terminal
    from goldgate.sim.process import SimProcess

    cfg = load_config()
    out = args.out or cfg.path(cfg.runs) / f"demo-{new_run_id()}"
    decision_dir = cfg.path(".goldgate/decisions/demo")
    _step("starting goldgate sim (offline simulator standing in for a hosted LLM)")
    with SimProcess(sim_settings(cfg)) as sim:
        print(f"sim at {sim.url}")
        env = {**os.environ, **OFFLINE_ENV, "GOLDGATE_SIM_URL": sim.url}
        _step(f"1/5 evals: pytest {cfg.evals} (model calls run concurrently and cached; each test runs as its answer lands)")
        cmd = pytest_command(cfg.path(cfg.evals), out=out, strict=False, candidates=[], extra=["-q", "--tb=short"])
        out.mkdir(parents=True, exist_ok=True)
        log = out / "pytest.log"
        with log.open("w", encoding="utf-8") as fh:  # one dot per case is noise here; the report follows
            rc = subprocess.call(cmd, cwd=cfg.root, env=env, stdout=fh)
        if not (out / "summary.json").exists():
            print(log.read_text(encoding="utf-8")[-4000:])
            return rc or 1
        print(render_terminal(load_run(out), run_dir=out), end="")
        print(f"pytest output: {log}")
        print(f"requests to the sim for the evals: {sim.stats()['requests']} (a repeated demo is served from the cache)")
        students = _students(cfg)
        steps = [
            ("2/5 judge calibration gate (κ against human verdicts, from the stored record)",
             ["judge", "check"]),
            *[(f"3/5 distil: {text}", ["distill", "--slot", "router", "--candidate", name])
              for name, text in students],
            ("4/5 decide: students vs prompted LLM on the same human-validated test cases (one chart)",
             ["decide", "--slot", "router", "--suite", "test_intent",
              *[a for name, _ in students for a in ("--student", name)],
              "--llm-run", str(out), "--out", str(decision_dir),
              # a demo's decision is not the project's: it must not spend the split's α in evals/decisions
              "--decision-log-dir", str(decision_dir / "log")]),
            ("5/5 the model-swap PR this decision would open (dry run: no GitHub needed)",
             ["github", "swap-pr", "--decision", str(decision_dir / "decision.json"), "--dry-run"]),
        ]
        failed = []
        for title, argv in steps:
            _step(title)
            if _goldgate(*argv, env=env, cwd=cfg.root) != 0:
                failed.append(argv[0])
        total = sim.stats()["requests"]
    print(f"\nrequests to the sim, whole demo: {total}")
    print(f"eval gates {'PASS' if rc == 0 else 'FAIL'}" + (f"; steps failed: {', '.join(failed)}" if failed else ""))
    return rc or (1 if failed else 0)
