"""P5: push 10,000 golden records to Argilla (target ≤ 60 s) and pull 100 changed ones (target ≤ 3 s).

Needs the local stack (`goldgate argilla up`; `--state-dir` or GOLDGATE_ARGILLA_STATE if not the
default). Each goldgate number comes with a baseline measured in the same run: the bare SDK
`records.log` of the same records, and a `pull --full` that re-reads every record.

    python bench/bench_argilla.py [--records 10000] [--changed 100]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LABELS = ["card", "refund", "transfer", "exchange", "other"]


def _cli(root: Path, *args: str) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "goldgate", "argilla", *args], cwd=root, capture_output=True,
                          text=True, check=False, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    took = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"goldgate argilla {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
    print(f"    {proc.stdout.splitlines()[0]}")
    return took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--changed", type=int, default=100)
    ap.add_argument("--state-dir", type=Path,
                    default=Path(os.environ.get("GOLDGATE_ARGILLA_STATE", REPO / ".goldgate" / "argilla")))
    args = ap.parse_args()

    import argilla as rg

    from goldgate.argilla.stack import ArgillaStack, StackSettings
    from goldgate.goldens.records import write_goldens

    stack = ArgillaStack(StackSettings(state_dir=args.state_dir.resolve()))
    if not stack.status().running:
        sys.exit(f"no Argilla stack running in {args.state_dir}: start it with `goldgate argilla up`")
    url, key = stack.status().url, stack.credentials().api_key
    name = f"bench-{uuid.uuid4().hex[:8]}"
    records = [{"id": f"b{i:06d}", "inputs": {"text": f"customer message {i}: my card payment failed, help"},
                "expected": {"label": LABELS[i % len(LABELS)]}, "metadata": {"split": "train"},
                "provenance": {"source": "human"}} for i in range(args.records)]

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "pyproject.toml").write_text(
            f'[tool.goldgate]\ngoldens = "."\n[tool.goldgate.argilla]\nurl = "local"\n'
            f'state_dir = "{stack.settings.state_dir}"\n')
        write_goldens(root / f"{name}.jsonl", records)

        print(f"push {args.records} records")
        push_s = _cli(root, "push", name)
        client = rg.Argilla(api_url=url, api_key=key)
        base = rg.Dataset(name=f"{name}-sdk", workspace="argilla", client=client,
                          settings=client.datasets(name, workspace="argilla").settings).create()
        t0 = time.perf_counter()
        base.records.log([rg.Record(id=r["id"], fields={"text": r["inputs"]["text"]},
                                    metadata={"split": "train", "source": "human"}) for r in records], batch_size=1000)
        sdk_s = time.perf_counter() - t0

        print("first pull (reads every record once)")
        _cli(root, "pull", name)
        ds = client.datasets(name, workspace="argilla")
        me = client.me
        step = max(1, args.records // args.changed)
        changed = [rg.Record(id=records[i]["id"], fields={"text": records[i]["inputs"]["text"]},
                             responses=[rg.Response("label", "other", user_id=me.id, status="submitted")])
                   for i in range(0, step * args.changed, step)]
        ds.records.log(changed)
        print(f"incremental pull of {len(changed)} changed records")
        pull_s = _cli(root, "pull", name)
        print("full pull (baseline)")
        full_s = _cli(root, "pull", name, "--full")
        lock = json.loads((root / f"{name}.argilla.lock.json").read_text())
        assert len(lock["records"]) == args.records
        for d in (ds, base):
            d.delete()

    print()
    print(f"{'measure':44} {'seconds':>8} {'target':>8} {'ratio':>7}")
    print(f"{'goldgate push ' + str(args.records):44} {push_s:8.2f} {60:8.0f} {push_s / 60:7.2f}")
    print(f"{'  baseline: bare SDK records.log':44} {sdk_s:8.2f} {'':8} {push_s / sdk_s:7.2f}x")
    print(f"{'goldgate pull, ' + str(args.changed) + ' changed (incremental)':44} {pull_s:8.2f} {3:8.0f} "
          f"{pull_s / 3:7.2f}")
    print(f"{'  baseline: pull --full':44} {full_s:8.2f} {'':8} {pull_s / full_s:7.2f}x")
    ok = push_s <= 60 and pull_s <= 3
    print("P5:", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
