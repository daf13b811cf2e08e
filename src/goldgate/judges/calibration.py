"""Judge calibration: how far a judge agrees with human verdicts, and the gate built on it.

`calibrate` runs a judge on its calibration set (golden records whose `expected.verdict` is a human
pass/fail) and writes a calibration record next to the evals, reviewed in git like code: Cohen's κ
with a BCa bootstrap 95% interval, the confusion matrix, recall on the human-fail class, the
judge-vs-human pass-rate gap, N and the minority count, the judge's fingerprint, and each item's
verdicts (so a later calibration can be compared item by item). `check_judges` is the gate the
pytest plugin applies to every judge a run used; it reads only the record and the config.

Judge errors count as disagreements with the human: an unusable judge must never look better.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

from goldgate.config import Config
from goldgate.errors import GoldenFormatError
from goldgate.files import write_atomic
from goldgate.judges.config import JudgeConfig, judge_config
from goldgate.judges.judge import Judge, JudgeItem, Verdict
from goldgate.judges.record import SCHEMA, CalibrationError, read_record, record_path

__all__ = [
    "SCHEMA",
    "CalibrationError",
    "CalibrationItem",
    "calibrate",
    "check_judges",
    "cohen_kappa",
    "gate",
    "load_calibration_set",
    "read_record",
    "record_path",
]

RESAMPLES = 2000
SEED = 0
_NORMAL = NormalDist()
# Above this share of error verdicts the judge is broken, not miscalibrated: its κ would be noise,
# and writing it would overwrite the record of a judge that worked.
MAX_JUDGE_ERROR_RATE = 0.2


@dataclass(frozen=True)
class CalibrationItem:
    """One human-verdicted example: what the judge sees, and what the human decided."""

    id: str
    item: JudgeItem
    human: str


def load_calibration_set(
    config: Config, name: str, cfg: JudgeConfig | None = None
) -> tuple[Path, str, list[CalibrationItem]]:
    """(path, sha256, items) of the judge's calibration set; every bad record names file:line."""
    from goldgate.goldens.records import load_goldens, resolve_golden_path

    cfg = cfg or judge_config(config, name)
    if not cfg.calibration:
        raise CalibrationError(
            f"{config.pyproject}: [tool.goldgate.judges.{name}] calibration: not set "
            f"(a golden file with human verdicts)"
        )
    path = resolve_golden_path(
        cfg.calibration, goldens_dir=config.path(config.goldens), root=config.root
    )
    golden = load_goldens(path, splits=config.splits)
    cases = golden.split(cfg.calibration_split) if cfg.calibration_split else list(golden)
    f = cfg.fields
    items = []
    for c in cases:
        where = f"{path}:{c.line}"
        verdict = c.expected.get("verdict")
        if verdict not in ("pass", "fail"):
            raise GoldenFormatError(
                f"{where}: expected.verdict must be 'pass' or 'fail' (id {c.id!r})"
            )
        missing = [
            k for k in (f.input, f.output, f.reference) if k is not None and k not in c.inputs
        ]
        if missing:
            raise GoldenFormatError(
                f"{where}: inputs has no {missing[0]!r} (set [tool.goldgate.judges.{name}] fields)"
            )
        ref = c.inputs[f.reference] if f.reference else None
        item = JudgeItem(
            _text(c.inputs[f.input]), _text(c.inputs[f.output]), None if ref is None else _text(ref)
        )
        items.append(CalibrationItem(c.id, item, verdict))
    if not items:
        raise CalibrationError(f"{path}: no records in split {cfg.calibration_split!r}")
    return path, golden.sha256, items


def _text(value: Any) -> str:
    return (
        value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    )


# --- statistics --------------------------------------------------------------------------------
# Each item is one cell of the 2×2 table: (human, judge) with errors already turned into
# disagreements. Cells: 0 = pass/pass, 1 = pass/fail, 2 = fail/pass, 3 = fail/fail.


def _cells(human: Sequence[str], judged: Sequence[str]) -> list[int]:
    out = []
    for h, j in zip(human, judged):
        if j == "error":
            j = "fail" if h == "pass" else "pass"
        out.append((0 if h == "pass" else 2) + (0 if j == "pass" else 1))
    return out


def _kappa_counts(c: Sequence[int]) -> float:
    n = sum(c)
    if n == 0:
        return 0.0
    po = (c[0] + c[3]) / n
    h_pass, j_pass = (c[0] + c[1]) / n, (c[0] + c[2]) / n
    pe = h_pass * j_pass + (1 - h_pass) * (1 - j_pass)
    if pe >= 1:
        return 1.0 if po >= 1 else 0.0
    return (po - pe) / (1 - pe)


def _counts(cells: Sequence[int], idx: Sequence[int] | None = None) -> list[int]:
    c = [0, 0, 0, 0]
    for i in idx if idx is not None else range(len(cells)):
        c[cells[i]] += 1
    return c


def cohen_kappa(human: Sequence[str], judged: Sequence[str]) -> float:
    """Cohen's κ of human vs judge pass/fail verdicts (judge errors count as disagreements)."""
    return _kappa_counts(_counts(_cells(human, judged)))


def _percentile_ci(values: list[float]) -> list[float]:
    values.sort()
    lo = values[int(0.025 * (len(values) - 1))]
    hi = values[round(0.975 * (len(values) - 1))]
    return [round(lo, 4), round(hi, 4)]


def _kappas(counts: Any) -> Any:
    """κ of each row of an (…, 4) array of cell counts (numpy), as `_kappa_counts` does for one."""
    import numpy as np

    c = np.asarray(counts, dtype=float)
    n = c.sum(axis=-1)
    po = (c[..., 0] + c[..., 3]) / n
    h, j = (c[..., 0] + c[..., 1]) / n, (c[..., 0] + c[..., 2]) / n
    pe = h * j + (1 - h) * (1 - j)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pe >= 1, np.where(po >= 1, 1.0, 0.0), (po - pe) / (1 - pe))


def kappa_interval(
    cells: Sequence[int], resamples: int = RESAMPLES, seed: int = SEED
) -> list[float]:
    """BCa bootstrap 95% interval of κ over items (seeded: the record diffs cleanly). The plain
    percentile interval undercovers at N = 100: its lower bound lies above the true κ in ~3.7 % of
    calibration sets instead of 2.5 %; BCa's bias and skew corrections bring that to ~2 %."""
    import numpy as np

    counts = np.array(_counts(cells))
    n = int(counts.sum())
    if n == 0:
        return [0.0, 0.0]
    reps = np.sort(_kappas(np.random.default_rng(seed).multinomial(n, counts / n, size=resamples)))
    kappa = _kappa_counts(counts.tolist())
    if reps[0] == reps[-1]:
        return [round(float(reps[0]), 4)] * 2
    below = (np.sum(reps < kappa) + 0.5 * np.sum(reps == kappa)) / resamples
    z0 = _NORMAL.inv_cdf(min(max(below, 0.5 / resamples), 1 - 0.5 / resamples))
    # Acceleration from the jackknife; items in the same cell give the same leave-one-out κ.
    weights = counts[counts > 0]
    loo = np.array([_kappa_counts([k - (i == t) for i, k in enumerate(counts.tolist())])
                    for t in range(4) if counts[t] > 0])
    dev = (weights * loo).sum() / n - loo
    spread = (weights * dev**2).sum()
    accel = (weights * dev**3).sum() / (6 * spread**1.5) if spread > 0 else 0.0

    def level(q: float) -> float:
        z = z0 + _NORMAL.inv_cdf(q)
        return _NORMAL.cdf(z0 + z / (1 - accel * z))

    lo = reps[int(level(0.025) * (resamples - 1))]
    hi = reps[round(level(0.975) * (resamples - 1))]
    return [round(float(lo), 4), round(float(hi), 4)]


def delta_kappa_interval(
    new: Sequence[int], old: Sequence[int], resamples: int = RESAMPLES, seed: int = SEED
) -> list[float]:
    """Paired bootstrap 95% interval of κ(new) − κ(old): both judges resampled on the same items."""
    rng = random.Random(seed)
    n = len(new)
    pop = range(n)
    deltas = []
    for _ in range(resamples):
        idx = rng.choices(pop, k=n)
        deltas.append(_kappa_counts(_counts(new, idx)) - _kappa_counts(_counts(old, idx)))
    return _percentile_ci(deltas)


def _stats(human: list[str], judged: list[str]) -> dict[str, Any]:
    cells = _cells(human, judged)
    c = _counts(cells)
    n = len(cells)
    h_pass = human.count("pass")
    confusion = {
        h: {
            f"judge_{j}": sum(1 for a, b in zip(human, judged) if a == h and b == j)
            for j in ("pass", "fail", "error")
        }
        for h in ("pass", "fail")
    }
    h_fail = n - h_pass
    return {
        "n": n,
        "human_pass": h_pass,
        "human_fail": h_fail,
        "minority": min(h_pass, h_fail),
        "judge_errors": judged.count("error"),
        "kappa": round(_kappa_counts(c), 4),
        "kappa_ci": kappa_interval(cells),
        "agreement": round((c[0] + c[3]) / n, 4),
        "fail_recall": round(confusion["fail"]["judge_fail"] / h_fail, 4) if h_fail else None,
        "pass_rate_human": round(h_pass / n, 4),
        "pass_rate_judge": round(judged.count("pass") / n, 4),
        "pass_rate_gap": round((judged.count("pass") - h_pass) / n, 4),
        "confusion": {f"human_{h}": row for h, row in confusion.items()},
    }


def _as_reference(record: dict[str, Any]) -> dict[str, Any]:
    return {"fingerprint": record["fingerprint"], "created": record["created"], "kappa": record["kappa"],
            "verdicts": {it["id"]: it["judge"] for it in record["items"]}}


def _compared(
    ref: dict[str, Any], humans: dict[str, str], judged: dict[str, str]
) -> dict[str, Any] | None:
    """A stored judge's verdicts next to this calibration's, with Δκ on the items both saw."""
    base = {k: ref[k] for k in ("fingerprint", "created", "kappa", "verdicts")}
    paired = sorted(i for i in base["verdicts"] if i in judged)
    if not paired:
        return None
    h = [humans[i] for i in paired]
    new, old = (
        _cells(h, [judged[i] for i in paired]),
        _cells(h, [base["verdicts"][i] for i in paired]),
    )
    base["paired_n"] = len(paired)
    base["delta_kappa"] = round(_kappa_counts(_counts(new)) - _kappa_counts(_counts(old)), 4)
    base["delta_kappa_ci"] = delta_kappa_interval(new, old)
    return base


def _references(
    previous: dict[str, Any] | None,
    fingerprint_id: str,
    humans: dict[str, str],
    judged: dict[str, str],
    rebaseline: bool,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(baseline, accepted): the judge this one replaced (the previous record's judge when the
    fingerprint changed, else the baseline the previous record carried), and the judge last accepted
    with --rebaseline (or calibrated first). Comparing with the previous judge alone lets small
    drops add up unnoticed; the accepted one is stored only when it is not the baseline already."""
    if rebaseline or previous is None:
        return None, None
    changed = previous["fingerprint"]["id"] != fingerprint_id
    if changed:
        base_ref = _as_reference(previous)
    else:
        base_ref = previous.get("baseline")
    accepted_ref = previous.get("accepted") or previous.get("baseline") or (base_ref if changed else None)
    baseline = _compared(base_ref, humans, judged) if base_ref else None
    if accepted_ref is None or (base_ref is not None and accepted_ref["created"] == base_ref["created"]
                                and accepted_ref["fingerprint"] == base_ref["fingerprint"]):
        return baseline, None
    return baseline, _compared(accepted_ref, humans, judged)


def calibrate(
    config: Config, name: str, *, rebaseline: bool = False, progress: bool = True, fresh: bool = False
) -> tuple[dict[str, Any], Path]:
    """Run the judge on its calibration set and write the record; returns (record, path). `fresh`
    asks the model again rather than reading cached verdicts, so a provider changing the model
    behind its name shows up (the new answers replace the cached ones)."""
    from goldgate.version import __version__

    j = Judge(name, config)
    set_path, set_sha, items = load_calibration_set(config, name, j.cfg)
    verdicts = j.check_many([it.item for it in items], progress=progress, fresh=fresh)
    humans = [it.human for it in items]
    judged = [v.verdict for v in verdicts]
    path = record_path(config, name, j.cfg)
    _refuse_broken_judge(name, verdicts, path)
    previous = read_record(path)
    fp = j.fingerprint()
    baseline, accepted = _references(
        previous,
        fp["id"],
        {it.id: it.human for it in items},
        {it.id: v.verdict for it, v in zip(items, verdicts)},
        rebaseline,
    )
    record: dict[str, Any] = {
        "schema": SCHEMA,
        "judge": name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "goldgate_version": __version__,
        "fingerprint": fp,
        "calibration_set": {
            "path": _rel(set_path, config.root),
            "sha256": set_sha,
            "split": j.cfg.calibration_split,
        },
        **_stats(humans, judged),
        "bootstrap": {"resamples": RESAMPLES, "seed": SEED, "interval": "BCa 95% (Δκ: paired percentile 95%)"},
        "judge_cost_usd": round(sum(v.cost_usd for v in verdicts), 6),
        "baseline": baseline,
        "accepted": accepted,
        "items": [
            {"id": it.id, "human": it.human, "judge": v.verdict, "rationale": v.rationale}
            for it, v in sorted(zip(items, verdicts), key=lambda p: p[0].id)
        ],
    }
    _write_json(path, record)
    return record, path


def _refuse_broken_judge(name: str, verdicts: Sequence[Verdict], path: Path) -> None:
    errors = [v for v in verdicts if v.verdict == "error"]
    if len(errors) <= MAX_JUDGE_ERROR_RATE * len(verdicts):
        return
    failed = [v for v in errors if v.rationale.startswith("judge call failed")]
    what = ("the judge's calls failed" if len(failed) * 2 > len(errors)
            else "the judge's answers could not be parsed")
    raise CalibrationError(
        f"judge '{name}': {what} ({len(errors)} of {len(verdicts)}; e.g. {errors[0].rationale[:160]}); "
        f"{path} was not changed"
    )


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


# --- the gate ----------------------------------------------------------------------------------


def _f(x: float) -> str:
    return f"{x:.2f}"


def gate(
    name: str,
    record: dict[str, Any] | None,
    fingerprint: dict[str, Any],
    cfg: JudgeConfig,
    set_sha256: str | None = None,
) -> dict[str, Any]:
    """The calibration verdict for one judge, as plain data with one-line reasons."""
    fl = cfg.floors
    fp_id = fingerprint["id"]
    out: dict[str, Any] = {
        "judge": name,
        "status": "pass",
        "reasons": [],
        "kappa": None,
        "kappa_ci": None,
        "n": 0,
        "minority": 0,
        "fail_recall": None,
        "fingerprint": fp_id,
        "calibrated": False,
    }
    rerun = f"run `goldgate judge calibrate {name}`"
    if record is None:
        why = f"judge '{name}': no calibration record for fingerprint {fp_id[:19]} ({rerun})"
        out.update(status="fail", reasons=[why])
        return out
    if record["fingerprint"]["id"] != fp_id:
        changed = [
            k.removesuffix("_sha256")
            for k in ("model", "rubric_sha256", "params", "protocol")
            if record["fingerprint"].get(k) != fingerprint.get(k)
        ]
        why = (
            f"judge '{name}': fingerprint {fp_id[:19]} has no calibration record "
            f"({', '.join(changed)} changed since the record for "
            f"{record['fingerprint']['id'][:19]}; {rerun})"
        )
        out.update(status="fail", reasons=[why])
        return out
    out.update(
        kappa=record["kappa"],
        kappa_ci=record["kappa_ci"],
        n=record["n"],
        minority=record["minority"],
        fail_recall=record["fail_recall"],
        calibrated=True,
    )
    kappa, (lo, hi) = record["kappa"], record["kappa_ci"]
    interval = f"κ = {_f(kappa)} [95% CI {_f(lo)}, {_f(hi)}]"
    fails: list[str] = []
    if set_sha256 is not None and record["calibration_set"]["sha256"] != set_sha256:
        fails.append(
            f"judge '{name}': calibration set {record['calibration_set']['path']} changed "
            f"since the record was made ({rerun})"
        )
    if kappa < fl.min_kappa:
        fails.append(f"judge '{name}': {interval} is below the floor κ ≥ {_f(fl.min_kappa)}")
    if lo < fl.min_kappa_lower:
        fails.append(
            f"judge '{name}': {interval} has its lower bound below the floor "
            f"{_f(fl.min_kappa_lower)}"
        )
    recall = record["fail_recall"]
    if recall is not None and recall < fl.min_fail_recall:
        fails.append(
            f"judge '{name}': fail-class recall {_f(recall)} is below the floor "
            f"{_f(fl.min_fail_recall)} ({interval})"
        )
    for key, what in (("baseline", "the baseline"), ("accepted", "the accepted baseline")):
        base = record.get(key)
        if base and base["delta_kappa_ci"][1] < -fl.max_kappa_drop:
            dlo, dhi = base["delta_kappa_ci"]
            fails.append(
                f"judge '{name}': κ dropped against {what} by {_f(-base['delta_kappa'])} "
                f"(Δκ 95% CI {_f(dlo)}, {_f(dhi)}; upper bound below −{_f(fl.max_kappa_drop)}; "
                f"{interval})"
            )
    insufficient = record["n"] < fl.min_n or record["minority"] < fl.min_minority
    if fails:
        out.update(status="fail", reasons=fails)
    elif insufficient:
        why = (
            f"judge '{name}': insufficient evidence: N = {record['n']} (floor {fl.min_n}), "
            f"minority class {record['minority']} (floor {fl.min_minority}); {interval}"
        )
        if fl.fail_on_insufficient:
            out.update(status="insufficient", reasons=[why])
        else:
            out.update(reasons=[why + " — allowed by floors.fail_on_insufficient = false"])
    else:
        why = (
            f"judge '{name}': {interval} ≥ floor {_f(fl.min_kappa)} (lower bound ≥ "
            f"{_f(fl.min_kappa_lower)}), fail recall {_f(recall or 0)} ≥ "
            f"{_f(fl.min_fail_recall)}, N = {record['n']}, minority {record['minority']}"
        )
        out["reasons"] = [why]
    return out


def check_judges(config: Config, names: list[str]) -> list[dict[str, Any]]:
    """The calibration gate for each named judge, from its stored record (no model calls)."""
    out = []
    for name in names:
        j = Judge(name, config)
        set_sha = None
        if j.cfg.calibration:
            from goldgate.goldens.records import resolve_golden_path

            p = resolve_golden_path(
                j.cfg.calibration, goldens_dir=config.path(config.goldens), root=config.root
            )
            set_sha = _sha256(p)
        verdict = gate(
            name, read_record(record_path(config, name, j.cfg)), j.fingerprint(), j.cfg, set_sha
        )
        if set_sha is not None and verdict["status"] != "pass":
            broken = _format_error(config, name, j.cfg)
            if broken:
                verdict.update(status="fail", reasons=[broken])
        out.append(verdict)
    return out


def _format_error(config: Config, name: str, cfg: JudgeConfig) -> str | None:
    """`file:line: reason` when the calibration set no longer parses: an edit that broke the file
    must be reported as such, not as "the set changed since the record"."""
    try:
        load_calibration_set(config, name, cfg)
    except GoldenFormatError as exc:
        return f"judge '{name}': {exc}"
    return None


def _sha256(path: Path) -> str | None:
    import hashlib

    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None
