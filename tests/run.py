"""Running the ``beehive`` command line in a subprocess, as a scheduled job would.

Crawls run in a fresh process each time (Twisted's reactor does not restart), with the
epoll reactor: on loopback it idles about 6 ms per request where asyncio idles 80 ms.
"""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

FAST_REACTOR = "TWISTED_REACTOR=twisted.internet.epollreactor.EPollReactor"
SUMMARY = re.compile(r"beehive summary: (.*)")


def beehive(*args: str, timeout: float = 120, env: dict | None = None, **kwargs):
    """Run ``beehive ARGS``; returns the CompletedProcess (text, output captured)."""
    return subprocess.run(
        [sys.executable, "-m", "archive", *map(str, args)],
        capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})}, **kwargs,
    )


def crawl(replica, out: Path, *args: str, **kwargs):
    """``beehive crawl`` against the replica, no delay, fast reactor."""
    return beehive("crawl", "--base-url", replica.base_url, "--out", out, "--delay", "0",
                   "-s", FAST_REACTOR, "-s", "BEEHIVE_RETRY_BACKOFF=0.05",
                   "-s", "BEEHIVE_BLOCK_BACKOFF=0.05", *args, **kwargs)


def summary(result) -> dict:
    """The figures of the run's 'beehive summary:' line."""
    match = SUMMARY.search(result.stderr)
    assert match, f"no summary line in:\n{result.stderr[-3000:]}"
    return dict(pair.split("=", 1) for pair in match.group(1).split())


def rows(db: Path, sql: str, params=()) -> list[dict]:
    """A query on a ledger, as dicts: what a test reads of the archive a crawl left."""
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql, params)]


def execute(db: Path, sql: str, params=()) -> None:
    """A statement on a ledger, as an operator would run it with plain SQL."""
    with sqlite3.connect(db) as conn:
        conn.execute(sql, params)


def free_port() -> int:
    """A port on 127.0.0.1 free just now, for a server a test starts on it at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
