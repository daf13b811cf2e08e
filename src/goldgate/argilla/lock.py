"""The lock file next to each golden (`<name>.argilla.lock.json`): per record, the content hash of
the local record and of the remote decision at the last sync, so both directions move only what
changed and a record changed on both sides is a conflict."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from goldgate.argilla.settings import ArgillaSyncError
from goldgate.files import read_versioned_if_any, write_atomic

__all__ = ["LOCK_SCHEMA", "Lock", "content_hash", "load_lock", "local_hash", "lock_path", "save_lock"]

LOCK_SCHEMA = "goldgate.argilla-lock/v1"


@dataclass
class Lock:
    url: str
    workspace: str
    dataset: str
    dataset_id: str
    schema: dict[str, Any]
    pulled_at: str | None = None  # server `updated_at` watermark of the last pull
    records: dict[str, dict[str, str]] = field(default_factory=dict)  # id → {local, remote, sent}

    def to_dict(self) -> dict[str, Any]:
        return {"lock": LOCK_SCHEMA, **asdict(self), "records": dict(sorted(self.records.items()))}


def lock_path(golden_path: Path) -> Path:
    return golden_path.with_name(f"{golden_path.stem}.argilla.lock.json")


def load_lock(path: Path) -> Lock | None:
    data = read_versioned_if_any(path, schema=LOCK_SCHEMA, key="lock", error=ArgillaSyncError,
                                 missing="delete the lock file to sync from scratch")
    if data is None:
        return None
    return Lock(data["url"], data["workspace"], data["dataset"], data["dataset_id"], data["schema"],
                data.get("pulled_at"), data.get("records", {}))


def save_lock(path: Path, lock: Lock) -> None:
    write_atomic(path, json.dumps(lock.to_dict(), indent=1, ensure_ascii=False) + "\n")


def content_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def local_hash(rec: dict[str, Any]) -> str:
    return content_hash([rec["inputs"], rec["expected"], rec["metadata"].get("split")])


# -- remote decisions -----------------------------------------------------------------------------


