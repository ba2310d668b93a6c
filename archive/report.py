"""Reading the ledger for other tools and people: ``status``, ``export`` and ``search``.

Nothing here writes. Long reads go through the ledger in keyset pages so that a crawl
running at the same time is never kept waiting on a reader for long, and memory stays flat
whatever the archive's size.
"""

from __future__ import annotations

import csv
import json
import re
from datetime import datetime, timedelta, timezone
from typing import IO, Iterator

from archive.governments import spans
from archive.ledger import NEVER_CAPTURED_GONE, Ledger, decompress, utc_now
from archive.parse import SITE, parse_release, reference_slug
from archive.store import sha256_text

EXPORT_FIELDS = ("title", "date", "url", "ministers", "portfolios", "attachments",
                 "published", "nz_date", "body", "path", "sha256")
LIST_FIELDS = ("ministers", "portfolios", "attachments")
PAGE = 256


def front_matter_url(slug: str) -> str:
    """The url the file's front matter gives (Release.archive_url), from the stored slug."""
    return SITE + "/release/" + reference_slug(slug)


# -- status -------------------------------------------------------------------------------

def _release_summary(row) -> dict | None:
    if row is None:
        return None
    return dict(zip(("date", "published", "title", "url", "path"), row))


def status(ledger: Ledger) -> dict:
    db = ledger.db
    ends = "select date, published, title, url, path from releases order by published {}, url limit 1"
    failures = [dict(zip(("url", "kind", "reason", "status", "attempts", "at", "run_id"), row))
                for row in db.execute("select url, kind, reason, status, attempts, at, run_id "
                                      f"from failures where not ({NEVER_CAPTURED_GONE}) "
                                      "order by at, url")]
    return {
        "ledger": str(ledger.path),
        "releases": ledger.count(),
        "oldest": _release_summary(db.execute(ends.format("asc")).fetchone()),
        "newest": _release_summary(db.execute(ends.format("desc")).fetchone()),
        "last_run": ledger.last_run(),
        "failures": failures,
        "never_captured": never_captured(ledger),
        "revisions": db.execute("select count(*) from revisions").fetchone()[0],
        "due": ledger.due_count(),
        "gone": db.execute("select count(*) from releases where gone is not null").fetchone()[0],
        "history": history(ledger),
        **imported_status(ledger),
    }


def never_captured(ledger: Ledger, now: str | None = None) -> list[dict]:
    """Releases that answered 404 or 410 before they were ever captured, asked again on a
    schedule (not at once, like other failures): when each first and last answered so, and
    when it is due again (``due``: the next run asks), or since when it is given up. Next
    due first, given up last."""
    names = ("url", "kind", "reason", "status", "attempts", "first_failed", "at",
             "next_try", "given_up", "run_id", "due")
    cursor = ledger.db.execute(
        f"select {', '.join(names[:-1])}, given_up is null and coalesce(next_try <= ?, 1) "
        f"from failures where {NEVER_CAPTURED_GONE} "
        "order by given_up is not null, next_try, given_up, url", [now or utc_now()])
    return [{**dict(zip(names, row)), "due": bool(row[-1])} for row in cursor]


def imported_status(ledger: Ledger) -> dict:
    """Releases imported (beehive import) and not yet captured from the site, and when the
    last of them falls due for its first fetch (a recheck)."""
    count, last_due = ledger.imported_pending()
    return {"imported": count, "imported_last_due": last_due}


def walk_state(row: dict | None) -> str:
    if row is None:
        return "not walked"
    if row["outcome"]:
        return row["outcome"]
    return f"unfinished (resumes at page {row['page']})"


def history(ledger: Ledger) -> list[dict]:
    """Per government, newest first: what its search reported, how many of its releases
    the archive holds (by publication date), and how its search walk stands."""
    walks = ledger.walks()
    rows = []
    for government, first, end in spans():
        archived = ledger.db.execute(
            "select count(*) from releases where date >= ? and (? is null or date < ?)",
            [first, end, end]).fetchone()[0]
        walk = walks.get(government.walk)
        rows.append({"government": government.name, "facet": government.facet,
                     "reported": walk["reported"] if walk else None, "archived": archived,
                     "walk": walk_state(walk),
                     "walk_finished": bool(walk and walk["finished"])})
    return rows


def format_status(report: dict) -> Iterator[str]:
    yield (f"releases archived: {report['releases']}, revisions {report['revisions']}, "
           f"due for a recheck {report['due']}, gone from the site {report['gone']}  "
           f"(ledger {report['ledger']})")
    if report.get("imported"):
        yield (f"imported, not yet captured from the site: {report['imported']} (each is "
               f"fetched when its recheck falls due; the last at {report['imported_last_due']})")
    for end in ("oldest", "newest"):
        release = report[end]
        if release:
            yield f"{end}: {release['date']}  {release['title']}  ({release['path']})"
    run = report["last_run"]
    if run:
        figures = ", ".join(f"{name} {run[name]}" for name in
                            ("requested", "new", "updated", "unchanged", "failed", "gone",
                             "blocked", "rechecked", "changed", "not_modified",
                             "browser_requests", "tokens")
                            if run.get(name) is not None)
        elapsed = f", {run['elapsed']}s" if run.get("elapsed") is not None else ""
        reason = f" ({run['reason']})" if run.get("reason") else ""
        yield (f"last run: #{run['id']} {run['command']} started {run['started']}, "
               f"ended {run['ended'] or '(not finished)'}{elapsed}, outcome {run['outcome']}"
               + reason + (f": {figures}" if figures else ""))
    else:
        yield "last run: none"
    failures = report["failures"]
    yield f"failed on their last attempt: {len(failures)}"
    for failure in failures:
        status = f" (HTTP {failure['status']})" if failure["status"] else ""
        yield (f"  {failure['url']}  {failure['kind']}{status}: {failure['reason']}  "
               f"[{failure['attempts']} attempts, last {failure['at']}]")
    waiting = report["never_captured"]
    if waiting:
        yield (f"answered 404 or 410 before they were ever captured, asked again on a "
               f"schedule: {len(waiting)}")
    for failure in waiting:
        status = f" (HTTP {failure['status']})" if failure["status"] else ""
        if failure["given_up"]:
            when = (f"given up {failure['given_up']} (asked only by 'beehive crawl --full', "
                    "--url or --seed)")
        elif failure["due"]:
            when = f"next try: the next run (due since {failure['next_try'] or failure['at']})"
        else:
            when = f"next try {failure['next_try']}"
        yield (f"  {failure['url']}  {failure['kind']}{status}  [{failure['attempts']} "
               f"attempts, first {failure['first_failed']}, last {failure['at']}], {when}")
    history = report["history"]
    missing = [row for row in history if not row["walk_finished"]]
    if missing:
        yield (f"history discovery: incomplete: {len(missing)} of {len(history)} governments' "
               "search walks not finished (an unfinished walk resumes in the next 'beehive "
               "crawl'; for a search unavailable or forbidden, add its releases with 'beehive "
               "crawl --seed FILE', or try it again with 'beehive crawl --full')")
    else:
        yield "history discovery: complete (every government's search walked to its end)"
    yield f"  {'government':<32} {'search reported':>15} {'archived':>9}  walk"
    for row in history:
        reported = "-" if row["reported"] is None else row["reported"]
        yield f"  {row['government']:<32} {reported:>15} {row['archived']:>9}  {row['walk']}"


# -- check: for monitoring --------------------------------------------------------------

DURATION = re.compile(r"(\d+)([smhd])")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """'90m', '2h', '1d', '1h30m' -> timedelta; ValueError for anything else."""
    text = text.strip().lower()
    if not text or DURATION.sub("", text):
        raise ValueError(f"not a duration like 90m, 2h or 1d: {text!r}")
    return timedelta(seconds=sum(int(n) * UNIT_SECONDS[u] for n, u in DURATION.findall(text)))


def format_age(age: timedelta) -> str:
    minutes = int(age.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    return f"{hours // 24}d{hours % 24}h"


def check(ledger: Ledger, max_age: timedelta, now: datetime | None = None) -> tuple[bool, str]:
    """Did the last crawl that ended end ``ok``, within ``max_age``? And one line saying so.

    A crawl still running (or killed: it never ended) is passed over, so a killed run shows
    up as the previous run growing old.
    """
    now = now or datetime.now(timezone.utc)
    row = ledger.db.execute(
        "select id, ended, outcome, reason from runs where command = 'crawl' "
        "and ended is not null order by id desc limit 1").fetchone()
    if row is None:
        return False, "no crawl has ended yet"
    run_id, ended, outcome, reason = row
    age = now - datetime.fromisoformat(ended.replace("Z", "+00:00"))
    said = f"last crawl #{run_id} ended {outcome}{f' ({reason})' if reason else ''} " \
           f"{format_age(age)} ago"
    if outcome != "ok":
        return False, said
    if age > max_age:
        return False, f"{said}, longer ago than {format_age(max_age)}"
    return True, said


# -- export -------------------------------------------------------------------------------

RECORD_COLUMNS = ("published, url, slug, title, date, nz_date, ministers, portfolios, "
                  "attachments, body, path, sha256")


def release_record(row) -> dict:
    """A release's record, from its ledger row's RECORD_COLUMNS: what ``beehive export``
    writes and what a crawl hands to Scrapy's feed exports."""
    (published, url, slug, title, date, nz_date, ministers, portfolios, attachments,
     body, path, sha256) = row
    return {
        "title": title, "date": date, "url": front_matter_url(slug),
        "ministers": json.loads(ministers or "[]"),
        "portfolios": json.loads(portfolios or "[]"),
        "attachments": json.loads(attachments or "[]"),
        "published": published, "nz_date": nz_date, "body": body,
        "path": path, "sha256": sha256,
    }


def record_for(ledger: Ledger, url: str) -> dict | None:
    """The record of the release archived under this canonical URL, or None."""
    row = ledger.db.execute(f"select {RECORD_COLUMNS} from releases where url = ?",
                            [url]).fetchone()
    return release_record(row) if row else None


def export_records(ledger: Ledger, since: str | None = None) -> Iterator[dict]:
    """One record per release, oldest first, read a page at a time."""
    since_clause = " and date >= :since" if since else ""
    last = ("", "")
    while True:
        rows = ledger.db.execute(
            f"select {RECORD_COLUMNS} from releases where (published, url) > (:p, :u)"
            f"{since_clause} order by published, url limit {PAGE}",
            {"p": last[0], "u": last[1], "since": since}).fetchall()
        if not rows:
            return
        for row in rows:
            yield release_record(row)
        last = (rows[-1][0], rows[-1][1])


def revision_records(ledger: Ledger, since: str | None = None) -> Iterator[dict]:
    """One record per revision of each release (oldest release first, its revisions in
    order), each read back from its stored page: the fields as that version had them, and
    its ``revision`` number and ``captured`` time."""
    from archive.archiver import body_of, render

    for release in export_records(ledger, since):
        url = ledger.find(release["path"])["url"]
        for revision in ledger.revisions(url):
            if revision.get("document") is not None:  # imported: its file's own text
                yield {**imported_record(decompress(revision["document"])),
                       "path": release["path"], "revision": revision["revision"],
                       "captured": revision["captured"]}
                continue
            parsed = parse_release(decompress(revision["region"]),
                                   revision.get("page_url") or url)
            text = render(parsed, keep_region=False).document
            yield {
                "title": parsed.title, "date": parsed.date, "url": parsed.archive_url,
                "ministers": list(parsed.ministers), "portfolios": list(parsed.portfolios),
                "attachments": list(parsed.attachments),
                "published": parsed.published.isoformat().replace("+00:00", "Z"),
                "nz_date": parsed.nz_date, "body": body_of(text),
                "path": release["path"], "sha256": sha256_text(text),
                "revision": revision["revision"], "captured": revision["captured"],
            }


def imported_record(text: str) -> dict:
    """An export record of an imported file's text: its front matter and body (the
    publication time is unknown but for its UTC date; the New Zealand date too)."""
    import frontmatter

    from archive.archiver import body_of

    post = frontmatter.loads(text)
    date = str(post.metadata.get("date"))
    return {
        "title": post.metadata.get("title"), "date": date, "url": post.metadata.get("url"),
        "ministers": list(post.metadata.get("ministers") or []),
        "portfolios": list(post.metadata.get("portfolios") or []),
        "attachments": list(post.metadata.get("attachments") or []),
        "published": f"{date}T00:00:00Z", "nz_date": None, "body": body_of(text),
        "path": None, "sha256": sha256_text(text),
    }


def export(ledger: Ledger, stream: IO[str], fmt: str = "jsonl", since: str | None = None,
           revisions: bool = False) -> int:
    """Write the records to a text stream as they are read; returns how many."""
    count = 0
    records = revision_records(ledger, since) if revisions else export_records(ledger, since)
    if fmt == "csv":
        fields = EXPORT_FIELDS + (("revision", "captured") if revisions else ())
        writer = csv.DictWriter(stream, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for record in records:
            for name in LIST_FIELDS:  # a list in one cell: JSON, unambiguous
                record[name] = json.dumps(record[name], ensure_ascii=False)
            writer.writerow(record)
            count += 1
    else:
        for record in records:
            stream.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


# -- search -------------------------------------------------------------------------------

def search(ledger: Ledger, query: str, limit: int | None = None) -> list[dict]:
    """Full-text search over titles and bodies, best match first.

    ``query`` is FTS5 syntax (words, "phrases", prefix*, AND/OR/NOT); a malformed one
    raises sqlite3.OperationalError.
    """
    return list(ledger.db["releases"].search(
        query, columns=["date", "title", "path", "url"], limit=limit))
