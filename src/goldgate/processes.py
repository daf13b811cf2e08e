"""Local processes: whether one still runs (cache claims, the Argilla stack) and how a child server
(the simulator, llama.cpp) is stopped."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

__all__ = ["pid_alive", "stop_child"]


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (a dead child not yet reaped counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


def stop_child(proc: subprocess.Popen | None, timeout_s: float = 10) -> None:
    """Terminate a child that still runs, then kill it if it has not exited within `timeout_s`."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
