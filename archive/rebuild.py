"""Offline upkeep of an archive: ``beehive rebuild`` and ``beehive verify``.

Rebuild regenerates every release's file from the content region the ledger keeps, through
the crawl's own steps (see archive.archiver). Worker processes, one per core, take batches of
ledger rows and do all that touches only files: decompress, parse, render, compare with the
file on disk (always its content: a hand-edited file is found whatever its size and time),
and write, atomically and durably, the files that differ. The main process reads the ledger,
hands out the batches and records the rows that changed, in ledger order, several hundred
per transaction: a worker reports a release only once its file is on disk, so every file is
in place before the row that names it commits. A release whose file would move to a new path
goes through ``Archiver.commit`` in the main process, which first checks that no other
release owns that path. Files whose content is already right are not touched. Verify checks
that files and ledger agree, changing nothing.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterator

from archive.archiver import Archiver, Placed, Rendered, Saved, place, render
from archive.ledger import FIELD_NAMES, decompress
from archive.parse import ParseError, parse_release
from archive.store import TEMP_PREFIX, Store, UnsafePath

BATCH = 64  # releases per worker task
RECORD_EVERY = 512  # ledger rows per transaction, at most about
POOL_THRESHOLD = 128  # below this many releases, rebuilding in-process is quicker
# What a worker compares a rendering against. Not the body: the same hash means the same body.
ROW_COLUMNS = ("url", "path", "sha256", *FIELD_NAMES)


@dataclass
class Failed:
    url: str
    reason: str


@dataclass
class RebuildResult:
    total: int = 0
    written: int = 0  # missing or different files written again, same document as recorded
    changed: int = 0  # documents that differ from what the ledger recorded
    unchanged: int = 0
    failed: list[Failed] = field(default_factory=list)
    strays: list[str] = field(default_factory=list)
    pruned: int = 0
    temporary: int = 0
    imported: int = 0  # imported, never captured: no page to render them from, left as they are
    elapsed: float = 0.0

    def summary(self) -> str:
        return (f"beehive summary: command=rebuild releases={self.total} "
                f"written={self.written + self.changed} changed={self.changed} "
                f"unchanged={self.unchanged} failed={len(self.failed)} "
                f"strays={len(self.strays)} pruned={self.pruned} "
                + (f"imported={self.imported} " if self.imported else "")
                + f"elapsed={self.elapsed:.1f}s")

    def count(self, saved: Saved) -> None:
        if saved.outcome == "unchanged":
            self.unchanged += 1
        elif saved.changed:
            self.changed += 1
        else:
            self.written += 1


Outcome = Failed | Saved | Placed | Rendered


def rebuild_batch(store: Store, batch: list[tuple[dict, bytes]]) -> list[Outcome]:
    """Render stored releases and put their files in place. Runs in the worker processes.

    ``batch`` holds (ledger row, compressed region) pairs. Each release comes back as one of:
    Failed (it no longer parses), Saved (file in place and the row already right: nothing
    left to do), Placed (file in place, the row is to be recorded), or Rendered (its file
    moves to a new path: the main process commits it, after checking who owns that path).
    """
    out: list[Outcome] = []
    staying: list[tuple[Rendered, dict]] = []
    for old, region in batch:
        try:
            item = render(parse_release(decompress(region), old["url"]), keep_region=False)
        except (ParseError, UnsafePath, ValueError) as error:
            out.append(Failed(old["url"], f"{type(error).__name__}: {error}"))
            continue
        if item.path == old["path"]:  # the row owns its path: no other release can
            staying.append((item, old))
        else:
            out.append(item)
    try:
        placed = place(store, staying)
    except (UnsafePath, OSError):
        # One bad file should not stop the rest of the batch: place them one at a time.
        placed = []
        for one in staying:
            try:
                placed.extend(place(store, [one]))
            except (UnsafePath, OSError) as error:
                out.append(Failed(one[0].url, f"{type(error).__name__}: {error}"))
    out.extend(one.saved if one.row_current else one for one in placed)
    return out


def stored_batches(archiver: Archiver) -> Iterator[list[tuple[dict, bytes]]]:
    """Every release's (ledger row, compressed region), in URL order, a batch at a time;
    but imported releases not yet captured, which have no region to render them from.

    A keyset query per batch rather than one open cursor: nothing holds more than a batch
    of the ledger in memory, and the commits in between never meet a half-read statement.
    """
    db = archiver.ledger.db
    last = ""
    while True:
        rows = db.execute(f"select {', '.join(ROW_COLUMNS)}, region from releases "
                          "where url > ? and region is not null order by url limit ?",
                          [last, BATCH]).fetchall()
        if not rows:
            return
        last = rows[-1][0]
        yield [(dict(zip(ROW_COLUMNS, row)), row[-1]) for row in rows]


def rebuilt_batches(archiver: Archiver, jobs: int) -> Iterator[list[Outcome]]:
    """``rebuild_batch`` over the whole ledger, results in ledger order: in this process, or
    on a pool of processes kept a few batches ahead."""
    batches = stored_batches(archiver)
    if jobs <= 1:
        for batch in batches:
            yield rebuild_batch(archiver.store, batch)
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        pending = deque()
        for batch in batches:
            pending.append(pool.submit(rebuild_batch, archiver.store, batch))
            if len(pending) >= jobs * 3:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def rebuild(archiver: Archiver, *, prune: bool = False, jobs: int | None = None,
            progress: Callable[[int], None] | None = None) -> RebuildResult:
    """Regenerate every file from the ledger. The caller holds the archive's lock."""
    started = time.monotonic()
    ledger, store = archiver.ledger, archiver.store
    result = RebuildResult(total=ledger.count())
    result.temporary = store.remove_temporary_files()
    result.imported = ledger.db.execute(
        "select count(*) from releases where region is null").fetchone()[0]
    run_id = ledger.start_run("rebuild")
    try:
        if jobs is None:  # small archives render quicker in-process than a pool starts
            jobs = default_jobs() if result.total >= POOL_THRESHOLD else 1
        to_record: list[Placed] = []  # files in place, rows still to commit
        for outcomes in rebuilt_batches(archiver, jobs):
            for outcome in outcomes:
                if isinstance(outcome, Failed):
                    result.failed.append(outcome)
                elif isinstance(outcome, Saved):
                    result.count(outcome)
                elif isinstance(outcome, Placed):
                    to_record.append(outcome)
                    result.count(outcome.saved)
                else:
                    commit_moved(archiver, outcome, result)
            if len(to_record) >= RECORD_EVERY:
                archiver.record(to_record, seen=False)
                to_record = []
            if progress:
                progress(len(outcomes))
        archiver.record(to_record, seen=False)
        result.strays = strays(archiver)
        if prune:
            for path in result.strays:
                store.remove(path)
            result.pruned = len(result.strays)
            remove_empty_folders(store)
    finally:
        result.elapsed = round(time.monotonic() - started, 2)
        ledger.finish_run(run_id, outcome="failed" if result.failed else "ok",
                          requested=0, new=0, updated=result.written + result.changed,
                          unchanged=result.unchanged, failed=len(result.failed), gone=0,
                          blocked=0, walk_finished=0, elapsed=result.elapsed)
    return result


def commit_moved(archiver: Archiver, item: Rendered, result: RebuildResult) -> None:
    """A release whose file moves to a new path: the crawl's commit, which refuses a path
    another release owns."""
    try:
        result.count(archiver.commit([item], seen=False)[0])
    except (UnsafePath, OSError) as error:
        result.failed.append(Failed(item.url, f"{type(error).__name__}: {error}"))


def walk(store: Store) -> Iterator[tuple[str, list[str]]]:
    """(folder, sorted file names) for every folder under releases/, in sorted order.

    One folder at a time, so memory follows the largest folder, not the archive.
    """
    if not store.releases.is_dir():
        return
    pending = [store.releases]
    while pending:
        folder = pending.pop()
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        relative = folder.relative_to(store.root).as_posix()
        yield relative, [entry.name for entry in entries if not entry.is_dir()]
        pending.extend(folder / entry.name for entry in reversed(entries) if entry.is_dir())


def paths_in(archiver: Archiver, folder: str) -> set[str]:
    """The ledger's paths of files directly in this folder."""
    prefix = folder.rstrip("/") + "/"
    rows = archiver.ledger.db.execute(
        "select path from releases where path >= ? and path < ?", [prefix, prefix + "\uffff"])
    return {path for (path,) in rows if "/" not in path[len(prefix):]}


def is_temporary(path: str) -> bool:
    return path.rsplit("/", 1)[-1].startswith(TEMP_PREFIX)


def unknown_files(archiver: Archiver) -> Iterator[str]:
    """Files under releases/ that the ledger does not name, temporaries included, sorted."""
    for folder, names in walk(archiver.store):
        known = paths_in(archiver, folder)
        for name in names:
            path = f"{folder}/{name}"
            if path not in known:
                yield path


def strays(archiver: Archiver) -> list[str]:
    """Files under releases/ that the ledger does not name (temporaries not counted)."""
    return [path for path in unknown_files(archiver) if not is_temporary(path)]


def remove_empty_folders(store: Store) -> None:
    if not store.releases.is_dir():
        return
    for folder, subfolders, files in sorted(os.walk(store.releases), reverse=True):
        if folder != str(store.releases) and not os.listdir(folder):
            os.rmdir(folder)


def verify(archiver: Archiver) -> tuple[int, list[str]]:
    """Check files against the ledger. Returns (releases checked, problems, one line each)."""
    import frontmatter

    store = archiver.store
    problems: list[str] = []
    checked = 0
    cursor = archiver.ledger.db.execute("select url, path, sha256 from releases order by path")
    for url, path, digest in cursor:
        checked += 1
        try:
            data = store.resolve(path).read_bytes()
        except FileNotFoundError:
            problems.append(f"missing: {path} ({url})")
            continue
        except (UnsafePath, OSError) as error:
            problems.append(f"unreadable: {path} ({url}): {error}")
            continue
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            problems.append(f"modified: {path}: sha256 {actual}, ledger has {digest}")
        try:
            post = frontmatter.loads(data.decode("utf-8"))
            if not all(post.metadata.get(key) for key in ("title", "date", "url")):
                problems.append(f"no front matter: {path}: title, date or url missing")
        except Exception as error:  # yaml, unicode: whatever stops it parsing
            reason = " ".join(str(error).split())
            problems.append(f"unparseable: {path}: {type(error).__name__}: {reason}")
    for path in unknown_files(archiver):
        if is_temporary(path):
            problems.append(f"temporary file left by an interrupted write: {path}")
        else:
            problems.append(f"stray: {path} (not in the ledger)")
    return checked, problems
