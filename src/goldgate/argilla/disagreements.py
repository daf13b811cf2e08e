"""Where a judge and the humans disagree, people decide who was right: one Argilla record per
disagreement, the judge's verdict and rationale as suggestions, the human's verdict as metadata."""

from __future__ import annotations

from typing import Any

from goldgate.argilla.settings import sdk
from goldgate.calls.llm import redact
from goldgate.judges.record import CalibrationError

__all__ = ["push_disagreements"]


def push_disagreements(
    url: str,
    key: str,
    dataset: str,
    workspace: str | None,
    rubric: str,
    record: dict[str, Any],
    differ: list[dict[str, Any]],
    by_id: dict[str, Any],
) -> None:
    """Upsert one Argilla record per disagreement (stable ids, so a re-push updates, never
    duplicates), with the judge's verdict and rationale as suggestions and the human's verdict as
    metadata, so reviewers decide who was right."""
    import warnings

    rg = sdk()
    agent = f"goldgate judge {record['judge']} {record['fingerprint']['id'][:19]}"
    try:
        warnings.filterwarnings("ignore", category=UserWarning, module="argilla")
        client = rg.Argilla(api_url=url, api_key=key, retries=1)
        ds = client.datasets(name=dataset, workspace=workspace)
        if ds is None:
            settings = rg.Settings(
                guidelines=rubric,
                fields=[
                    rg.TextField(name="input"),
                    rg.TextField(name="output"),
                    rg.TextField(name="reference", required=False),
                ],
                questions=[
                    rg.LabelQuestion(name="verdict", labels=["pass", "fail"]),
                    rg.TextQuestion(name="rationale", required=False),
                ],
                metadata=[
                    rg.TermsMetadataProperty(name="human_verdict"),
                    rg.TermsMetadataProperty(name="judge_verdict"),
                ],
            )
            ds = rg.Dataset(
                name=dataset, workspace=workspace, settings=settings, client=client
            ).create()
        records = []
        for it in differ:
            item = by_id[it["id"]].item
            fields = {"input": item.input, "output": item.output}
            if item.reference is not None:
                fields["reference"] = item.reference
            suggestions = [rg.Suggestion("rationale", it["rationale"], agent=agent, type="model")]
            if it["judge"] in ("pass", "fail"):
                suggestions.append(rg.Suggestion("verdict", it["judge"], agent=agent, type="model"))
            records.append(
                rg.Record(
                    id=it["id"],
                    fields=fields,
                    suggestions=suggestions,
                    metadata={"human_verdict": it["human"], "judge_verdict": it["judge"]},
                )
            )
        if records:
            ds.records.log(records, batch_size=min(256, len(records)))
    except Exception as exc:  # noqa: BLE001 - the SDK raises many types; report one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise CalibrationError(f"Argilla at {url}: {redact(first, [key])}") from None
