"""One archive: its files and its ledger, kept in step.

The crawl's pipeline, ``beehive rebuild`` and ``beehive convert --out`` all come through the
same steps, so a file is rendered and recorded one way only:

- :func:`render` is pure (a parsed release in, a picklable :class:`Rendered` out: path, text,
  hash and the ledger's fields);
- :func:`place` is the file step: it writes the files whose content differs, atomically and
  durably, and leaves the others alone; it touches no ledger, so it runs in any process;
- :meth:`Archiver.record` is the ledger step: the rows, one transaction, in the archive's
  own process.

:meth:`Archiver.commit` is the last two for rendered releases, and ``Archiver.save`` all three
for one release (what the crawl calls); ``beehive rebuild`` runs render and place on every
core and records in order. The order of the steps is what keeps files and ledger in agreement
across a crash: a file is written (atomically, durably) before its ledger row commits, and a
file being replaced by one at a new path is removed only after the row that points to the new
path has committed. A file whose content is already right is not rewritten, so its
modification time stays.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from archive.ledger import Ledger, compress, decompress, release_fields
from archive.parse import SITE, ParseError, parse_release, reference_slug
from archive.render import render_document
from archive.store import Store, UnsafePath, release_path, sha256_text

DEFAULT_OUT = "beehive-archive"
# Seconds to wait for a killed crawl's writer process to end (it finishes the release it is
# saving: scraper.worker.serve) before taking its archive.
WRITER_GRACE = 10.0


class ArchiveBusy(RuntimeError):
    """Another process holds this archive's lock."""


def body_of(document: str) -> str:
    """The Markdown body of a rendered document: everything after the front matter."""
    _, _, rest = document[4:].partition("\n---\n")
    return rest[1:] if rest.startswith("\n") else rest


@dataclass(frozen=True)
class Rendered:
    """A release rendered for the archive: everything ``commit`` needs, and picklable."""

    url: str
    path: str
    document: str
    sha256: str
    fields: dict  # the ledger's parsed fields (see ledger.release_fields)
    region: bytes | None = None  # compressed content region to store; None keeps the stored one


def render(release, *, keep_region: bool = True) -> Rendered:
    """Parse result -> file text, path, hash and ledger fields. Pure: no I/O."""
    document = render_document(release)
    return Rendered(
        url=release.url,
        path=release_path(release.date, release.archive_slug),  # the reference's file name
        document=document,
        sha256=sha256_text(document),
        fields=release_fields(release),
        region=compress(release.region_html) if keep_region else None,
    )


@dataclass
class Saved:
    outcome: str  # "new", "updated" or "unchanged"
    path: str
    changed: bool = False  # the document differs from the one the ledger recorded
    revised: bool = False  # a new version of the release: a revision was added


@dataclass
class Placed:
    """A rendered release whose file is in place, with its ledger row as it was (or None)."""

    item: Rendered
    old: dict | None
    saved: Saved

    @property
    def row_current(self) -> bool:
        """The ledger row already records this rendering: same hash, path and parsed fields.

        (The row's body is the document's, so the same hash means the same body.)
        """
        old, item = self.old, self.item
        return (old is not None and old["sha256"] == item.sha256 and old["path"] == item.path
                and all(old[name] == value for name, value in item.fields.items()))


def place(store: Store, items: Sequence[tuple[Rendered, dict | None]]) -> list[Placed]:
    """The file step: bring each release's file to its rendered document.

    ``items`` are (rendered release, its ledger row or None). A file that already holds
    exactly the document is left alone, its modification time kept, whatever the ledger
    says; every other file is written atomically, and all of them are durable on return, so
    the ledger rows that name them may commit. Runs in any process: it touches only files.
    """
    placed, writes = [], []
    for item, old in items:
        in_place = store.read_bytes(item.path) == item.document.encode("utf-8", "surrogatepass")
        if not in_place:
            writes.append((item.path, item.document))
        if old is None:
            saved = Saved("new", item.path)
        elif in_place and old["sha256"] == item.sha256 and old["path"] == item.path:
            saved = Saved("unchanged", item.path)
        else:
            saved = Saved("updated", item.path, changed=old["sha256"] != item.sha256)
        placed.append(Placed(item, old, saved))
    store.write_many(writes)
    return placed


class Archiver:
    def __init__(self, out: str | os.PathLike = DEFAULT_OUT, db: str | os.PathLike | None = None,
                 schedule=None, *, readonly: bool = False):
        self.store = Store(out)
        self.ledger = Ledger(db or Path(out) / "ledger.db", schedule, readonly=readonly)
        self.readonly = readonly
        self._lock_file = self._writer_lock_file = None

    def lock(self) -> "Archiver":
        """Take the archive for this process, or raise ArchiveBusy.

        flock is released by the kernel when the holder dies, so a killed run leaves no
        stale lock behind. A reader (``readonly``) of an archive it may not write (a
        mounted backup) cannot make the lock file, and goes on without: nobody else with
        the same rights can be writing it either.
        """
        try:
            handle = open(f"{self.ledger.path}.lock", "a+")
        except OSError as error:
            if self.readonly and error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                return self
            raise
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
        try:
            self._wait_for_writer()
        except ArchiveBusy:
            self.close()
            raise
        return self

    def _wait_for_writer(self) -> None:
        """A crawl killed with SIGKILL takes its lock with it, but its writer process lives
        on while it finishes the release it is saving: wait until it is gone, so that no
        two processes ever write this archive at once."""
        with open(f"{self.ledger.path}.writer.lock", "a+") as handle:
            deadline = time.monotonic() + WRITER_GRACE
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return  # closing the file lets it go again
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise ArchiveBusy("a writer process of an earlier run is still "
                                          f"using {self.ledger.path}") from None
                    time.sleep(0.05)

    def hold_writer_lock(self) -> None:
        """For the crawl's writer process, which takes the archive's lock of its own, until
        it ends (see ``_wait_for_writer``)."""
        handle = open(f"{self.ledger.path}.writer.lock", "a+")
        fcntl.flock(handle, fcntl.LOCK_EX)
        self._writer_lock_file = handle

    def close(self) -> None:
        self.ledger.close()
        for name in ("_lock_file", "_writer_lock_file"):
            if getattr(self, name):
                getattr(self, name).close()
                setattr(self, name, None)

    def save(self, release, requested_url: str | None = None,
             validators: dict | None = None) -> Saved:
        """Render a parsed release and bring its file and ledger row up to date.

        When the request for a known release landed on another canonical URL (its slug was
        renamed), the old row and its history move to the new URL in the same transaction,
        and the old file is removed after it, so it is archived once. ``validators`` are
        the response's ETag and Last-Modified, kept for conditional rechecks.
        """
        return self.save_rendered(render(release), requested_url, validators)

    def save_rendered(self, item: Rendered, requested_url: str | None = None,
                      validators: dict | None = None, alias: str | None = None) -> Saved:
        """``save`` for a release rendered already (in another process, say). ``alias`` is
        another URL of the release (its /node/<n> shortlink), recorded with it."""
        captures = {item.url: validators} if validators is not None else None
        aliases = {item.url: alias} if alias else None
        return self.commit([item], [requested_url], captures=captures, aliases=aliases)[0]

    def commit(self, items: Sequence[Rendered], requested_urls: Sequence[str | None] = (),
               *, seen: bool = True, captures: dict | None = None,
               aliases: dict | None = None) -> list[Saved]:
        """Bring files and ledger rows up to date for rendered releases: the file step, then
        the ledger step in one transaction.

        ``seen`` is true when the releases were just fetched from the site (a crawl): their
        rows get last_seen. A rebuild passes false: it saw nothing, so only files, hashes,
        paths, bodies and parsed fields change. ``captures`` and ``aliases``: see
        Ledger.save_rendered.
        """
        if seen:
            self.adopt_imported(items)
        olds = self.ledger.rows_for([item.url for item in items])
        owners = self.ledger.path_owners([item.path for item in items])
        for item in items:
            if owners.get(item.path, item.url) != item.url:
                # Two URLs whose slugs fold to one file name: never overwrite the other.
                raise UnsafePath(f"{item.path} already holds {owners[item.path]}")
        placed = place(self.store, [(item, olds.get(item.url)) for item in items])
        self.record(placed, requested_urls, seen=seen, captures=captures, aliases=aliases)
        return [one.saved for one in placed]

    def adopt_imported(self, items: Sequence[Rendered]) -> None:
        """A captured release whose URL is not the one its file gives (a slug with a macron
        or a %-escape, which the reference archive folds: Release.archive_url), and that
        the archive holds imported under that folded URL: the imported release takes the
        page's URL first (Ledger.adopt), so that the capture finds it as the crawl finds
        any imported release, and the folded URL becomes an alias."""
        for item in items:
            folded = SITE + "/release/" + reference_slug(item.fields["slug"])
            if folded != item.url:
                self.ledger.adopt(folded, item.url, item.fields["slug"])

    def record(self, placed: Sequence[Placed], requested_urls: Sequence[str | None] = (),
               *, seen: bool, captures: dict | None = None, aliases: dict | None = None) -> None:
        """The ledger step, for releases whose files ``place`` has put in place: their rows
        in one transaction, then the files they moved away from are removed.

        A crawl's capture whose document differs from the recorded one is a new revision
        when it is an edit on the site, not merely the current converter reading the
        stored page differently (see ``is_edit``); a rebuild never makes a revision.
        """
        requested_urls = list(requested_urls) + [None] * (len(placed) - len(requested_urls))
        rows, seen_urls, moved = [], [], []
        for one, requested in zip(placed, requested_urls):
            item, old = one.item, one.old
            # An imported release fetched for the first time becomes captured (its row gets
            # the region and the page's fields) even when its file is already right.
            imported = bool(old and old.get("origin") == "imported")
            if seen and one.saved.outcome == "unchanged" and not imported:
                seen_urls.append((item, requested, old))
            elif seen or not one.row_current:
                # A rebuild also updates a row whose file was right but whose fields the
                # parser now reads differently (the New Zealand date, say).
                revise = seen and (old is None or (one.saved.changed and self.is_edit(item)))
                one.saved.revised = revise
                rows.append((item, old, requested, one.saved.changed, revise))
            if old and old["path"] != item.path:
                moved.append(old["path"])
        moved += self.ledger.save_rendered(rows, seen=seen, seen_urls=seen_urls,
                                           captures=captures, aliases=aliases)
        for path in moved:
            if not self.ledger.path_known(path):
                self.store.remove(path)

    def is_edit(self, item: Rendered) -> bool:
        """Does this rendering differ from the latest stored version rendered the same way?

        The recorded file may come from an older converter: then a capture that renders
        differently is the converter's doing, not the site's, and is no new revision.
        """
        row = self.ledger.db.execute("select region from releases where url = ?",
                                     [item.url]).fetchone()
        if not row or row[0] is None:
            return True
        try:
            stored = render(parse_release(decompress(row[0]), item.url), keep_region=False)
        except (ParseError, UnsafePath, ValueError):
            return True
        return stored.document != item.document
