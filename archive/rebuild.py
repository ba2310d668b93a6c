"""Offline upkeep of an archive: ``beehive rebuild`` and ``beehive verify``.

Rebuild regenerates every release's file from the content region the ledger keeps, through
the crawl's own two steps (``archiver.render`` then ``Archiver.commit``): the pure step runs on
every core, the main process commits the results in ledger order, a batch per transaction,
each file written before the rows that name it. Files whose content is already right are not
touched. Verify checks that files and ledger agree, changing nothing.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterator

from archive.archiver import Archiver, Rendered, render
from archive.ledger import decompress
from archive.parse import ParseError, parse_release
from archive.store import TEMP_PREFIX, Store, UnsafePath

BATCH = 32  # releases per task and per ledger transaction
READ_CHUNK = 512  # rows read from the ledger at a time (keeps memory flat)
POOL_THRESHOLD = 128  # below this many releases, rendering in-process is quicker


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
    elapsed: float = 0.0

    def summary(self) -> str:
        return (f"beehive summary: command=rebuild releases={self.total} "
                f"written={self.written + self.changed} changed={self.changed} "
                f"unchanged={self.unchanged} failed={len(self.failed)} "
                f"strays={len(self.strays)} pruned={self.pruned} elapsed={self.elapsed:.1f}s")


def render_stored(batch: list[tuple[str, bytes]]) -> list[Rendered | Failed]:
    """The pure step for stored regions: decompress, parse, render. Runs in worker processes."""
    out: list[Rendered | Failed] = []
    for url, region in batch:
        try:
            release = parse_release(decompress(region), url)
            out.append(render(release, keep_region=False))
        except (ParseError, UnsafePath, ValueError) as error:
            out.append(Failed(url, f"{type(error).__name__}: {error}"))
    return out


def stored_batches(archiver: Archiver) -> Iterator[list[tuple[str, bytes]]]:
    """Every release's (url, compressed region), in URL order, a batch at a time.

    Keyset pages rather than one open cursor: nothing holds the whole ledger in memory, and
    the commits in between never meet a half-read statement.
    """
    db = archiver.ledger.db
    last = ""
    while True:
        rows = db.execute("select url, region from releases where url > ? order by url limit ?",
                          [last, READ_CHUNK]).fetchall()
        if not rows:
            return
        last = rows[-1][0]
        for start in range(0, len(rows), BATCH):
            yield rows[start:start + BATCH]


def rendered_batches(archiver: Archiver, jobs: int):
    """Rendered batches in ledger order: on a process pool, at most a few batches ahead."""
    batches = stored_batches(archiver)
    if jobs <= 1:
        for batch in batches:
            yield render_stored(batch)
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        pending = deque()
        for batch in batches:
            pending.append(pool.submit(render_stored, batch))
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
    run_id = ledger.start_run("rebuild")
    try:
        if jobs is None:  # small archives render quicker in-process than a pool starts
            jobs = default_jobs() if result.total >= POOL_THRESHOLD else 1
        for batch in rendered_batches(archiver, jobs):
            good = [item for item in batch if isinstance(item, Rendered)]
            result.failed.extend(item for item in batch if isinstance(item, Failed))
            try:
                saved = archiver.commit(good, seen=False)
            except (UnsafePath, OSError) as error:
                # One bad row should not stop the rest: commit them one at a time.
                saved = []
                for item in good:
                    try:
                        saved.extend(archiver.commit([item], seen=False))
                    except (UnsafePath, OSError) as error:
                        result.failed.append(Failed(item.url, f"{type(error).__name__}: {error}"))
            for one in saved:
                if one.outcome == "unchanged":
                    result.unchanged += 1
                elif one.changed:
                    result.changed += 1
                else:
                    result.written += 1
            if progress:
                progress(len(batch))
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
