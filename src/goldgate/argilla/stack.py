"""The local Argilla stack: argilla-server (own venv) + osmem-server + redis, started without Docker.

argilla-server's pins clash with goldgate's own (litellm), so it lives in a managed venv under the
state folder, created once and reused. Everything the stack writes — venv, SQLite database, logs,
PIDs, credentials — stays in that folder, and `down` stops only the processes `up` started (checked
by PID *and* command line, so a recycled PID is never killed). osmem keeps its index in memory, so
every `up` rebuilds it from the database: annotations live in SQLite and survive any restart. The
database is never deleted.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from goldgate.errors import GoldgateError
from goldgate.processes import pid_alive

__all__ = [
    "SERVER_PINS",
    "ArgillaStack",
    "Credentials",
    "ProcessState",
    "StackError",
    "StackSettings",
    "StackStatus",
]

SERVER_PINS = ("argilla-server==2.8.0", "click==8.1.8", "osmem-server==0.1.6")
USERNAME = "argilla"  # the owner user `create_default` makes; its workspace has the same name
_START_ORDER = ("redis", "osmem", "server")
LAUNCHER = Path(__file__).with_name("server_launch.py")  # runs in the server venv


class StackError(GoldgateError):
    """The local Argilla stack could not be started, stopped or inspected."""


@dataclass(frozen=True)
class StackSettings:
    state_dir: Path
    host: str = "127.0.0.1"
    port: int = 6900
    search_port: int = 9200
    redis_port: int = 6379
    python: str = sys.executable
    ready_timeout_s: float = 180.0
    # argilla-server validates and stores records in Python: one process caps a push at one core.
    workers: int = field(default_factory=lambda: max(1, min(4, os.cpu_count() or 1)))

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class Credentials:
    """The owner user's login. `repr` hides the secrets so they never reach a log by accident."""

    username: str
    password: str = field(repr=False)
    api_key: str = field(repr=False)


@dataclass(frozen=True)
class ProcessState:
    name: str
    pid: int
    alive: bool


@dataclass(frozen=True)
class StackStatus:
    url: str | None
    processes: tuple[ProcessState, ...]
    healthy: bool

    @property
    def running(self) -> bool:
        return bool(self.processes) and all(p.alive for p in self.processes) and self.healthy


class ArgillaStack:
    """Start, stop and inspect one local stack whose files live in `settings.state_dir`."""

    def __init__(self, settings: StackSettings, say: Callable[[str], None] = lambda _m: None) -> None:
        self.settings = settings
        self.say = say
        d = settings.state_dir
        self.venv = d / "venv"
        self.home = d / "home"
        self.db = d / "argilla.db"
        self.logs = d / "logs"
        self.state_file = d / "stack.json"
        self.credentials_file = d / "credentials.json"
        # Signs the web UI's session tokens; shared so every server process accepts every token
        # (Argilla's default is a random key per process).
        self._auth_secret = secrets.token_hex(32)

    # -- public ---------------------------------------------------------------------------------

    def up(self) -> Credentials:
        """Start the stack and return the owner's credentials once `/api/v1/me` answers."""
        current = self.status()
        if current.running:
            raise StackError(f"Argilla is already running at {current.url} (stop it with `goldgate argilla down`)")
        if current.processes:
            self.say("a previous stack is partly down; stopping what is left of it")
            self.down()
        redis_bin = shutil.which("redis-server")
        if redis_bin is None:
            raise StackError("redis-server not found: install it with `apt-get install redis-server`")
        s = self.settings
        for what, port in (("Argilla", s.port), ("osmem", s.search_port), ("redis", s.redis_port)):
            _check_port_free(s.host, port, what)
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        self.home.mkdir(exist_ok=True)
        self._ensure_venv()
        creds = self._ensure_credentials()
        started: dict[str, dict[str, Any]] = {}
        try:
            started["redis"] = self._spawn(
                "redis",
                [redis_bin, "--port", str(s.redis_port), "--bind", s.host, "--save", "", "--appendonly", "no",
                 "--dir", str(self.settings.state_dir)],
                started,
            )
            _wait_for(lambda: _redis_ping(s.host, s.redis_port), 20, "redis", self.logs / "redis.log",
                      started["redis"]["pid"])
            osmem_bin = self._venv_run(["-c", "import osmem_server; print(osmem_server.resolve_binary())"],
                                       "setup").strip()
            started["osmem"] = self._spawn(
                "osmem", [osmem_bin, "-addr", f"{s.host}:{s.search_port}", "-no-stdin-watch", "-no-ja"], started)
            _wait_for(lambda: _http_ok(f"http://{s.host}:{s.search_port}/"), 20, "osmem",
                      self.logs / "osmem.log", started["osmem"]["pid"])
            self.say("migrating the database")
            self._venv_run(["-m", "argilla_server", "database", "migrate"], "setup")
            self._venv_run(["-m", "argilla_server", "database", "users", "create_default", "--quiet",
                            "--api-key", creds.api_key, "--password", creds.password], "setup", secret=True)
            self.say("rebuilding the search index from the database")
            self._venv_run(["-m", "argilla_server", "search-engine", "reindex"], "setup")
            _use_wal(self.db)
            started["server"] = self._spawn(
                "server", [str(self._python()), str(LAUNCHER), "serve", "--host", s.host,
                           "--port", str(s.port), "--workers", str(s.workers)], started)
            _wait_for(lambda: self._me_status(creds) is not None, s.ready_timeout_s, "argilla-server",
                      self.logs / "server.log", started["server"]["pid"])
            if self._me_status(creds) == 401:
                raise StackError(
                    f"the database {self.db} has an owner user whose API key is not the one in "
                    f"{self.credentials_file}; restore that file or move the database away")
        except BaseException:
            self.down()
            raise
        return creds

    def down(self) -> list[str]:
        """Stop the processes `up` started (newest first); return the names stopped."""
        state = self._read_state()
        stopped = []
        for name in reversed(_START_ORDER):
            proc = state.get("processes", {}).get(name)
            if proc and _ours(proc):
                _terminate(proc["pid"])
                stopped.append(name)
        self.state_file.unlink(missing_ok=True)
        return stopped

    def status(self) -> StackStatus:
        state = self._read_state()
        procs = tuple(
            ProcessState(name, p["pid"], _ours(p))
            for name in _START_ORDER if (p := state.get("processes", {}).get(name))
        )
        url = state.get("url")
        healthy = False
        if url and procs and all(p.alive for p in procs):
            healthy = _http_ok(f"{url}/api/v1/version")
        return StackStatus(url, procs, healthy)

    def credentials(self) -> Credentials:
        try:
            data = json.loads(self.credentials_file.read_text(encoding="utf-8"))
            return Credentials(data["username"], data["password"], data["api_key"])
        except FileNotFoundError:
            raise StackError(f"{self.credentials_file}: not found (start the stack with `goldgate argilla up`)") from None
        except (OSError, ValueError, KeyError) as exc:
            raise StackError(f"{self.credentials_file}: unreadable ({type(exc).__name__})") from None

    # -- internals ------------------------------------------------------------------------------

    def _python(self) -> Path:
        return self.venv / "bin" / "python"

    def _ensure_venv(self) -> None:
        marker = self.venv / ".goldgate-pins"
        wanted = " ".join(SERVER_PINS)
        if self._python().exists() and marker.exists() and marker.read_text(encoding="utf-8") == wanted:
            return
        self.say(f"installing {wanted} into {self.venv} (first start only, about a minute)")
        log = self.logs / "pip.log"
        with log.open("ab") as fh:
            steps = (
                [self.settings.python, "-m", "venv", "--clear", str(self.venv)],
                [str(self._python()), "-m", "pip", "install", "--disable-pip-version-check", "-q", *SERVER_PINS],
            )
            for cmd in steps:
                if subprocess.run(cmd, check=False, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode:
                    raise StackError(f"installing argilla-server into {self.venv} failed (see {log})")
        marker.write_text(wanted, encoding="utf-8")

    def _ensure_credentials(self) -> Credentials:
        if self.credentials_file.exists():
            return self.credentials()
        if self.db.exists():
            raise StackError(
                f"{self.db} exists but {self.credentials_file} is missing; restore it (the database is "
                "never deleted by goldgate)")
        creds = Credentials(USERNAME, secrets.token_urlsafe(12), "gg." + secrets.token_urlsafe(32))
        fd = os.open(self.credentials_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"username": creds.username, "password": creds.password, "api_key": creds.api_key}, fh)
        return creds

    def _env(self) -> dict[str, str]:
        s = self.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ARGILLA_", "VIRTUAL_ENV", "PYTHON"))}
        env.update(
            ARGILLA_HOME_PATH=str(self.home),
            # Several server processes share the file: wait for the write lock rather than fail.
            ARGILLA_DATABASE_URL=f"sqlite+aiosqlite:///{self.db}?timeout=60",
            ARGILLA_SEARCH_ENGINE="opensearch",
            ARGILLA_ELASTICSEARCH=f"http://{s.host}:{s.search_port}",
            ARGILLA_REDIS_URL=f"redis://{s.host}:{s.redis_port}/0",
            ARGILLA_ENABLE_TELEMETRY="0",
            ARGILLA_AUTH_SECRET_KEY=self._auth_secret,
            HF_HUB_OFFLINE="1",
            HF_HUB_DISABLE_TELEMETRY="1",
        )
        return env

    def _venv_run(self, args: list[str], log_name: str, *, secret: bool = False) -> str:
        log = self.logs / f"{log_name}.log"
        proc = subprocess.run([str(self._python()), *args], check=False, env=self._env(), capture_output=True, text=True,
                              stdin=subprocess.DEVNULL)
        with log.open("a", encoding="utf-8") as fh:
            # create_default echoes nothing with --quiet, but its argv holds the key: never log it.
            shown = args[:5] if secret else args
            fh.write(f"$ python {' '.join(shown)}\n{proc.stdout}{proc.stderr}")
        if proc.returncode:
            raise StackError(f"`python {' '.join(args[:4])}` failed in the Argilla venv (see {log})")
        return proc.stdout

    def _spawn(self, name: str, cmd: list[str], started: dict[str, dict[str, Any]]) -> dict[str, Any]:
        log = (self.logs / f"{name}.log").open("ab")
        proc = subprocess.Popen(cmd, env=self._env(), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, cwd=self.settings.state_dir)
        log.close()
        entry = {"pid": proc.pid, "exe": cmd[0]}
        started[name] = entry
        self._write_state(started)
        return entry

    def _write_state(self, processes: dict[str, dict[str, Any]]) -> None:
        data = {"url": self.settings.url, "processes": processes}
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        os.replace(tmp, self.state_file)

    def _read_state(self) -> dict[str, Any]:
        try:
            return json.loads(self.state_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            raise StackError(f"{self.state_file}: unreadable; remove it once no stack process runs") from None

    def _me_status(self, creds: Credentials) -> int | None:
        req = urllib.request.Request(f"{self.settings.url}/api/v1/me", headers={"X-Argilla-Api-Key": creds.api_key})
        try:
            with urllib.request.urlopen(req, timeout=2) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return None


def _use_wal(db: Path) -> None:
    """WAL lets the server processes read while one of them writes (a push next to a pull)."""
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")


def _check_port_free(host: str, port: int, what: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            raise StackError(f"port {host}:{port} (for {what}) is already in use; stop what holds it "
                             "or choose another port") from None


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def _redis_ping(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _ours(proc: dict[str, Any]) -> bool:
    """True when `proc` still runs the program we started (not a recycled PID)."""
    if not pid_alive(proc["pid"]):
        return False
    try:
        cmdline = Path(f"/proc/{proc['pid']}/cmdline").read_bytes()
    except OSError:
        return False
    # redis rewrites its process title, so match the program path rather than the whole argv.
    return proc["exe"].encode() in cmdline


def _terminate(pid: int, grace_s: float = 15.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _wait_for(check: Callable[[], bool], timeout_s: float, what: str, log: Path, pid: int) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        if not pid_alive(pid):
            raise StackError(f"{what} exited during start-up (see {log})")
        time.sleep(0.25)
    raise StackError(f"{what} did not become ready within {timeout_s:.0f} s (see {log})")
