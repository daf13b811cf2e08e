"""Plain helpers for the Argilla integration tests (fixtures live in conftest.py)."""

from __future__ import annotations

from typing import Any


def record(i: int, label: str | None, split: str = "test", source: str = "human") -> dict[str, Any]:
    return {"id": f"r{i:04d}", "inputs": {"text": f"ticket number {i}: please help"},
            "expected": {"label": label} if label else {}, "metadata": {"split": split},
            "provenance": {"source": source if label else "unlabelled"}}


def respond(owner, client, dataset: str, record_id: str, status: str, label: str | None = None) -> None:
    """Answer one record as `client`'s user, through the REST endpoint the web UI posts to."""
    ds = owner.datasets(dataset, workspace="argilla")  # annotators may not list records this way
    target = next(r for r in ds.records(with_responses=False, with_suggestions=False) if r.id == record_id)
    values = {"label": {"value": label}} if label is not None else {}
    resp = client.http_client.post(f"/api/v1/records/{target._server_id}/responses",
                                   json={"values": values, "status": status})
    assert resp.status_code == 201, resp.text
