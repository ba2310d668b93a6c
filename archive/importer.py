"""``beehive import``: start an archive from the files of a reference archive.

The public reference archive (``marcus-crane/beehive-markdown``) holds some 55,000 releases in
this archive's own format, ``releases/YYYY/MM/YYYY-MM-DD-<slug>.md``. Importing them gives a
complete archive at once; the crawl then fetches only what they lack and, over the following
months, the page behind each of them (its recheck).

- :func:`check_file` is pure: an archive-relative path and the file's bytes in, a
  :class:`Good` release (its ledger fields, body and hash) or a :class:`Refused` out.
- :func:`import_folder` is the batch loop: two passes over the folder (the first reads only
  each file's ``url`` line, to refuse two files that claim one URL), then, a batch at a time,
  the files written atomically and durably into the archive (as the crawl writes them), and
  then their rows committed, one transaction a batch. A crash at any point leaves files
  without rows at worst (strays, which ``verify`` names); a rerun writes nothing twice and
  completes the rows. Memory holds one batch, and the set of URLs seen.

An imported release's row has ``origin = 'imported'``, no region (there is no page to
render it from), no ``last_seen`` (the site has not been asked), its publication time at
midnight UTC of its date (the file gives the date only) and no New Zealand date; its revision
1 has ``source = 'import'`` and keeps the file's text (``document``). A release the archive
already holds, imported or captured, is never replaced: a capture is the better source.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date as Date, datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

import frontmatter
import yaml
from frontmatter.default_handlers import YAMLHandler

from archive.archiver import Archiver, body_of
from archive.ledger import change_time, utc_now
from archive.parse import is_blocked
from archive.schedule import iso, parse_iso
from archive.store import RELEASES, UnsafePath, release_path, sha256_text
from archive.urls import release_slug

BATCH = 1000  # files a transaction
EXAMPLES = 3  # refused files named, per reason
# The earliest date a release may carry: the site's history begins in the 1990s. Anything
# before (the reference's 0001-01-01 is what its fetch of a blocked page left) is no date.
FIRST_DATE = "1990-01-01"
# python-frontmatter with its YAML handler given: it then skips its format detection, and
# the handler uses libyaml's loader when PyYAML has it (three times quicker).
HANDLER = YAMLHandler()
URL_LINE = re.compile(rb"^url:[ \t]*(.*?)[ \t]*\r?$", re.M)
# Test-only hooks, read from the environment: kill this process (SIGKILL) once this many
# files are in place (their rows not yet committed); and the batch size.
KILL_AFTER = "BEEHIVE_TEST_IMPORT_KILL_AFTER"
BATCH_SIZE = "BEEHIVE_IMPORT_BATCH"

# Why a file is refused, in the order they are reported.
UNPARSEABLE = "does not parse"
INCOMPLETE = "no title, date or url"
NO_DATE = "no publication date"
BLOCKED = "holds a block page"
OFF_SITE = "url not a www.beehive.govt.nz release"
MISPLACED = "path does not match its date and url"
OUTSIDE = "would leave releases/"
DUPLICATE = "two files claim one url"
TAKEN = "path held by another release"
REASONS = (UNPARSEABLE, INCOMPLETE, NO_DATE, BLOCKED, OFF_SITE, MISPLACED, OUTSIDE, DUPLICATE,
           TAKEN)
# Refusals whose URL the crawl should fetch instead: recorded as failures, which the next
# crawl tries again (the file is no good, but the release is real).
FETCH_INSTEAD = (INCOMPLETE, NO_DATE, BLOCKED, DUPLICATE)


class ImportError_(ValueError):
    """The folder cannot be imported at all (no releases/ in it)."""


@dataclass(frozen=True)
class Good:
    """A file fit to import: what its ledger row needs."""

    path: str
    url: str
    text: str
    fields: dict  # the ledger's parsed fields (as ledger.release_fields gives them)
    body: str
    sha256: str
    document: bytes  # the text, zlib-compressed: revision 1's (compressed here, in the
    # checking thread, not in the one that writes the ledger)


@dataclass(frozen=True)
class Refused:
    path: str
    reason: str  # one of REASONS
    detail: str
    url: str | None = None  # the site's release URL the file claims, when it is one


def check_file(path: str, data: bytes, today: str | None = None) -> Good | Refused:
    """Is this file, at this archive-relative path, a release to import? Pure: no I/O.

    It must be UTF-8 with front matter python-frontmatter reads, a title, a date that is a
    publication date (from FIRST_DATE to tomorrow), a ``url`` that is a www.beehive.govt.nz
    release URL, no block page's text, and sit at the path its date and URL give
    (``releases/YYYY/MM/YYYY-MM-DD-<slug>.md``).
    """
    parts = PurePosixPath(path).parts
    if not parts or parts[0] != RELEASES or ".." in parts or path.startswith("/"):
        return Refused(path, OUTSIDE, "not a path under releases/")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        return Refused(path, UNPARSEABLE, f"not UTF-8: {error}")
    if not text.startswith("---\n") or "\n---\n" not in text[3:] + "\n":
        return Refused(path, UNPARSEABLE, "no front matter at its start")
    try:
        post = frontmatter.loads(text, handler=HANDLER)
    except Exception as error:  # yaml's errors, and whatever else stops it
        return Refused(path, UNPARSEABLE, f"{type(error).__name__}: {' '.join(str(error).split())}")
    meta = post.metadata
    url = meta.get("url")
    site_url = url if isinstance(url, str) and release_slug(url) else None
    if is_blocked(data):
        return Refused(path, BLOCKED, "the bot protection's page, not a release", site_url)
    title, day = meta.get("title"), meta.get("date")
    if not isinstance(title, str) or not title.strip() or not day or not url:
        missing = [name for name, value in (("title", title), ("date", day), ("url", url))
                   if not value or name == "title" and not isinstance(value, str)]
        return Refused(path, INCOMPLETE, f"no {', '.join(missing) or 'title'}", site_url)
    if not isinstance(url, str) or site_url is None:
        return Refused(path, OFF_SITE, f"url {str(url)[:120]!r}")
    day = publication_date(day)
    today = today or datetime.now(timezone.utc).date().isoformat()
    latest = (Date.fromisoformat(today) + timedelta(days=1)).isoformat()
    if day is None or not FIRST_DATE <= day <= latest:
        return Refused(path, NO_DATE, f"date {meta.get('date')} is no publication date",
                       site_url)
    lists = {}
    for name in ("ministers", "portfolios", "attachments"):
        value = meta.get(name) or []
        if not isinstance(value, list):
            return Refused(path, UNPARSEABLE, f"{name} is not a list", site_url)
        lists[name] = json.dumps([list_item(item) for item in value if item is not None],
                                 ensure_ascii=False)
    slug = release_slug(url)
    try:
        ours = release_path(day, slug)
    except UnsafePath as error:
        return Refused(path, MISPLACED, str(error), site_url)
    # The reference names a file by its slug as it is; this archive folds a slug unfit for
    # a file name (a leading hyphen, say) to a safe one: either name will do, and the file
    # goes where the crawl would put it.
    theirs = f"{RELEASES}/{day[:4]}/{day[5:7]}/{day}-{slug}.md"
    if path not in (ours, theirs):
        return Refused(path, MISPLACED, f"its date and url say {theirs}", site_url)
    fields = {"slug": slug, "title": title, "published": f"{day}T00:00:00Z", "date": day,
              "nz_date": None, **lists}
    return Good(ours, url, text, fields, body_of(text), sha256_text(text),
                zlib.compress(data, 6))


def list_item(item) -> str:
    """A ministers/portfolios/attachments entry as text. The reference writes some values
    unquoted that YAML reads as something else (``[From a speech …]`` is a list)."""
    if isinstance(item, list):
        return "[" + ", ".join(map(list_item, item)) + "]"
    return item if isinstance(item, str) else str(item)


def publication_date(value) -> str | None:
    """YYYY-MM-DD from the front matter's date (YAML reads it as a date), or None."""
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, Date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return Date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            return None
    return None


# -- the folder -----------------------------------------------------------------------------

def releases_folder(source: str | os.PathLike) -> Path:
    """PATH's releases/ folder (PATH may be that folder itself)."""
    root = Path(source)
    if root.name == RELEASES and root.is_dir():
        return root
    if not (root / RELEASES).is_dir():
        raise ImportError_(f"no {RELEASES}/ folder in {source} (a clone of the reference "
                           "archive, or a folder laid out as releases/YYYY/MM/"
                           "YYYY-MM-DD-<slug>.md)")
    return root / RELEASES


def walk_files(releases: Path) -> Iterator[tuple[str, Path | None]]:
    """(archive-relative path, file) for every .md file under releases/, in path order;
    a symbolic link (to a file or a folder) comes as (path, None): it may lead anywhere,
    and is never followed. One folder in memory at a time."""
    stack = [(releases, RELEASES)]
    while stack:
        folder, relative = stack.pop()
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        subfolders = []
        for entry in entries:
            path = f"{relative}/{entry.name}"
            if entry.is_symlink():
                if entry.name.endswith(".md") or entry.is_dir():
                    yield path, None
            elif entry.is_dir(follow_symlinks=False):
                subfolders.append((Path(entry.path), path))
            elif entry.name.endswith(".md") and entry.is_file(follow_symlinks=False):
                yield path, Path(entry.path)
        stack.extend(reversed(subfolders))


def head_url(data: bytes) -> str | None:
    """The url line of a file's front matter, read cheaply (the first pass)."""
    end = data.find(b"\n---", 3)
    if not data.startswith(b"---\n") or end < 0:
        return None  # no front matter (in its first bytes): refused as such, no claim
    try:
        data[:end].decode("utf-8")
    except UnicodeDecodeError:
        return None  # not UTF-8: refused as such
    match = URL_LINE.search(data, 0, end)
    if not match:
        return None
    value = match.group(1).decode("utf-8")
    if value[:1] in ("'", '"'):
        try:
            value = str(yaml.safe_load(value))
        except yaml.YAMLError:
            return None
    return value


def read_head(file: Path, size: int = 4096) -> bytes:
    with open(file, "rb") as handle:
        return handle.read(size)


def describe_source(releases: Path) -> str:
    """Where an import comes from: the folder, and its git commit when it is a clone."""
    root = releases.resolve().parent
    where = str(root)
    if (root / ".git").exists():
        try:
            commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                                    capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            commit = ""
        if re.fullmatch(r"[0-9a-f]{40}", commit):
            where += f" (git {commit})"
    return where


# -- the batch loop ---------------------------------------------------------------------------

@dataclass
class ImportResult:
    files: int = 0  # .md files (and links) found under releases/
    imported: int = 0  # new imported releases
    already: int = 0  # in the archive already (captured or imported): left as they are
    written: int = 0  # files written (a rerun after a crash finds most already in place)
    refused: Counter = field(default_factory=Counter)  # reason -> count
    examples: dict = field(default_factory=dict)  # reason -> the first few Refused
    temporary: int = 0
    source: str = ""
    elapsed: float = 0.0

    def refuse(self, refusal: Refused) -> None:
        self.refused[refusal.reason] += 1
        shown = self.examples.setdefault(refusal.reason, [])
        if len(shown) < EXAMPLES:
            shown.append(refusal)

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())

    def summary(self) -> str:
        return (f"beehive summary: command=import files={self.files} imported={self.imported} "
                f"already={self.already} refused={self.refused_total} written={self.written} "
                f"elapsed={self.elapsed:.1f}s")


def import_folder(archiver: Archiver, source: str | os.PathLike, *,
                  progress: Callable[[int], None] | None = None,
                  on_total: Callable[[int], None] | None = None) -> ImportResult:
    """Import every good file under SOURCE/releases/ into the archive. The caller holds the
    archive's lock. ``on_total`` is told how many files there are once the first pass has
    counted them; ``progress`` is told of each file done."""
    started = time.monotonic()
    releases = releases_folder(source)
    ledger, store = archiver.ledger, archiver.store
    result = ImportResult(source=describe_source(releases))
    result.temporary = store.remove_temporary_files()
    batch_size = max(1, int(os.environ.get(BATCH_SIZE) or BATCH))
    # The full-text index's pages stay in memory across a batch (64 MiB at most).
    ledger.db.execute("pragma cache_size = -65536")

    # First pass: the url line of every file, to find two that claim one URL.
    claims: Counter = Counter()
    for path, file in walk_files(releases):
        result.files += 1
        if file is not None:
            try:
                url = head_url(read_head(file))
            except OSError:
                url = None
            if url:
                claims[url] += 1
    duplicates = {url for url, count in claims.items() if count > 1}
    del claims
    if on_total:
        on_total(result.files)

    run_id = ledger.start_run("import")
    fetch_instead: dict[str, str] = {}
    # A thread writes one batch's files while this one checks the next batch and records
    # the rows of the one before, whose files are in place by then.
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="beehive-import-files")
    placing: list = []  # at most one (batch, its fresh releases, the write under way)
    try:
        batch: list[Good] = []
        for path, checked in checked_files(releases, batch_size):
            if isinstance(checked, Good) and checked.url in duplicates:
                checked = Refused(path, DUPLICATE, f"{checked.url}, which another file "
                                  "claims too", checked.url)
            if isinstance(checked, Refused):
                result.refuse(checked)
                if checked.url and checked.reason in FETCH_INSTEAD:
                    fetch_instead.setdefault(checked.url, f"{checked.reason}: {checked.detail}")
                if progress:
                    progress(1)
            else:
                batch.append(checked)
            if len(batch) >= batch_size:
                place_batch(archiver, batch, result, writer, placing, progress)
                batch = []
        place_batch(archiver, batch, result, writer, placing, progress)
        finish_batch(archiver, result, placing, progress)
        record_fetch_instead(ledger, fetch_instead, run_id)
    finally:
        writer.shutdown(wait=True, cancel_futures=True)
        result.elapsed = round(time.monotonic() - started, 2)
        ledger.finish_run(run_id, outcome="ok", requested=0, new=result.imported,
                          updated=0, unchanged=result.already, failed=result.refused_total,
                          gone=0, blocked=0, walk_finished=0, elapsed=result.elapsed)
    return result


def checked_files(releases: Path, batch_size: int) -> Iterator[tuple[str, Good | Refused]]:
    """Every file under releases/, checked, in path order. The reading and checking (Python,
    holding the interpreter) run in a thread of their own, a couple of batches ahead, while
    the caller's SQLite statements (which let go of it) run: two cores both busy."""
    found: queue.Queue = queue.Queue(maxsize=batch_size)
    stop = threading.Event()
    done = object()

    def produce():
        try:
            for path, file in walk_files(releases):
                item = (path, check(path, file))
                while not stop.is_set():
                    try:
                        found.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            found.put(done)
        except BaseException as error:  # handed to the caller, raised there
            found.put(error)

    thread = threading.Thread(target=produce, name="beehive-import-check", daemon=True)
    thread.start()
    try:
        while True:
            item = found.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def check(path: str, file: Path | None) -> Good | Refused:
    if file is None:
        return Refused(path, OUTSIDE, "a symbolic link (never followed)")
    try:
        data = file.read_bytes()
    except OSError as error:
        return Refused(path, UNPARSEABLE, f"unreadable: {error.strerror or error}")
    return check_file(path, data)


def place_batch(archiver: Archiver, batch: list[Good], result: ImportResult,
                writer: ThreadPoolExecutor, placing: list,
                progress: Callable[[int], None] | None = None) -> None:
    """One batch: its files are handed to the writer thread (atomically, durably), and the
    batch before, once its files are in place, gets its rows (``finish_batch``). A release
    the ledger holds already is left alone (never downgraded)."""
    if not batch:
        return
    ledger, store = archiver.ledger, archiver.store
    olds = ledger.rows_for([good.url for good in batch])
    owners = ledger.path_owners([good.path for good in batch])
    fresh: list[Good] = []
    urls: set[str] = set()
    for good in batch:
        if good.url in olds:
            result.already += 1
        elif owners.get(good.path, good.url) != good.url:
            result.refuse(Refused(good.path, TAKEN, f"held by {owners[good.path]}", good.url))
        elif good.url in urls:  # the first pass missed a second claim (an odd url line)
            result.refuse(Refused(good.path, DUPLICATE, good.url, good.url))
        else:
            urls.add(good.url)
            fresh.append(good)
    # A file already there (an interrupted import's) is not written again when it is right.
    writes = [(good.path, good.text) for good in fresh
              if not os.path.lexists(store.root / good.path)
              or store.read_bytes(good.path) != good.text.encode("utf-8")]
    result.written += len(writes)
    future = writer.submit(store.write_many, writes)
    finish_batch(archiver, result, placing, progress)
    placing.append((len(batch), fresh, future))


def finish_batch(archiver: Archiver, result: ImportResult, placing: list,
                 progress: Callable[[int], None] | None = None) -> None:
    """The rows of the batch being placed, once its files are in place (durable)."""
    if not placing:
        return
    size, fresh, future = placing.pop()
    future.result()  # its files are in place, or the error that stopped them is raised
    kill_after = os.environ.get(KILL_AFTER)
    if kill_after and result.imported + len(fresh) >= int(kill_after):
        os.kill(os.getpid(), signal.SIGKILL)  # test-only: a crash between files and rows
    record(archiver, fresh, result.source)
    result.imported += len(fresh)
    if progress:
        progress(size)


def record(archiver: Archiver, fresh: list[Good], source: str) -> None:
    """The rows of imported releases whose files are in place: release, revision 1 (the
    file's own text) and the change log's ``imported`` entry, one transaction."""
    if not fresh:
        return
    ledger = archiver.ledger
    now_moment = datetime.now(timezone.utc)
    now = utc_now()
    db = ledger.db
    with ledger.transaction():
        last = db.execute("select at from changes order by id desc limit 1").fetchone()
        at = now_moment
        if last and at <= parse_iso(last[0]):
            at = parse_iso(last[0]) + timedelta(microseconds=1)
        releases, revisions, changes = [], [], []
        for good in fresh:
            fields = good.fields
            next_check = iso(ledger.schedule.next_check(good.url, parse_iso(fields["published"]),
                                                        now_moment))
            releases.append((good.url, fields["slug"], fields["title"], fields["published"],
                             fields["date"], fields["nz_date"], fields["ministers"],
                             fields["portfolios"], fields["attachments"], good.body, good.path,
                             good.sha256, now, now, next_check))
            revisions.append((good.url, now, good.sha256, ledger.run_id,
                              good.document, source))
            changes.append((change_time(at), good.url, good.path, good.sha256, ledger.run_id))
            at += timedelta(microseconds=1)
        db.conn.executemany(
            "insert into releases (url, slug, title, published, date, nz_date, ministers, "
            "portfolios, attachments, body, path, sha256, first_seen, last_changed, "
            "next_check, origin) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "'imported')", releases)
        db.conn.executemany(
            "insert into revisions (url, revision, captured, sha256, run_id, document, "
            "imported_from, source) values (?, 1, ?, ?, ?, ?, ?, 'import')", revisions)
        db.conn.executemany(
            "insert into changes (at, kind, url, path, sha256, revision, run_id) "
            "values (?, 'imported', ?, ?, ?, 1, ?)", changes)


def record_fetch_instead(ledger, fetch_instead: dict[str, str], run_id: int) -> None:
    """Refused files whose release is real (dated 0001-01-01, a block page's text, two
    files for one URL): the crawl fetches those releases instead. Recorded as failures,
    which the next crawl tries again; unless the archive holds them, or knows already."""
    if not fetch_instead:
        return
    now = utc_now()
    with ledger.transaction():
        for url, reason in fetch_instead.items():
            if ledger.canonical_url(url) is None:
                ledger.db.execute(
                    "insert or ignore into failures (url, kind, reason, status, run_id, at, "
                    "attempts) values (?, 'failed', ?, null, ?, ?, 0)",
                    [url, f"not imported ({reason}): to be fetched", run_id, now])
