"""argilla-server's CLI with a search engine that osmem-server can serve.

Runs *inside the argilla-server venv* (`python argilla_server_launch.py start ...`); goldgate never
imports it. Argilla updates a record's responses in the index with painless scripts, which osmem
does not implement, so the web UI's "Submit" would fail with HTTP 500. This subclass does the same
updates as read-modify-write of the document, registered under the engine name Argilla already
uses (`ARGILLA_SEARCH_ENGINE=opensearch`). It also keeps the indexed `updated_at` moving when
answers change, so goldgate's incremental pulls (a filter on `updated_at`) see every new answer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from argilla_server.cli import app
from argilla_server.search_engine import SearchEngine
from argilla_server.search_engine.commons import es_index_name_for_dataset
from argilla_server.search_engine.opensearch import OpenSearchEngine


def _now() -> str:
    """Naive UTC, the way Argilla stores its timestamps."""
    return datetime.now(timezone.utc).replace(tzinfo=None).isoformat()  # noqa: UP017 (3.10 venvs)


@SearchEngine.register(engine_name="opensearch")
class OsmemSearchEngine(OpenSearchEngine):
    async def _rewrite(self, dataset: Any, record_id: str, change: Callable[[dict[str, Any]], None]) -> None:
        """Read the record's document, change it in Python, index it whole again."""
        index = es_index_name_for_dataset(dataset)
        source = (await self.client.get(index=index, id=record_id))["_source"]
        change(source)
        await self._bulk_op_request([{"_op_type": "index", "_id": record_id, "_index": index, **source}])

    async def _set_response(self, response: Any, keep: bool) -> None:
        es_response = self._map_record_response_to_es(response)

        def change(source: dict[str, Any]) -> None:
            kept = [r for r in source.get("responses") or [] if r.get("id") != es_response["id"]]
            source["responses"] = [*kept, es_response] if keep else kept
            source["updated_at"] = _now()

        await self._rewrite(response.record.dataset, str(response.record.id), change)

    async def partial_record_update(self, record: Any, **update: Any) -> None:
        await super().partial_record_update(record, **update, updated_at=_now())

    async def update_record_response(self, response: Any) -> None:
        await self._set_response(response, keep=True)

    async def delete_record_response(self, response: Any) -> None:
        await self._set_response(response, keep=False)

    async def delete_record_suggestion(self, suggestion: Any) -> None:
        await self._rewrite(suggestion.record.dataset, str(suggestion.record_id),
                            lambda source: (source.get("suggestions") or {}).pop(suggestion.question.name, None))


def __getattr__(name: str) -> Any:
    """`asgi`: Argilla's app, imported by each uvicorn worker process together with the engine above."""
    if name == "asgi":
        from argilla_server import app as asgi

        return asgi
    raise AttributeError(name)


@app.command("serve")
def serve(host: str = "127.0.0.1", port: int = 6900, workers: int = 1) -> None:
    """`start` with several worker processes: Argilla's bulk upserts are CPU-bound in Python, so one
    process caps a push at one core."""
    import uvicorn

    uvicorn.run(f"{Path(__file__).stem}:asgi", host=host, port=port, workers=workers, access_log=False)


if __name__ == "__main__":
    app()
