"""A real local Argilla for the integration tests, and small projects that sync with it.

The stack is started once per CI run by `.ci/run` (`goldgate argilla up`); these fixtures only find
it. Outside CI a missing stack skips the tests with the command that starts it; in CI (`CI` set) a
missing stack is a failure, so the tests can never silently not run there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from goldgate.argilla.stack import ArgillaStack, StackSettings

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class LiveArgilla:
    url: str
    api_key: str
    password: str
    state_dir: Path


def _state_dir() -> Path:
    return Path(os.environ.get("GOLDGATE_ARGILLA_STATE", REPO / ".goldgate" / "argilla")).resolve()


@pytest.fixture(scope="session")
def argilla() -> LiveArgilla:
    stack = ArgillaStack(StackSettings(state_dir=_state_dir()))
    status = stack.status()
    if not status.running or not status.url:
        msg = (f"the local Argilla stack in {stack.settings.state_dir} is not running "
               "(start it with `goldgate argilla up`)")
        if os.environ.get("CI"):
            pytest.fail(msg + "; in CI .ci/run must start it", pytrace=False)
        pytest.skip(msg)
    creds = stack.credentials()
    return LiveArgilla(status.url, creds.api_key, creds.password, stack.settings.state_dir)


@pytest.fixture(scope="session")
def owner(argilla: LiveArgilla):
    import argilla as rg

    return rg.Argilla(api_url=argilla.url, api_key=argilla.api_key)


@dataclass
class Project:
    root: Path
    name: str
    env: dict[str, str]

    @property
    def golden(self) -> Path:
        return self.root / "evals" / "goldens" / f"{self.name}.jsonl"

    @property
    def lock(self) -> Path:
        return self.golden.with_name(f"{self.name}.argilla.lock.json")

    def write(self, records: list[dict[str, Any]]) -> None:
        from goldgate.goldens.records import write_goldens

        write_goldens(self.golden, records)

    def read(self) -> dict[str, dict[str, Any]]:
        return {r["id"]: r for r in map(json.loads, self.golden.read_text().splitlines())}

    def goldgate(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "goldgate", *args], cwd=self.root, env=self.env,
                              capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"goldgate {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc


@pytest.fixture
def make_project(tmp_path: Path, argilla: LiveArgilla) -> Callable[..., Project]:
    """A goldgate project whose golden syncs with a fresh dataset on the live Argilla."""

    def make(argilla_table: str = 'url = "local"\n', **env: str) -> Project:
        name = f"t-{uuid.uuid4().hex[:10]}"
        root = tmp_path / name
        (root / "evals" / "goldens").mkdir(parents=True)
        state = str(argilla.state_dir).replace("\\", "/")
        (root / "pyproject.toml").write_text(
            '[tool.goldgate]\ngoldens = "evals/goldens"\n\n[tool.goldgate.argilla]\n'
            f'state_dir = "{state}"\n{argilla_table}', encoding="utf-8")
        base = {k: v for k, v in os.environ.items() if not k.startswith("ARGILLA_")}
        return Project(root, name, {**base, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **env})

    return make


@pytest.fixture
def annotators(owner) -> Callable[[int], list[Any]]:
    """Fresh annotator users in the owner's workspace, each with its own SDK client."""
    import argilla as rg

    def make(n: int) -> list[tuple[Any, Any]]:
        ws = owner.workspaces("argilla")
        out = []
        for _ in range(n):
            user = rg.User(username=f"ann-{uuid.uuid4().hex[:8]}", password=uuid.uuid4().hex, role="annotator",
                           client=owner).create()
            ws.add_user(user.username)
            api_key = owner.http_client.get(f"/api/v1/users/{user.id}").json()["api_key"]
            client = rg.Argilla(api_url=owner.api_url, api_key=api_key)
            out.append((user, client))
        return out

    return make
