"""An archive crawled once from the replica, for the tests of the offline commands
(rebuild, verify, status, export, search). Each test gets its own copy, modification times
included, so tests may edit, delete and rebuild freely."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.replica import Replica
from tests.run import crawl

_PRISTINE: dict[str, Path] = {}


def pristine(tmp_path_factory) -> Path:
    """The crawled archive (crawled on first use, once per test session). Do not modify."""
    if "archive" not in _PRISTINE:
        out = tmp_path_factory.mktemp("pristine") / "archive"
        with Replica() as site:
            result = crawl(site, out)
        assert result.returncode == 0, result.stderr[-3000:]
        _PRISTINE["archive"] = out
    return _PRISTINE["archive"]


def copy_archive(tmp_path_factory, tmp_path: Path) -> Path:
    out = tmp_path / "archive"
    shutil.copytree(pristine(tmp_path_factory), out, copy_function=shutil.copy2)
    for lock in ("ledger.db.lock", "ledger.db.writer.lock"):
        (out / lock).unlink(missing_ok=True)
    return out


def tree(out: Path) -> dict[str, bytes]:
    """Every file under releases/, by archive-relative path, with its bytes."""
    return {path.relative_to(out).as_posix(): path.read_bytes()
            for path in sorted((out / "releases").rglob("*")) if path.is_file()}


def mtimes(out: Path) -> dict[str, int]:
    return {path.relative_to(out).as_posix(): path.stat().st_mtime_ns
            for path in sorted((out / "releases").rglob("*")) if path.is_file()}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run(*args, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    """``beehive ARGS`` in a subprocess, ignoring any BEEHIVE_OUT/BEEHIVE_DB set outside."""
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("BEEHIVE_OUT", "BEEHIVE_DB")}
    environment.update(env or {})
    kwargs.setdefault("capture_output", True)
    return subprocess.run([sys.executable, "-m", "archive", *map(str, args)], text=True,
                          timeout=120, env=environment, **kwargs)
