"""`goldgate sim serve` in a child process on an ephemeral port, for tests, demos and benchmarks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from goldgate.errors import GoldgateError
from goldgate.processes import stop_child
from goldgate.sim.settings import SimSettings

__all__ = ["SimProcess", "settings_flags"]



_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class SimProcess:
    """`goldgate sim serve` in a child process on an ephemeral port, for tests, demos and benchmarks."""

    def __init__(
        self, settings: SimSettings | None = None, *, startup_timeout_s: float = 30.0
    ) -> None:
        self.settings = settings or SimSettings()
        self.startup_timeout_s = startup_timeout_s
        self.base_url = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        """The OpenAI base URL to hand to a client (`http://host:port/v1`)."""
        return f"{self.base_url}/v1"

    def start(self) -> Self:
        self._tmp = tempfile.TemporaryDirectory(prefix="goldgate-sim-")
        port_file = Path(self._tmp.name) / "port"
        log = Path(self._tmp.name) / "stderr.log"
        env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
        if self.settings.api_key is not None:
            env["GOLDGATE_SIM_API_KEY"] = self.settings.api_key.get_secret_value()
        cmd = [sys.executable, "-m", "goldgate", "sim", "serve", *settings_flags(self.settings)]
        cmd += ["--port", "0", "--port-file", str(port_file)]
        with log.open("wb") as err:
            self._proc = subprocess.Popen(
                cmd, env=env, stdin=subprocess.DEVNULL, stdout=err, stderr=err
            )
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
                self.stop()
                detail = lines[-1] if lines else "no output"
                raise GoldgateError(
                    f"goldgate sim exited with code {self._proc.returncode}: {detail}"
                )
            if port_file.exists():
                self.base_url = (
                    f"http://{self.settings.host}:{port_file.read_text(encoding='utf-8')}"
                )
                try:
                    self._call("GET", "/_sim/health")
                    return self
                except OSError:
                    pass
            time.sleep(0.02)
        self.stop()
        raise GoldgateError(
            f"goldgate sim did not answer /_sim/health within {self.startup_timeout_s:g}s"
        )

    def _call(self, method: str, path: str) -> dict[str, Any]:
        req = urllib.request.Request(
            self.base_url + path, method=method, data=b"" if method == "POST" else None
        )
        with _NO_PROXY.open(req, timeout=5) as resp:
            return json.loads(resp.read())

    def stats(self) -> dict[str, Any]:
        """The server's counters (see `/_sim/stats`)."""
        return self._call("GET", "/_sim/stats")

    def reset(self) -> None:
        """Zero the counters and the per-body attempt counts, so fault sequences start over."""
        self._call("POST", "/_sim/reset")

    def stop(self) -> None:
        stop_child(self._proc)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def settings_flags(settings: SimSettings) -> list[str]:
    """CLI flags that reproduce `settings` in a child that ignores any project config."""
    flags = ["--no-config", "--host", settings.host]
    for path in settings.keys:
        flags += ["--key", str(path.resolve())]
    if settings.label_field is not None:
        flags += ["--label-field", settings.label_field]
    if settings.api_key is not None:
        flags += ["--api-key-env", "GOLDGATE_SIM_API_KEY"]
    for name, value in settings.model_accuracy.items():
        flags += ["--model-accuracy", f"{name}={value!r}"]
    for name, value in settings.judge_model_agreement.items():
        flags += ["--judge-model-agreement", f"{name}={value!r}"]
    skip = {
        "host",
        "port",
        "keys",
        "label_field",
        "api_key",
        "model_accuracy",
        "judge_model_agreement",
    }
    for name, value in settings.model_dump(exclude=skip).items():
        flags += ["--" + name.replace("_", "-"), repr(value)]
    return flags
