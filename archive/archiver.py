"""One archive: its files and its ledger, kept in step.

The crawl's pipeline, ``beehive rebuild`` and ``beehive convert --out`` all come through
``Archiver.save``, so a file is rendered and recorded one way only. The order of the steps
is what keeps files and ledger in agreement across a crash: the file is written (atomically)
before its ledger row commits, and a file being replaced by one at a new path is removed
only after the row that points to the new path has committed.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from archive.ledger import Ledger
from archive.render import render_document
from archive.store import Store, release_path, sha256_text

DEFAULT_OUT = "beehive-archive"


class ArchiveBusy(RuntimeError):
    """Another process holds this archive's lock."""


def body_of(document: str) -> str:
    """The Markdown body of a rendered document: everything after the front matter."""
    _, _, rest = document[4:].partition("\n---\n")
    return rest[1:] if rest.startswith("\n") else rest


@dataclass
class Saved:
    outcome: str  # "new", "updated" or "unchanged"
    path: str


class Archiver:
    def __init__(self, out: str | os.PathLike = DEFAULT_OUT, db: str | os.PathLike | None = None):
        self.store = Store(out)
        self.ledger = Ledger(db or Path(out) / "ledger.db")
        self._lock_file = None

    def lock(self) -> "Archiver":
        """Take the archive for this process, or raise ArchiveBusy.

        flock is released by the kernel when the holder dies, so a killed run leaves no
        stale lock behind.
        """
        handle = open(f"{self.ledger.path}.lock", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise ArchiveBusy(f"another beehive run is using {self.ledger.path}") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._lock_file = handle
        return self

    def close(self) -> None:
        self.ledger.close()
        if self._lock_file:
            self._lock_file.close()
            self._lock_file = None

    def save(self, release, requested_url: str | None = None) -> Saved:
        """Render a parsed release and bring its file and ledger row up to date."""
        document = render_document(release)
        digest = sha256_text(document)
        path = release_path(release.date, release.slug)
        old = self.ledger.release(release.url)
        if old and old["sha256"] == digest and old["path"] == path \
                and self.store.read(path) == document:
            self.ledger.mark_seen(release.url, requested_url)
            return Saved("unchanged", path)
        self.store.write(path, document)
        self.ledger.save_release(release, path=path, sha256=digest, body=body_of(document),
                                 changed=bool(old) and old["sha256"] != digest,
                                 requested_url=requested_url)
        if old and old["path"] != path:
            self.store.remove(old["path"])
        return Saved("updated" if old else "new", path)
