"""Cost per request for both sides of a swap, with the formula and every input on show.

LLM: the mean per-call cost over a golden run (tokens × the price map; cached calls carry the cost
they had when made). Student, by `hosting`: "dedicated" (the default) assumes one always-on
instance serving only the student, so the cost is hardware $/hour ÷ (3600 × measured throughput ×
utilisation), never below the instance's fixed monthly cost ÷ monthly volume, a floor that
dominates at low traffic; "shared" runs the student on the app's own servers, so only the CPU time
it uses is paid: measured CPU-seconds per request × `cpu_usd_per_hour` ÷ 3600. Either way the
one-time cost (training time × $/hour + labelling + LLM labelling of the pool) is amortised over
the projected volume.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from goldgate.config import CandidateConfig, Config
from goldgate.errors import GoldgateError

__all__ = [
    "COST_TABLE_EXAMPLE",
    "CostError",
    "CostSettings",
    "LLMCost",
    "StudentCost",
    "break_even_volume",
    "cost_settings",
    "llm_cost",
    "student_cost",
    "student_cost_from_card",
]


class CostError(GoldgateError):
    """`[tool.goldgate.cost]` is invalid, or a cost cannot be computed from the inputs given."""


COST_TABLE_EXAMPLE = """\
[tool.goldgate.cost]
monthly_volume = 1000000        # requests per month the slot serves (the saving scales with it)
hardware_usd_per_hour = 0.10    # price of the machine that would serve the student
utilisation = 0.5               # share of that machine's capacity the student really uses (0-1]
amortisation_months = 12        # months over which training and labelling must pay back
labelling_usd = 0               # what the human labels cost (one-time)
# latency_slo_ms = 200          # optional: the student's p95 latency must meet it
# price_date = "2025-01-01"     # optional: the date the LLM prices were read
"""


class CostSettings(BaseModel):
    """`[tool.goldgate.cost]`: the traffic and hardware assumptions a swap is judged under."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    monthly_volume: int = Field(gt=0)
    hosting: Literal["dedicated", "shared"] = "dedicated"
    hardware_usd_per_hour: float = Field(ge=0)
    cpu_usd_per_hour: float | None = Field(default=None, ge=0)
    hardware: str = "the serving machine"
    utilisation: float = Field(default=0.5, gt=0, le=1)
    amortisation_months: float = Field(default=12, gt=0)
    labelling_usd: float = Field(default=0.0, ge=0)
    training_usd_per_hour: float | None = Field(default=None, ge=0)
    hours_per_month: float = Field(default=730, gt=0)
    latency_slo_ms: float | None = Field(default=None, gt=0)
    price_date: str | None = None

    @model_validator(mode="after")
    def _shared_needs_a_cpu_price(self) -> CostSettings:
        if self.hosting == "shared" and self.cpu_usd_per_hour is None:
            raise ValueError('hosting = "shared" prices the CPU time the student uses: set cpu_usd_per_hour')
        return self

    @property
    def projected_volume(self) -> float:
        return self.monthly_volume * self.amortisation_months


def cost_settings(config: Config) -> CostSettings | None:
    """The project's cost assumptions, or None when `[tool.goldgate.cost]` is absent."""
    if not config.cost:
        return None
    try:
        return CostSettings.model_validate(config.cost)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "hosting"
        raise CostError(f"{config.pyproject}: [tool.goldgate.cost] {key}: {err['msg'].removeprefix('Value error, ')}") from None


@dataclass(frozen=True)
class LLMCost:
    per_request: float
    n: int
    total_usd: float
    price_source: str
    price_date: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _litellm_price_map() -> tuple[str, str]:
    """(source, date) of litellm's bundled price map, read from package metadata, not by importing it."""
    from importlib import metadata

    try:
        dist = metadata.distribution("litellm")
    except metadata.PackageNotFoundError:
        return ("litellm price map (litellm not installed)", "unknown")
    files = [f for f in dist.files or [] if f.name == "model_prices_and_context_window_backup.json"]
    stamp = "unknown"
    if files:
        path = Path(str(dist.locate_file(files[0])))
        if path.exists():
            stamp = date.fromtimestamp(path.stat().st_mtime).isoformat()
    return (f"litellm {dist.version} bundled price map", stamp)


def llm_cost(cases: list[dict[str, Any]], name: str, cand: CandidateConfig, settings: CostSettings | None) -> LLMCost:
    """Mean per-call cost over a run's case records; errors stay in the denominator (they were paid)."""
    if not cases:
        raise CostError(f"candidate '{name}': no case records to price")
    total = sum(float(c.get("cost_usd") or 0.0) for c in cases)
    if cand.usd_per_request is not None:
        source = f"[tool.goldgate.candidates.{name}] usd_per_request={cand.usd_per_request} (self-hosted: machine time)"
        stamp = "unrecorded (set [tool.goldgate.cost] price_date)"
    elif cand.input_cost_per_token is not None or cand.output_cost_per_token is not None:
        source = (f"[tool.goldgate.candidates.{name}] input_cost_per_token={cand.input_cost_per_token}, "
                  f"output_cost_per_token={cand.output_cost_per_token}")
        stamp = "unrecorded (set [tool.goldgate.cost] price_date)"
    else:
        source, stamp = _litellm_price_map()
    if settings is not None and settings.price_date:
        stamp = settings.price_date
    return LLMCost(total / len(cases), len(cases), total, source, stamp)


@dataclass(frozen=True)
class StudentCost:
    per_request: float
    serving_per_request: float
    variable_per_request: float
    floor_per_request: float
    one_time_usd: float
    training_usd: float
    labelling_usd: float
    teacher_usd: float
    amortised_per_request: float
    throughput_rps: float
    formula: str
    hosting: str = "dedicated"
    assumption: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def student_cost(s: CostSettings, *, throughput_rps: float, training_s: float, teacher_usd: float,
                 cpu_s_per_request: float | None = None) -> StudentCost:
    training_usd = training_s / 3600 * (s.training_usd_per_hour if s.training_usd_per_hour is not None
                                        else s.hardware_usd_per_hour)
    one_time = training_usd + s.labelling_usd + teacher_usd
    amortised = one_time / s.projected_volume
    tail = f" + ${one_time:.4f} one-time ÷ ({s.monthly_volume:,} × {s.amortisation_months} months)"
    if s.hosting == "shared":
        if cpu_s_per_request is None:
            raise CostError('hosting = "shared" needs the student\'s measured CPU-seconds per request; re-run '
                            "`goldgate distill` (card.json speed.cpu_s_per_request)")
        assert s.cpu_usd_per_hour is not None  # checked by CostSettings
        variable = cpu_s_per_request * s.cpu_usd_per_hour / 3600
        formula = f"{cpu_s_per_request * 1000:.3f} CPU-ms/request × ${s.cpu_usd_per_hour}/CPU-hour ÷ 3600" + tail
        assumption = ("shared hosting: the student runs on the app's own servers and only the CPU time it uses "
                      "is paid (no instance of its own, no idle floor)")
        return StudentCost(variable + amortised, variable, variable, 0.0, one_time, training_usd, s.labelling_usd,
                           teacher_usd, amortised, throughput_rps, formula, "shared", assumption)
    if throughput_rps <= 0:
        raise CostError("student throughput is 0 requests/s; re-measure it (goldgate distill records it in card.json)")
    variable = s.hardware_usd_per_hour / (3600 * throughput_rps * s.utilisation)
    floor = s.hardware_usd_per_hour * s.hours_per_month / s.monthly_volume
    serving = max(variable, floor)
    formula = (
        f"max(${s.hardware_usd_per_hour}/h ÷ (3600 × {throughput_rps:.1f} req/s × {s.utilisation}), "
        f"${s.hardware_usd_per_hour}/h × {s.hours_per_month} h ÷ {s.monthly_volume:,} req/month)" + tail
    )
    assumption = (f"dedicated hosting: one always-on {s.hardware} (${s.hardware_usd_per_hour}/h) serves only the "
                  f"student and is paid busy or idle, so at {s.monthly_volume:,} requests/month it costs at least "
                  f"${floor:.6f} per request; set hosting = \"shared\" if the student runs on the app's own servers")
    return StudentCost(serving + amortised, serving, variable, floor, one_time, training_usd, s.labelling_usd,
                       teacher_usd, amortised, throughput_rps, formula, "dedicated", assumption)


def student_cost_from_card(s: CostSettings, card: dict[str, Any]) -> StudentCost:
    """The student's cost from what its artifact card measured."""
    speed = card["speed"]
    return student_cost(s, throughput_rps=speed["throughput_rps"], training_s=card.get("train_s", 0.0),
                        teacher_usd=card.get("data", {}).get("teacher_usd", 0.0),
                        cpu_s_per_request=speed.get("cpu_s_per_request"))


def break_even_volume(one_time_usd: float, llm_per_request: float, serving_per_request: float) -> float:
    """Requests needed before the one-time cost is paid back; infinite when the student saves nothing."""
    saving = llm_per_request - serving_per_request
    if saving <= 0:
        return math.inf
    return one_time_usd / saving
