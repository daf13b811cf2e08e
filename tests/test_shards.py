"""Sharded runs: `--shard i/n` slices every suite by a stable hash of the case id, and
`goldgate merge` turns the shards back into the run one machine would have made."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from support import eval_source, make_project, run_cli, summary_of

from goldgate.engine.shards import Shard, parse_shard
from goldgate.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_every_case_lands_in_exactly_one_balanced_shard() -> None:
    ids = [f"case-{i}" for i in range(10_007)]
    for n in (1, 2, 4, 7):
        slices = [Shard(i, n).select(ids, ids, "suite") for i in range(1, n + 1)]
        assert sorted(x for s in slices for x in s) == sorted(ids)
        sizes = [len(s) for s in slices]
        assert max(sizes) - min(sizes) <= 1
        assert all(s == sorted(s, key=ids.index) for s in slices)  # original order kept
    # Stable: the same ids give the same slices in any order, any process.
    shuffled = list(reversed(ids))
    assert sorted(Shard(2, 4).select(shuffled, shuffled, "suite")) == sorted(Shard(2, 4).select(ids, ids, "suite"))


@pytest.mark.parametrize("text", ["0/4", "5/4", "1/0", "1-4", "", "a/b"])
def test_bad_shard_spec_is_one_line(text: str) -> None:
    with pytest.raises(ConfigError, match="--shard"):
        parse_shard(text)


DEMO_CASES = 480
TEXT_CASES = 120


def _demo_project(root: Path) -> Path:
    """The repository's own project (config, prompts, judges, its four suites), on the first
    DEMO_CASES / TEXT_CASES test cases of its goldens so five runs fit in a test."""
    root.mkdir()
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(REPO / "evals", root / "evals", ignore=shutil.ignore_patterns("__pycache__"))
    golden = root / "evals" / "goldens" / "banking77.jsonl"
    tests = [line for line in golden.read_text().splitlines() if json.loads(line)["metadata"]["split"] == "test"]
    golden.write_text("\n".join(tests[:DEMO_CASES]) + "\n")
    answers = root / "evals" / "goldens" / "truthfulqa.jsonl"  # the free-text suites, sampled the same way
    questions = [line for line in answers.read_text().splitlines() if json.loads(line)["metadata"]["split"] == "test"]
    answers.write_text("\n".join(questions[:TEXT_CASES]) + "\n")
    return root


def _comparable(summary: dict[str, Any]) -> dict[str, Any]:
    suites = {s["name"]: {k: s[k] for k in ("n", "passed", "failed", "errors", "skipped", "pass_rate", "pass_rate_ci",
                                            "error_rate", "cost_usd", "cost_per_case", "prompt_tokens",
                                            "completion_tokens", "gate")}
              for s in summary["suites"]}
    totals = {k: summary["totals"][k] for k in ("cases", "passed", "failed", "errors", "cost_usd", "llm_calls")}
    return {"status": summary["status"], "suites": suites, "totals": totals,
            "judge_gates": summary.get("judge_gates")}


@pytest.mark.slow
def test_four_shards_of_the_demo_merge_into_the_unsharded_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from goldgate.cli.demo import sim_settings
    from goldgate.config import load_config
    from goldgate.sim.process import SimProcess

    root = _demo_project(tmp_path / "demo")
    cfg = load_config(root)
    settings = sim_settings(cfg).model_copy(update={"latency_ms": 0, "jitter_ms": 0})
    with SimProcess(settings) as sim:
        env = {"GOLDGATE_SIM_URL": sim.url}
        full = run_cli("run", "--out", str(tmp_path / "full"), "--", "-q", "--tb=no",
                       cwd=root, env=env)
        assert (tmp_path / "full" / "summary.json").exists(), full.stdout[-3000:] + full.stderr[-3000:]
        (root / ".goldgate" / "cache.sqlite").unlink()  # the shards make their own calls, as CI machines would
        shards = []
        for i in range(1, 5):
            out = tmp_path / f"shard{i}"
            proc = run_cli("run", "--shard", f"{i}/4", "--out", str(out), "--", "-q", "--tb=no", cwd=root, env=env)
            assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
            assert summary_of(out)["shard"] == {"index": i, "count": 4}
            shards.append(str(out))
        merged = run_cli("merge", *reversed(shards), "--out", str(tmp_path / "merged"), cwd=root, env=env)
    unsharded = summary_of(tmp_path / "full")
    result = summary_of(tmp_path / "merged")
    assert merged.returncode == full.returncode, merged.stdout + merged.stderr
    assert _comparable(result) == _comparable(unsharded)
    assert result["suites"][0]["n"] == DEMO_CASES and len(result["suites"]) == 4  # banking77 x2, truthfulqa x2
    sizes = [summary_of(Path(s))["totals"]["cases"] for s in shards]
    assert max(sizes) - min(sizes) <= 4 and sum(sizes) == unsharded["totals"]["cases"]
    assert result["merged"]["count"] == 4 and [s["index"] for s in result["merged"]["shards"]] == [1, 2, 3, 4]


def _shard_runs(tmp_path: Path, n: int = 3) -> tuple[Path, list[Path]]:
    (tmp_path / "proj").mkdir()
    root = make_project(tmp_path / "proj", n=60)
    (root / "evals" / "test_router.py").write_text(eval_source(0.5), encoding="utf-8")
    dirs = []
    for i in range(1, n + 1):
        out = tmp_path / f"s{i}"
        proc = run_cli("run", "--shard", f"{i}/{n}", "--out", str(out), "--", "-q", "--tb=no", cwd=root)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        dirs.append(out)
    return root, dirs


def _edit(run_dir: Path, **changes: Any) -> None:
    path = run_dir / "summary.json"
    data = json.loads(path.read_text())
    for key, value in changes.items():
        if key == "dataset_sha256":
            for s in data["suites"]:
                s["fingerprints"]["dataset_sha256"] = value
        else:
            data[key] = value
    path.write_text(json.dumps(data))


def test_merge_refuses_missing_duplicated_and_foreign_shards(tmp_path: Path, sim_env) -> None:
    root, dirs = _shard_runs(tmp_path)
    sizes = [summary_of(d)["totals"]["cases"] for d in dirs]
    assert sum(sizes) == 60 and max(sizes) - min(sizes) <= 1

    ok = run_cli("merge", *map(str, dirs), "--out", str(tmp_path / "m"), cwd=root)
    assert ok.returncode == 0, ok.stderr
    assert summary_of(tmp_path / "m")["totals"]["cases"] == 60

    missing = run_cli("merge", str(dirs[0]), str(dirs[2]), "--out", str(tmp_path / "x"), cwd=root)
    assert missing.returncode == 2 and "shard 2 of 3 missing" in missing.stderr
    twice = run_cli("merge", str(dirs[0]), str(dirs[1]), str(dirs[1]), str(dirs[2]), "--out", str(tmp_path / "x"),
                    cwd=root)
    assert twice.returncode == 2 and "shard 2/3 given twice" in twice.stderr
    assert not (tmp_path / "x").exists()

    for change, words in [({"provenance": {"commit": "abc", "config_sha256": "x"}}, "different commits"),
                          ({"dataset_sha256": "0" * 64}, "different goldens")]:
        shutil.copytree(dirs[1], tmp_path / "other", dirs_exist_ok=True)
        _edit(tmp_path / "other", **change)
        bad = run_cli("merge", str(dirs[0]), str(tmp_path / "other"), str(dirs[2]), "--out", str(tmp_path / "x"),
                      cwd=root)
        assert bad.returncode == 2 and words in bad.stderr, bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1

    unsharded = run_cli("run", "--out", str(tmp_path / "full"), "--", "-q", cwd=root)
    assert unsharded.returncode == 0
    not_shard = run_cli("merge", str(tmp_path / "full"), "--out", str(tmp_path / "x"), cwd=root)
    assert not_shard.returncode == 2 and "not a shard run" in not_shard.stderr


def test_a_shard_does_not_fail_on_gates_the_merge_does(tmp_path: Path, sim_env) -> None:
    (tmp_path / "proj").mkdir()
    root = make_project(tmp_path / "proj", n=40)
    (root / "evals" / "test_router.py").write_text(eval_source(0.99), encoding="utf-8")  # the sim is 80% right
    outs = []
    for i in (1, 2):
        out = tmp_path / f"s{i}"
        proc = run_cli("run", "--shard", f"{i}/2", "--out", str(out), "--", "-q", "--tb=no", cwd=root)
        assert proc.returncode == 0, proc.stdout[-2000:]
        outs.append(str(out))
    merged = run_cli("merge", *outs, "--out", str(tmp_path / "m"), cwd=root)
    assert merged.returncode == 1
    assert summary_of(tmp_path / "m")["suites"][0]["gate"]["status"] == "fail"


def test_pytest_option_and_tiny_suites(pytester: pytest.Pytester, sim_env) -> None:
    """More shards than cases: the empty shard runs, and merging still covers every case."""
    make_project(pytester.path, n=3)
    pytester.makepyfile(test_router=eval_source(0.0))
    outs = []
    for i in range(1, 6):
        out = pytester.path / f"s{i}"
        res = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--goldgate-shard", f"{i}/5",
                                            "--goldgate-out", str(out))
        assert res.ret in (0, 5), res.stdout.str()
        outs.append(out)
    assert sum(summary_of(d)["totals"]["cases"] for d in outs) == 3
    merged = pytester.run(sys.executable, "-m", "goldgate", "merge", *map(str, outs), "--out", str(pytester.path / "m"))
    assert merged.ret == 0, merged.stderr.str()
    assert summary_of(pytester.path / "m")["totals"]["cases"] == 3
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--goldgate-shard", "6/5")
    assert res.ret == 4 and "i must be between 1 and n" in res.stderr.str()


def test_evals_workflow_shards_then_merges_and_gates_once() -> None:
    import yaml

    wf = yaml.safe_load((REPO / ".github" / "workflows" / "evals.yml").read_text())
    on = wf.pop(True)
    assert on["workflow_call"]["inputs"]["evals-shards"]["default"] == 1
    jobs = wf["jobs"]
    assert jobs["evals"]["strategy"]["matrix"]["shard"] == "${{ fromJSON(needs.plan.outputs.shards) }}"
    runs = " ".join(s.get("run", "") for s in jobs["evals"]["steps"])
    assert runs.count('--shard "$SHARD"') == 2  # base and head
    cache = next(s for s in jobs["evals"]["steps"] if s.get("uses", "").startswith("actions/cache@"))
    assert "matrix.shard" in cache["with"]["key"]  # shards never overwrite each other's cache
    upload = next(s for s in jobs["evals"]["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert "matrix.shard" in upload["with"]["name"]
    gate = jobs["gate"]
    assert set(gate["needs"]) == {"plan", "evals"} and "always()" in gate["if"]
    gate_runs = " ".join(s.get("run", "") for s in gate["steps"])
    assert gate_runs.count("goldgate merge") == 2 and "goldgate github comment" in gate_runs
    assert "goldgate github summary" in gate_runs
