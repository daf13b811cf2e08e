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

from goldgate.errors import GoldgateError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the project's evals against the offline simulator and report")
    p.add_argument("--out", type=Path, help="run directory (default: a new one under the runs folder)")
    p.add_argument("--real", action="store_true",
                   help="real models only: the local LLM (llama.cpp) on a seeded subset, MiniLM students, decision")
    p.add_argument("--shard", default="1/10", help="--real: the seeded subset of the test split (default 1/10)")
    p.add_argument("--pool-size", type=int, default=300,
                   help="--real: train-split texts the local LLM labels for the students (default 300)")
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


def _evals(cfg: Any, target: Path, out: Path, env: dict[str, str], *, candidates: list[str],
           extra: list[str], shard: str | None = None) -> int:
    """pytest on `target` into the run directory `out`, its output in `out/pytest.log` (one dot per
    case is noise here), then the report. No summary written: the log's tail, and an error."""
    from goldgate.cli.run import pytest_command
    from goldgate.engine.results import load_run
    from goldgate.report.terminal import render_terminal

    out.mkdir(parents=True, exist_ok=True)
    log = out / "pytest.log"
    cmd = pytest_command(target, out=out, strict=False, candidates=candidates, extra=extra, shard=shard)
    with log.open("w", encoding="utf-8") as fh:
        rc = subprocess.call(cmd, cwd=cfg.root, env=env, stdout=fh)
    if not (out / "summary.json").exists():
        print(log.read_text(encoding="utf-8")[-4000:])
        raise GoldgateError(f"the evals wrote no {out / 'summary.json'} (pytest exit {rc}; output: {log})")
    print(render_terminal(load_run(out), run_dir=out), end="")
    print(f"pytest output: {log}")
    return rc


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
    from goldgate.cli.run import OFFLINE_ENV
    from goldgate.config import load_config
    from goldgate.engine.results import new_run_id
    from goldgate.sim.process import SimProcess

    cfg = load_config()
    if args.real:
        return _demo_real(args, cfg)
    out = args.out or cfg.path(cfg.runs) / f"demo-{new_run_id()}"
    decision_dir = cfg.path(".goldgate/decisions/demo")
    _step("starting goldgate sim (offline simulator standing in for a hosted LLM)")
    with SimProcess(sim_settings(cfg)) as sim:
        print(f"sim at {sim.url}")
        env = {**os.environ, **OFFLINE_ENV, "GOLDGATE_SIM_URL": sim.url}
        _step(f"1/5 evals: pytest {cfg.evals} (model calls run concurrently and cached; each test runs as its answer lands)")
        rc = _evals(cfg, cfg.path(cfg.evals), out, env, candidates=[], extra=["-q", "--tb=short"])
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


REAL_LLM, REAL_STUDENTS, REAL_SUITE = "local-llm", ("student-lora", "student-encoder"), "test_intent"


def _demo_real(args: argparse.Namespace, cfg: Any) -> int:
    """The loop on real models only: SmolLM2-135M-Instruct on llama.cpp answers a seeded shard of the
    Banking77 test split and labels a pool of training texts; the MiniLM students (LoRA LP-FT and
    the frozen encoder) train on 1k human labels plus that pool and answer the same shard; decide
    weighs them. No simulator is started, so every accuracy, latency and token count printed is a
    real model's; the $ figures rest on the `[tool.goldgate.cost]` assumptions."""
    import importlib.util

    from goldgate.cli.run import OFFLINE_ENV
    from goldgate.engine.results import new_run_id
    from goldgate.engine.shards import parse_shard
    from goldgate.localllm.server import LlamaServer

    parse_shard(args.shard)
    missing = [m for m in ("llama_cpp", *ENCODER_NEEDS, "peft") if importlib.util.find_spec(m) is None]
    if missing:
        raise GoldgateError(f"goldgate demo --real needs {', '.join(missing)}: run `make demo-real` (it installs them)")
    for name in (REAL_LLM, *REAL_STUDENTS):
        cfg.candidate(name)  # a missing candidate is one line now, not after minutes of model calls
    out = args.out or cfg.path(cfg.runs) / f"demo-real-{new_run_id()}"
    suite_file = cfg.path(cfg.evals) / "test_banking77.py"

    def evals(candidate: str, env: dict[str, str]) -> Path:
        """The suite on the shard with `candidate` in the slot; its gates fail here, that is the point."""
        _evals(cfg, suite_file, out / candidate, env, candidates=[f"router={candidate}"], shard=args.shard,
               extra=["-q", "--tb=no", "-k", REAL_SUITE])
        return out / candidate

    _step("starting the real local LLM: SmolLM2-135M-Instruct (Q4_1 GGUF, sha256-verified) on llama.cpp")
    failed = []
    with LlamaServer("smollm2") as llm:
        print(f"llama.cpp at {llm.url}, {llm.n_threads} thread(s)")
        env = {**os.environ, **OFFLINE_ENV, "GOLDGATE_LOCAL_LLM_URL": llm.url}
        _step(f"1/4 evals: {REAL_SUITE} on shard {args.shard} of the test split, answered by {REAL_LLM} (real model)")
        llm_run = evals(REAL_LLM, env)
        for name in REAL_STUDENTS:
            _step(f"2/4 distil {name}: 1k human labels + {args.pool_size} train texts labelled by {REAL_LLM}")
            if _goldgate("distill", "--slot", "router", "--candidate", name, "--teacher", REAL_LLM,
                         "--pool-size", str(args.pool_size), env=env, cwd=cfg.root) != 0:
                failed.append(f"distill {name}")
    if failed:
        print(f"\nsteps failed: {', '.join(failed)}")
        return 1
    runs = {}
    for name in REAL_STUDENTS:
        _step(f"3/4 evals: the same {REAL_SUITE} cases answered by {name} (ONNX Runtime)")
        runs[name] = evals(name, env)
    proposed, other = REAL_STUDENTS
    _step(f"4/4 decide: {proposed} vs {REAL_LLM} on the same cases ({other} on the chart)")
    rc = _goldgate("decide", "--slot", "router", "--suite", REAL_SUITE, "--llm", REAL_LLM, "--llm-run", str(llm_run),
                   "--student", proposed, "--student-run", str(runs[proposed]), "--compare", f"{other}={runs[other]}",
                   "--out", str(out / "decision"), "--decision-log-dir", str(out / "decision" / "log"),
                   "--no-forecast", env=env, cwd=cfg.root)
    print(f"""
What is real here: every answer, accuracy, latency and token count above comes from real models on
this machine — {REAL_LLM} (SmolLM2-135M-Instruct, llama.cpp) and the MiniLM students — on shard
{args.shard} of the human-labelled test split; no simulator ran. Assumed, not measured: the $ figures
(the local LLM's `usd_per_request` and [tool.goldgate.cost] are machine-time prices at $0.10/h).
Runs: {out}""")
    return rc
