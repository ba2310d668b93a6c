"""The ledger: one SQLite file that records what the archive holds and how each run went.

Tables (plain SQLite; ``sqlite-utils`` and Datasette open it as it is):

- ``releases``: one row per release, keyed by canonical URL: the parsed fields, the full UTC
  timestamp and the New Zealand date, the file's path and SHA-256, the body Markdown (for
  search and export), and the page's content region, zlib-compressed, from which the file
  can be rebuilt offline.
- ``releases_fts``: FTS5 index over title and body, kept current by triggers.
- ``failures``: releases whose last attempt failed (or that the site says are gone), with why;
  for a release that answered 404 or 410 before it was ever captured, when to ask again
  (``next_try``), or since when it is given up (``given_up``).
- ``aliases``: URLs that led to a release under another canonical URL (``/node/N``, old slugs).
- ``runs``: one row per crawl or rebuild, with its figures.
- ``revisions``: every distinct content version of each release (revision 1, 2, …), with the
  compressed content region it was rendered from; ``releases`` holds the latest, and its
  region, which the latest revision does not store a second time (its ``region`` is null).
- ``changes``: an append-only log of what happened to the archive (new, updated, gone,
  moved), in order, for other programs to follow.
- ``walks``: how far each discovery walk (the listing, each government's search) got.

A release's ``origin`` says where its file came from: ``captured`` (fetched from the site)
or ``imported`` (copied by ``beehive import`` from a reference archive, and not yet fetched:
no region, no last_seen; its first fetch, an unconditional recheck, makes it captured). A
revision's ``source`` is ``crawl`` or ``import``; an imported revision keeps the imported
file's text itself (``document``, zlib-compressed), having no region to be rendered from,
and ``imported_from`` says where it was imported from.

The schema's version is SQLite's ``user_version``. A ledger made by an earlier version of
the tool is migrated in place, in one transaction, the first time this version opens it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import unicodedata
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlite_utils

from archive.schedule import Schedule, gone_next_try, iso, parse_iso


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def change_time(moment: datetime) -> str:
    """The change log's form of a moment: UTC with microseconds, so that every entry has
    its own, strictly later than the one before, and text order is time order."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def compress(text: str) -> bytes:
    return zlib.compress(text.encode("utf-8", "surrogatepass"), 9)


def decompress(blob: bytes) -> str:
    return zlib.decompress(blob).decode("utf-8", "surrogatepass")


RELEASE_COLUMNS = {
    "url": str,
    "slug": str,
    "title": str,
    "published": str,  # full UTC timestamp, ISO 8601 with Z
    "date": str,  # its UTC calendar date: the date in the file and its path
    "nz_date": str,  # the date the page shows, in New Zealand
    "ministers": str,  # JSON lists
    "portfolios": str,
    "attachments": str,
    "body": str,
    "path": str,
    "sha256": str,
    "region": bytes,
    "first_seen": str,
    "last_seen": str,
    "last_changed": str,
    "gone": str,  # when the site last answered 404/410 for it; the file stays
    "next_check": str,  # when to ask the site for it again (UTC, YYYY-MM-DDTHH:MM:SSZ)
    "etag": str,  # validators of the last capture's response, for conditional rechecks
    "last_modified": str,
    "origin": str,  # "captured" (fetched from the site) or "imported" (beehive import)
    # The archived release this one's URL now redirects to (301), when that is another
    # release the archive holds: both are kept, each with its file and history (a rename,
    # to a URL not archived yet, moves the release instead). Cleared when it answers again.
    "moved_to": str,
}

SCHEMA_VERSION = 2

# Tables added since the first release of the tool (schema version 0), as
# sqlite-utils column specs; ``_create`` makes them in a new ledger and ``_migrate`` adds
# them to an old one.
REVISION_COLUMNS = {"url": str, "revision": int, "captured": str, "sha256": str,
                    # null in the latest revision, whose region is the release's own
                    "region": bytes, "run_id": int,
                    # the URL the page had then, when not the release's (a renamed slug)
                    "page_url": str,
                    # "crawl" or "import"; an imported revision keeps its file's text
                    # (zlib), there being no region to render it from, and its source folder
                    "source": str, "document": bytes, "imported_from": str}
CHANGE_COLUMNS = {"id": int, "at": str, "kind": str, "url": str, "path": str,
                  "old_path": str, "sha256": str, "revision": int, "run_id": int}
# A walk's ``page`` is where it resumes: the releases of every earlier page are archived.
# ``outcome`` says why an ended walk ended: "finished" (its last page), "caught up" (a page
# with nothing new), "unavailable" (a search that gave no results: its results may need
# JavaScript) or "forbidden" (by robots.txt).
WALK_COLUMNS = {"name": str, "page": int, "finished": int, "reported": int,
                "started": str, "updated": str, "run_id": int, "outcome": str}
# A failure's schedule (schema version 2): ``first_failed``, when its first failed attempt
# was; ``next_try``, when to ask again for a release that answered 404 or 410 before it was
# ever captured (schedule.gone_next_try; null for other failures, asked again by every run,
# and for an archived release gone, which its recheck schedule asks again); ``given_up``,
# when such a release had answered 404 for so long that runs stopped asking for it.
FAILURE_COLUMNS = {"url": str, "kind": str, "reason": str, "status": int, "run_id": int,
                   "at": str, "attempts": int,
                   "first_failed": str, "next_try": str, "given_up": str}
# A failure of a release the archive never held that the site says is gone (404 or 410).
NEVER_CAPTURED_GONE = "kind = 'gone' and url not in (select url from releases)"
RUN_COLUMNS = {"id": int, "command": str, "started": str, "ended": str, "requested": int,
               "new": int, "updated": int, "unchanged": int, "failed": int, "gone": int,
               "blocked": int, "outcome": str, "walk_finished": int, "elapsed": float,
               "reason": str, "rechecked": int, "changed": int, "not_modified": int,
               # requests that went through the browser, and challenge tokens it earned
               "browser_requests": int, "tokens": int}

# Every table whose columns have grown since version 0: what _add_missing_columns adds.
COLUMN_SPECS = {"releases": RELEASE_COLUMNS, "runs": RUN_COLUMNS, "revisions": REVISION_COLUMNS,
                "walks": WALK_COLUMNS, "failures": FAILURE_COLUMNS}

FIELD_NAMES = ("slug", "title", "published", "date", "nz_date", "ministers", "portfolios",
               "attachments")

def release_fields(release) -> dict:
    """The ledger's columns that come from parsing a release (lists as JSON)."""
    return {
        "slug": release.slug,
        "title": release.title,
        "published": release.published.isoformat().replace("+00:00", "Z"),
        "date": release.date,
        "nz_date": release.nz_date,
        "ministers": json.dumps(list(release.ministers), ensure_ascii=False),
        "portfolios": json.dumps(list(release.portfolios), ensure_ascii=False),
        "attachments": json.dumps(list(release.attachments), ensure_ascii=False),
    }


def match_title(title: str | None) -> str:
    """A title as compared between a search result and an imported file: Unicode NFKC,
    white space collapsed, case folded."""
    return " ".join(unicodedata.normalize("NFKC", title or "").split()).casefold()


class LedgerDamaged(sqlite3.DatabaseError):
    """SQLite's own check finds the ledger file damaged."""


def check_integrity(path: str | Path, *, thorough: bool = False) -> None:
    """Ask SQLite whether the ledger file is intact; raise LedgerDamaged if not.

    The quick check (b-tree pages, records, free list) finds torn, zeroed or overwritten
    pages; the thorough one also checks that every index agrees with its table, and reads
    the whole file (it costs about as much again, see benchmarks/bench_integrity.py). The
    file is opened read-only: a check never writes.
    """
    pragma = "integrity_check" if thorough else "quick_check"
    try:
        # A crawl writing at the same time holds its lock only briefly: wait for it.
        connection = connect_readonly(path, timeout=30)
        try:
            problems = [row[0] for row in connection.execute(f"pragma {pragma}(5)")]
        finally:
            connection.close()
    except sqlite3.OperationalError as error:
        if "locked" in str(error) or "busy" in str(error):
            raise  # in use, not damaged
        raise LedgerDamaged(f"{path} is damaged: {error}") from None
    except sqlite3.DatabaseError as error:
        raise LedgerDamaged(f"{path} is damaged: {error}") from None
    if problems != ["ok"]:
        raise LedgerDamaged(f"{path} is damaged: SQLite's {pragma} says: "
                            + "; ".join(" ".join(problem.split()) for problem in problems))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another account's process
        return True
    return True


class NotALedger(sqlite3.DatabaseError):
    """A file given as the ledger that beehive did not make (another program's SQLite
    database, an empty file): refused, and never written to."""


# Files SQLite and beehive keep beside the ledger: never an output's target.
LEDGER_SIDECARS = ("-wal", "-shm", "-journal", ".lock", ".writer.lock")


def readable(path: Path) -> None:
    """A ledger this account may not read is a permission problem, named as one (SQLite
    would only say it is 'unable to open database file', which reads like damage)."""
    if path.exists() and not os.access(path, os.R_OK):
        raise PermissionError(errno.EACCES, "cannot read the ledger (permission denied)",
                              str(path))


def connect_readonly(path: str | Path, timeout: float = 30) -> sqlite3.Connection:
    """A connection that cannot write, whoever may write the file.

    In WAL mode even a reader needs the ledger's shared-memory file (-shm), which SQLite
    makes beside it. In a folder this account cannot write (a web server's account, a
    mounted backup) that fails; then nobody writes the ledger there either, and SQLite may
    read it as an immutable file.
    """
    path = Path(path)
    readable(path)
    uri = path.resolve().as_uri()
    connection = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=timeout)
    try:
        connection.execute("select count(*) from sqlite_master").fetchone()
        return connection
    except sqlite3.OperationalError as error:
        connection.close()
        cannot_share = "unable to open" in str(error) or "readonly database" in str(error)
        if not cannot_share or os.access(path.parent, os.W_OK):
            raise
    return sqlite3.connect(f"{uri}?immutable=1", uri=True, timeout=timeout)


def require_ledger(connection: sqlite3.Connection, path: str | Path) -> None:
    """Raise NotALedger unless this database is one beehive made: a ``releases`` table
    with the columns every version had, and a ``runs`` table. Reads only."""
    tables = {row[0] for row in connection.execute(
        "select name from sqlite_master where type = 'table'")}
    columns = {row[1] for row in connection.execute("pragma table_info(releases)")}
    if not {"releases", "runs"} <= tables or not {"url", "path", "sha256"} <= columns:
        what = "an empty file" if not tables and Path(path).stat().st_size == 0 else \
            "an SQLite database without beehive's tables"
        raise NotALedger(f"{path} is not a beehive ledger ({what}); nothing was changed "
                         "(give the archive's ledger.db, or a path that does not exist yet)")


def check_ledger_file(path: str | Path) -> None:
    """An existing ledger file is beehive's (NotALedger if not), checked read-only."""
    connection = connect_readonly(path)
    try:
        require_ledger(connection, path)
    finally:
        connection.close()


class Ledger:
    """The ledger at ``path``. Writable: made when missing (whole, or not at all); an
    existing file must be a beehive ledger (NotALedger) the account may write. Read-only
    (``readonly``): opened so that nothing can be written, whatever the permissions."""

    def __init__(self, path: str | Path, schedule: Schedule | None = None, *,
                 readonly: bool = False):
        self.path = Path(path)
        self.schedule = schedule or Schedule.parse()
        self.run_id = None  # the run this connection records, once started
        if readonly:
            self._open_readonly()
            return
        if self.path.exists():
            check_ledger_file(self.path)
            for place in (self.path, self.path.parent):
                if not os.access(place, os.W_OK):
                    raise PermissionError(
                        errno.EACCES, "cannot write the ledger (permission denied)", str(place))
        else:
            self._make_new()
        self.db = sqlite_utils.Database(self.path)
        # A write-ahead log synced at every commit (synchronous=FULL): a committed row is as
        # durable as with a rollback journal, for one fsync per commit instead of several,
        # and readers (status, Datasette) never wait for the crawl, nor it for them.
        self.db.enable_wal()
        self.db.execute("pragma synchronous = full")
        self._create()

    def _open_readonly(self) -> None:
        connection = connect_readonly(self.path)
        require_ledger(connection, self.path)
        self.db = sqlite_utils.Database(connection)
        outdated = (connection.execute("pragma user_version").fetchone()[0] < SCHEMA_VERSION
                    or self._columns_missing())
        if outdated and os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK):
            # Made by an earlier version: migrated first where this account may write it
            # (as every command did before it read); read as it is where it may not.
            connection.close()
            Ledger(self.path, self.schedule).close()
            self.db = sqlite_utils.Database(connect_readonly(self.path))

    def _make_new(self) -> None:
        """A new ledger, made whole under a temporary name and then linked into place, so
        that a run killed while making it leaves no half-made ledger (which, being nothing
        beehive could recognise, every later command would refuse). Linked, not renamed:
        if another process made one meanwhile, that one stays."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.new-{os.getpid()}")
        for leftover in self.path.parent.glob(f".{self.path.name}.new-*"):
            # What a run killed while making the ledger left: its process is gone.
            pid = leftover.name.rsplit(".new-", 1)[1].split("-")[0]
            if pid.isdigit() and (int(pid) == os.getpid() or not _alive(int(pid))):
                leftover.unlink(missing_ok=True)
        try:
            db = sqlite_utils.Database(temporary)
            db.enable_wal()
            self.db = db
            self._create()
            db.close()  # the last connection: SQLite folds the WAL back into the file
            with open(temporary, "rb+") as handle:
                os.fsync(handle.fileno())
            try:
                os.link(temporary, self.path)
            except FileExistsError:
                check_ledger_file(self.path)
        finally:
            temporary.unlink(missing_ok=True)

    @contextlib.contextmanager
    def transaction(self):
        """One write transaction that takes the write lock at its start (BEGIN IMMEDIATE).

        A crawl writes from two processes (walk progress from the reactor's, releases from
        its writer). In WAL mode a deferred transaction that has read, and then writes after
        the other process committed, fails at once with "database is locked" instead of
        waiting its turn; taking the lock first makes it wait. Nested: a savepoint.
        """
        if self.db.conn.in_transaction:
            with self.db.atomic():
                yield
            return
        self.db.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self.db.conn.in_transaction:
                self.db.conn.execute("ROLLBACK")
            raise
        self.db.conn.execute("COMMIT")

    def _create(self) -> None:
        db = self.db
        if "releases" in db.table_names():
            version = db.execute("pragma user_version").fetchone()[0]
            if version < SCHEMA_VERSION:
                self._migrate(version)
            elif self._columns_missing():
                # made by a development build of this version: columns added since
                with db.atomic():
                    self._add_missing_columns()
                    self._migrate_to_2()
            return
        # Not one transaction: enable_fts runs a script, which commits. A ledger left half
        # made has user_version 0 and is completed by the migration the next time.
        db["releases"].create(RELEASE_COLUMNS, pk="url", not_null={"path", "sha256"})
        db["releases"].create_index(["path"], unique=True)
        db["releases"].create_index(["published"])
        db["releases"].create_index(["next_check"])
        db["releases"].enable_fts(["title", "body"], create_triggers=True, tokenize="porter")
        self._create_tables()
        db.execute(f"pragma user_version = {SCHEMA_VERSION}")

    def _create_tables(self) -> None:
        """Every table but ``releases``; in a new ledger and, where missing, an old one."""
        db = self.db
        db["failures"].create(FAILURE_COLUMNS, pk="url", if_not_exists=True)
        db["aliases"].create({"url": str, "canonical": str}, pk="url", if_not_exists=True)
        db["runs"].create(RUN_COLUMNS, pk="id", if_not_exists=True)
        db["revisions"].create(REVISION_COLUMNS, pk=("url", "revision"), if_not_exists=True)
        db["changes"].create(CHANGE_COLUMNS, pk="id", if_not_exists=True)
        db["walks"].create(WALK_COLUMNS, pk="name", if_not_exists=True)

    def _migrate(self, version: int) -> None:
        """Bring a ledger made by an earlier version up to SCHEMA_VERSION, in place, in one
        transaction: the columns and tables added since, then each version's own step."""
        db = self.db
        with db.atomic():
            self._add_missing_columns()
            self._create_tables()
            if version < 1:
                self._migrate_to_1()
            if version < 2:
                self._migrate_to_2()
            db.execute(f"pragma user_version = {SCHEMA_VERSION}")

    def _migrate_to_1(self) -> None:
        """Version 0 had releases, failures, aliases and runs. Every release gets revision 1
        from the region it holds (its only known version, captured when it last changed)
        and a ``new`` entry in the change log at its first capture, so a program reading
        the log from the start sees every release once."""
        self.db["releases"].create_index(["next_check"], if_not_exists=True)
        self.db.execute(
            "insert or ignore into revisions (url, revision, captured, sha256) "
            "select url, 1, coalesce(last_changed, first_seen), sha256 from releases")
        self._migrate_changes_and_schedule()

    def _migrate_origin_to_2(self) -> None:
        """Imports came with version 2: every release an older ledger holds was captured
        from the site, and every revision made by a crawl. Idempotent."""
        self.db.execute("update releases set origin = 'captured' where origin is null")
        self.db.execute("update revisions set source = 'crawl' where source is null")

    def _migrate_changes_and_schedule(self) -> None:
        """Each old release: a ``new`` entry in the change log, at its first capture and by
        the run that made it, and a next_check on the recheck schedule, spread from now."""
        now = datetime.now(timezone.utc)
        rows = self.db.execute(
            "select url, path, sha256, first_seen, published, "
            "(select max(id) from runs where runs.started <= releases.first_seen) "
            "from releases order by first_seen, published, url").fetchall()
        entries, checks, last = [], [], None
        for url, path, sha256, first_seen, published, run_id in rows:
            at = parse_iso(first_seen) if first_seen else now
            if last is not None and at <= last:
                at = last + timedelta(microseconds=1)
            last = at
            entries.append((change_time(at), "new", url, path, sha256, 1, run_id))
            checks.append((iso(self.schedule.next_check(url, parse_iso(published), now)), url))
        self.db.conn.executemany(
            "insert into changes (at, kind, url, path, sha256, revision, run_id) "
            "values (?, ?, ?, ?, ?, ?, ?)", entries)
        self.db.conn.executemany(
            "update releases set next_check = ? where url = ? and next_check is null", checks)

    def _columns_missing(self) -> bool:
        return any(table in self.db.table_names()
                   and set(columns) - set(self.db[table].columns_dict)
                   for table, columns in COLUMN_SPECS.items())

    def _migrate_to_2(self) -> None:
        """Version 2: failures get their schedule, releases and revisions their origin."""
        self._migrate_failures_to_2()
        self._migrate_origin_to_2()

    def _migrate_failures_to_2(self) -> None:
        """Failures get their schedule: each failed first when it last failed (all that
        is known), and a release that answered 404 or 410 before it was ever captured
        (which earlier versions never asked again) is due at once, so the next run asks
        for it. Idempotent: only what is missing is filled in."""
        self.db.execute("update failures set first_failed = at where first_failed is null")
        self.db.execute(f"update failures set next_try = at where {NEVER_CAPTURED_GONE} "
                        "and next_try is null and given_up is null")

    def _add_missing_columns(self) -> None:
        db = self.db
        for table, columns in COLUMN_SPECS.items():
            if table in db.table_names():
                have = db[table].columns_dict
                for name, kind in columns.items():
                    if name not in have:
                        db[table].add_column(name, kind)

    def close(self) -> None:
        self.db.close()

    # -- reading --------------------------------------------------------------------------

    def release(self, url: str) -> dict | None:
        rows = list(self.db["releases"].rows_where("url = ?", [url]))
        return rows[0] if rows else None

    def canonical_url(self, url: str) -> str | None:
        """The canonical URL of the release this URL (or alias, such as /node/N) is archived
        under; None when the archive does not know it."""
        row = self.db.execute(
            "select url from releases where url = :u union all "
            "select canonical from aliases where url = :u limit 1", {"u": url}).fetchone()
        return row[0] if row else None

    def retry_failures(self, now: str | None = None) -> list[tuple[str, str]]:
        """(url, kind) of releases whose last attempt failed: the next run tries them again.
        A release that answered 404 or 410 before it was ever captured only when its next
        try is due and it is not given up (an archived one gone is its recheck's business)."""
        return self.db.execute(
            f"select url, kind from failures where kind != 'gone' or ({NEVER_CAPTURED_GONE} "
            "and given_up is null and (next_try is null or next_try <= ?)) order by at",
            [now or utc_now()]).fetchall()

    def gone_not_due(self, now: str | None = None) -> list[str]:
        """Releases that answered 404 or 410 before they were ever captured and are not to
        be asked for now: their next try is not due, or they are given up."""
        return [row[0] for row in self.db.execute(
            f"select url from failures where {NEVER_CAPTURED_GONE} "
            "and (given_up is not null or next_try > ?) order by url", [now or utc_now()])]

    def last_walk_finished(self) -> bool:
        """Did the newest crawl walk its listing to a natural stop?

        If not (no crawl yet, or the last one was killed or blocked), releases older than
        where it stopped may be missing, so the next crawl must not stop at the first page
        it already knows.
        """
        row = self.db.execute(
            "select walk_finished from runs where command = 'crawl' order by id desc limit 1"
        ).fetchone()
        return bool(row and row[0])

    def walks(self) -> dict[str, dict]:
        """Every discovery walk's progress, by name ("listing", "search:<facet>")."""
        return {row["name"]: row for row in self.db["walks"].rows}

    def release_urls(self) -> list[str]:
        return [row[0] for row in self.db.execute("select url from releases order by published desc")]

    def count(self) -> int:
        return self.db["releases"].count

    def due(self, limit: int, now: str | None = None) -> list[dict]:
        """Archived releases whose recheck is due, most overdue first: url and validators.
        Gone releases are among them: the site sometimes restores one."""
        cursor = self.db.execute(
            "select url, etag, last_modified from releases "
            "where next_check is null or next_check <= ? "
            "order by next_check is not null, next_check, url limit ?",
            [now or utc_now(), limit])
        return [dict(zip(("url", "etag", "last_modified"), row)) for row in cursor]

    def due_count(self, now: str | None = None) -> int:
        return self.db.execute("select count(*) from releases where next_check is null "
                               "or next_check <= ?", [now or utc_now()]).fetchone()[0]

    def imported_by_title(self, title: str, date: str) -> str | None:
        """The URL of the imported, not yet captured release with this title published on
        this UTC date (YYYY-MM-DD), when it is the only release the archive holds with that
        title and date (imported or captured): how a search result that links a release as
        /node/<n> is known without fetching it. One range of the ``published`` index."""
        wanted = match_title(title)
        found = [(url, origin) for url, other, origin in self.db.execute(
            "select url, title, origin from releases where published >= ? and published < ?",
            [date, date + "U"]) if match_title(other) == wanted]  # 'T' < 'U': the whole day
        return found[0][0] if len(found) == 1 and found[0][1] == "imported" else None

    def imported_pending(self) -> tuple[int, str | None]:
        """How many releases are imported and not yet captured, and when the last of them
        falls due for its (first) fetch."""
        count, last = self.db.execute(
            "select count(*), max(next_check) from releases where origin = 'imported'"
        ).fetchone()
        return count, last

    def find(self, url_or_slug: str) -> dict | None:
        """A release by its URL, an alias, its slug or its file path (without its region)."""
        key = url_or_slug.strip()
        if key.endswith(".md") and "releases/" in key:  # a file path, from any folder
            key = key[key.rindex("releases/"):]
        slug = key.rstrip("/").rsplit("/", 1)[-1]
        row = self.db.execute(
            "select url from releases where url = :k or path = :k or slug = :k "
            "or url = (select canonical from aliases where url = :k) "
            "or url = 'https://www.beehive.govt.nz/release/' || :s "
            "order by url = :k desc limit 1", {"k": key, "s": slug}).fetchone()
        return self.release(row[0]) if row else None

    def revisions(self, url: str) -> list[dict]:
        """Every stored version of a release, oldest first, with its compressed region
        (the latest revision's is the release's own, stored once, in ``releases``)."""
        cursor = self.db.execute(
            "select r.url, r.revision, r.captured, r.sha256, "
            "coalesce(r.region, s.region) as region, r.run_id, r.page_url, "
            "r.source, r.document, r.imported_from "
            "from revisions r left join releases s on s.url = r.url "
            "where r.url = ? order by r.revision", [url])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor]

    # -- writing: each method is one transaction ------------------------------------------
    # Always inside db.atomic(): sqlite-utils commits a write made through db.execute or a
    # table method on its own unless a transaction is already open, which
    # ``with db.conn`` does not do until its first statement.

    def rows_for(self, urls: list[str]) -> dict[str, dict]:
        """The rows of these URLs (without the stored region or the dates), by URL."""
        rows = {}
        columns = ", ".join(["url", "path", "sha256", "body", "gone", "origin", *FIELD_NAMES])
        for start in range(0, len(urls), 500):
            chunk = urls[start:start + 500]
            cursor = self.db.execute(
                f"select {columns} from releases where url in ({', '.join('?' * len(chunk))})",
                chunk)
            names = [d[0] for d in cursor.description]
            for values in cursor:
                rows[values[0]] = dict(zip(names, values))
        return rows

    def path_owners(self, paths: list[str]) -> dict[str, str]:
        """Which release (URL) each of these file paths belongs to, where any does."""
        marks = ", ".join("?" * len(paths))
        return dict(self.db.execute(f"select path, url from releases where path in ({marks})",
                                    paths).fetchall()) if paths else {}

    def path_known(self, path: str) -> bool:
        return bool(self.db.execute("select 1 from releases where path = ?", [path]).fetchone())

    def save_rendered(self, rows, *, seen: bool, seen_urls=(), bodies=None,
                      captures=None, aliases=None) -> list[str]:
        """Record rendered releases whose files are in place, in one transaction.

        ``rows`` holds (Rendered, old row or None, requested URL or None, changed, revise):
        ``changed`` when the document differs from the recorded one, ``revise`` when it is a
        new version of the release (an edit on the site, or its first capture), which adds a
        revision. A crawl (``seen``) also stamps last_seen, clears the releases' failures and
        gone marks, sets the next recheck, keeps the response's validators (``captures``:
        URL -> {"etag", "last_modified"}) and records aliases (the requested URL, when
        another, and ``aliases``: URL -> another URL of it); ``seen_urls`` are (Rendered,
        requested URL, old row) of releases seen unchanged. A request that landed on a new
        canonical URL (a renamed slug) moves the old release, its revisions included, to the
        new URL. A rebuild changes only what rendering gives: fields, body, path and hash (and
        last_changed). Every change is logged in ``changes``. Returns the paths of files
        that releases moved away from, for removal.
        """
        from archive.archiver import body_of

        now = utc_now()
        captures, aliases = captures or {}, aliases or {}
        moved_away = []
        with self.transaction():
            moves = {}
            requests = [(row[0], row[2]) for row in rows] + [(i, r) for i, r, _ in seen_urls]
            for item, requested_url in requests:
                if requested_url and requested_url != item.url:
                    old_path = self._move(requested_url, item.url)
                    if old_path:
                        moves[item.url] = old_path
                        moved_away.append(old_path)
            for index, (item, old, requested_url, changed, *revise) in enumerate(rows):
                revise = revise[0] if revise else seen and not old
                row = {"url": item.url, **item.fields,
                       "body": bodies[index] if bodies else body_of(item.document),
                       "path": item.path, "sha256": item.sha256}
                if item.region is not None:
                    row["region"] = item.region
                if seen:
                    row.update(self._checked(item.url, item.fields["published"], captures))
                    row["origin"] = "captured"  # fetched from the site (an import's recheck too)
                if not old:
                    row.update(first_seen=now, last_seen=now, last_changed=now, gone=None)
                    self._insert(row)
                else:
                    if revise:  # the release's region is about to be the new revision's
                        self._keep_region(item.url)
                    # Only what differs: a row already right is not written at all.
                    row = {name: value for name, value in row.items()
                           if name not in old or old[name] != value}
                    if changed:
                        row["last_changed"] = now
                    if seen:
                        row.update(last_seen=now, gone=None)
                    if row:
                        self._update(item.url, row)
                revision = self._add_revision(item, now) if revise else self._revision(item.url)
                if item.url in moves:
                    self._log("moved", item, revision, old_path=moves[item.url])
                elif not old:
                    self._log("new", item, revision)
                elif changed or (seen and old.get("gone")) or old["path"] != item.path:
                    self._log("updated", item, revision,
                              old_path=old["path"] if old["path"] != item.path else None)
                if seen:
                    self._seen(item.url, requested_url, aliases.get(item.url))
            for item, requested_url, old in seen_urls:
                self._update(item.url, {
                    "last_seen": now, "gone": None,
                    **self._checked(item.url, item.fields["published"], captures)})
                if item.url in moves:
                    self._log("moved", item, self._revision(item.url), old_path=moves[item.url])
                elif old and old.get("gone"):
                    self._log("updated", item, self._revision(item.url))  # back from gone
                self._seen(item.url, requested_url, aliases.get(item.url))
        return moved_away

    def _checked(self, url: str, published: str, captures: dict) -> dict:
        """The columns a fetch of the release sets: its next recheck and, when the
        response was kept, its validators."""
        columns = {"next_check": iso(self.schedule.next_check(
            url, parse_iso(published), datetime.now(timezone.utc)))}
        if url in captures:
            columns.update(etag=captures[url].get("etag"),
                           last_modified=captures[url].get("last_modified"))
        return columns

    def _revision(self, url: str) -> int | None:
        return self.db.execute("select max(revision) from revisions where url = ?",
                               [url]).fetchone()[0]

    def _add_revision(self, item, captured: str) -> int:
        """A new latest revision. Its region is the release's own (``releases.region``),
        not stored twice: the row's region stays null until a later revision supersedes it
        (``_keep_region``)."""
        revision = (self._revision(item.url) or 0) + 1
        self.db.execute(
            "insert into revisions (url, revision, captured, sha256, run_id, source) "
            "values (?, ?, ?, ?, ?, 'crawl')",
            [item.url, revision, captured, item.sha256, self.run_id])
        return revision

    def _keep_region(self, url: str) -> None:
        """Before the release's region changes or goes: give its latest revision its own
        copy of it."""
        self.db.execute(
            "update revisions set region = (select region from releases where url = :u) "
            "where url = :u and region is null", {"u": url})

    def _move(self, old_url: str, new_url: str) -> str | None:
        """A release now answers under a new canonical URL (a renamed slug): its revisions go
        first in the new URL's history, its row goes, and the old URL becomes an alias.
        Returns the old row's file path, or None when there was no such release.

        When the new URL is another release the archive held before this run, published
        at another moment, it is no rename but a redirect from one release to another:
        nothing is merged. The old release keeps its file and history, is marked
        ``moved_to`` the other, and the change log says ``redirected`` (once). (A renamed
        release keeps its publication time; a walk may have archived it under its new URL
        already, in this run or an earlier one: that is still a rename.)"""
        old = self.db.execute("select path, sha256, moved_to, published from releases "
                              "where url = ?", [old_url]).fetchone()
        if old is None:
            return None
        if self.db.execute("select 1 from releases where url = ? and published is not ? "
                           "and exists (select 1 from revisions where url = ? "
                           "and run_id is not ?)",
                           [new_url, old[3], new_url, self.run_id]).fetchone():
            if old[2] != new_url:
                self._update(old_url, {"moved_to": new_url})
                self.log_change("redirected", old_url, old[0], old[1], self._revision(old_url))
            return None
        db = self.db
        self._keep_region(old_url)
        carried = self._revision(old_url) or 0
        # Renumber in two steps: a direct shift could collide with a number not yet moved.
        db.execute("update revisions set revision = -(revision + ?) where url = ?",
                   [carried, new_url])
        db.execute("update revisions set revision = -revision where url = ? and revision < 0",
                   [new_url])
        db.execute("update revisions set url = ?, page_url = coalesce(page_url, ?) "
                   "where url = ?", [new_url, old_url, old_url])
        db.execute("delete from releases where url = ?", [old_url])
        db.execute("update aliases set canonical = ? where canonical = ?", [new_url, old_url])
        db["aliases"].upsert({"url": old_url, "canonical": new_url}, pk="url")
        db["failures"].delete_where("url = ?", [old_url])
        return old[0]

    def _log(self, kind: str, item, revision: int | None, old_path: str | None = None) -> None:
        self.log_change(kind, item.url, item.path, item.sha256, revision, old_path)

    def log_change(self, kind: str, url: str, path: str, sha256: str, revision: int | None,
                   old_path: str | None = None) -> str:
        """Append to the change log, inside the caller's transaction.

        ``at`` is strictly later than every entry before it (the archive's lock makes this
        process the only writer), so a reader that remembers the last ``at`` it saw and asks
        for what came after never misses an entry nor gets one twice.
        """
        # The newest entry is the last by id (its primary key): no scan of the log.
        last = self.db.execute("select at from changes order by id desc limit 1").fetchone()
        last = last[0] if last else None
        at = datetime.now(timezone.utc)
        if last and at <= parse_iso(last):
            at = parse_iso(last) + timedelta(microseconds=1)
        self.db.execute(
            "insert into changes (at, kind, url, path, old_path, sha256, revision, run_id) "
            "values (?, ?, ?, ?, ?, ?, ?, ?)",
            [change_time(at), kind, url, path, old_path, sha256, revision, self.run_id])
        return change_time(at)

    # Plain statements rather than sqlite-utils' insert and update, which look the table up
    # again for every row: a rebuild after a converter change updates every row. Column
    # names are the fixed ones above, never data.
    def _insert(self, row: dict) -> None:
        names = ", ".join(row)
        marks = ", ".join("?" * len(row))
        self.db.execute(f"insert into releases ({names}) values ({marks})", list(row.values()))

    def _update(self, url: str, row: dict) -> None:
        assignments = ", ".join(f"{name} = ?" for name in row)
        self.db.execute(f"update releases set {assignments} where url = ?",
                        [*row.values(), url])

    def _seen(self, url: str, requested_url: str | None, alias: str | None = None) -> None:
        """A release was fetched: its failures are over, and the other URLs it was asked
        for or is known by are its aliases, so that a walk meeting them knows it."""
        self.db.execute("delete from failures where url in (?, ?)", [url, requested_url or url])
        # It answers under its own URL: whatever it redirected to before, it is back.
        self.db.execute("update releases set moved_to = null where url = ? "
                        "and moved_to is not null", [url])
        for other in (requested_url, alias):
            if other and other != url:
                self.db.execute("insert into aliases (url, canonical) values (?, ?) "
                                "on conflict (url) do update set canonical = excluded.canonical",
                                [other, url])

    def adopt(self, imported_url: str, url: str, slug: str) -> bool:
        """An imported release (not yet captured) is the one at ``url``: it takes that URL
        and slug, its revisions and change-log entries keep theirs, and its old URL becomes
        an alias. Nothing happens unless the archive holds it imported and nothing at
        ``url`` yet. One transaction; returns whether it happened."""
        with self.transaction():
            if not self.db.execute("select 1 from releases where url = ? and origin = "
                                   "'imported'", [imported_url]).fetchone() or \
                    self.db.execute("select 1 from releases where url = ?", [url]).fetchone():
                return False
            self.db.execute("update releases set url = ?, slug = ? where url = ?",
                            [url, slug, imported_url])
            self.db.execute("update revisions set url = ?, page_url = coalesce(page_url, ?) "
                            "where url = ?", [url, imported_url, imported_url])
            self.db.execute("update aliases set canonical = ? where canonical = ?",
                            [url, imported_url])
            self.db.execute("insert into aliases (url, canonical) values (?, ?) on conflict "
                            "(url) do update set canonical = excluded.canonical",
                            [imported_url, url])
            self.db.execute("delete from failures where url = ?", [imported_url])
        return True

    def record_failure(self, url: str, kind: str, reason: str, status: int | None,
                       run_id: int | None) -> None:
        """Remember why a release could not be captured; a gone release keeps its file.
        One that answered 404 or 410 before it was ever captured gets its next try (or is
        given up): see schedule.gone_next_try."""
        now = utc_now()
        with self.transaction():
            old = list(self.db["failures"].rows_where("url = ?", [url]))
            old = old[0] if old else {}
            release = kind == "gone" and self.db.execute(
                "select path, sha256, gone, published from releases where url = ?",
                [url]).fetchone()
            failure = {"url": url, "kind": kind, "reason": reason, "status": status,
                       "run_id": run_id, "at": now, "attempts": old.get("attempts", 0) + 1,
                       "first_failed": old.get("first_failed") or old.get("at") or now,
                       "next_try": None, "given_up": None}
            if kind == "gone" and not release:
                failure.update(self._gone_schedule(failure, old.get("given_up")))
            self.db["failures"].upsert(failure, pk="url")
            if release:
                path, sha256, gone, published = release
                # Asked again on the schedule: the site sometimes restores a release.
                self._update(url, {"gone": now, **self._checked(url, published, {})})
                if not gone:
                    self.log_change("gone", url, path, sha256, self._revision(url))

    @staticmethod
    def _gone_schedule(failure: dict, given_up: str | None) -> dict:
        """next_try and given_up of a release never captured that answered 404 or 410."""
        next_try = gone_next_try(parse_iso(failure["first_failed"]), failure["attempts"],
                                 parse_iso(failure["at"]))
        if next_try is None:
            return {"next_try": None, "given_up": given_up or failure["at"]}
        return {"next_try": iso(next_try), "given_up": None}

    def not_modified(self, url: str, etag: str | None, last_modified: str | None) -> None:
        """The site answered a recheck with 304: the release is as captured. Seen now,
        rescheduled, its failure and gone mark cleared (a gone release answering again
        is logged as updated, as one whose page came back)."""
        now = utc_now()
        with self.transaction():
            row = self.db.execute("select path, sha256, gone, published from releases "
                                  "where url = ?", [url]).fetchone()
            if row is None:
                return
            path, sha256, gone, published = row
            columns = {"last_seen": now, "gone": None,
                       **self._checked(url, published, {})}
            # A 304 may repeat the validators; keep the ones we have when it does not.
            if etag:
                columns["etag"] = etag
            if last_modified:
                columns["last_modified"] = last_modified
            self._update(url, columns)
            if gone:
                self.log_change("updated", url, path, sha256, self._revision(url))
            self._seen(url, None)

    def walk_progress(self, name: str, page: int, run_id: int | None, *,
                      finished: bool | None = None, reported: int | None = None) -> None:
        """A walk has read ``page`` (where it resumes if the run ends here)."""
        now = utc_now()
        row = {"name": name, "page": page, "updated": now, "run_id": run_id, "outcome": None}
        if finished is not None:
            row["finished"] = int(finished)
        if reported is not None:
            row["reported"] = reported
        with self.transaction():
            if not self.db.execute("select 1 from walks where name = ?", [name]).fetchone():
                row.setdefault("finished", 0)
                row["started"] = now
            self.db["walks"].upsert(row, pk="name")

    def end_walk(self, name: str, outcome: str, run_id: int | None) -> None:
        """A walk ended: ``finished`` and ``caught up`` mean everything it leads to is
        archived (it starts from page 0 next time); ``unavailable`` and ``forbidden`` mean
        it could not be walked, and is tried again by a full crawl."""
        done = outcome in ("finished", "caught up")
        now = utc_now()
        with self.transaction():
            row = {"name": name, "outcome": outcome, "updated": now, "run_id": run_id,
                   "finished": int(done)}
            if done:
                row["page"] = 0
            if not self.db.execute("select 1 from walks where name = ?", [name]).fetchone():
                row.update(started=now, page=0)
            self.db["walks"].upsert(row, pk="name")

    def start_run(self, command: str) -> int:
        with self.transaction():
            self.run_id = self.db["runs"].insert(
                {"command": command, "started": utc_now(), "outcome": "running",
                 "walk_finished": 0}
            ).last_pk
        return self.run_id

    def finish_run(self, run_id: int, **figures) -> None:
        with self.transaction():
            self.db["runs"].update(run_id, {"ended": utc_now(), **figures})

    def last_run(self) -> dict | None:
        rows = list(self.db["runs"].rows_where(order_by="id desc", limit=1))
        return rows[0] if rows else None
