"""Reading the archive's past: revisions of a release, and the change log.

``beehive history``, ``show``, ``diff`` and ``changes`` come through here. Nothing here writes.
A revision is given back by rendering its stored content region with the current converter,
so the text of revision 1 is byte for byte the file the archive held then, as long as the
converter has not changed since.
"""

from __future__ import annotations

import difflib
import re
from datetime import datetime, timezone
from typing import Iterator

from archive.archiver import render
from archive.ledger import Ledger, change_time, decompress
from archive.parse import parse_release
from archive.schedule import parse_iso


class NotFound(LookupError):
    """No such release or revision in the ledger."""


def document(revision: dict) -> str:
    """The file text of a stored revision: an imported one's own text, else rendered
    from its region."""
    if revision.get("document") is not None:
        return decompress(revision["document"])
    url = revision.get("page_url") or revision["url"]
    return render(parse_release(decompress(revision["region"]), url), keep_region=False).document


def release_revisions(ledger: Ledger, url_or_slug: str) -> tuple[dict, list[dict]]:
    release = ledger.find(url_or_slug)
    if release is None:
        raise NotFound(f"no release {url_or_slug!r} in the ledger (give its URL, slug or file path)")
    revisions = ledger.revisions(release["url"])
    if not revisions:
        raise NotFound(f"no revisions recorded for {release['url']}")
    return release, revisions


def line_counts(before: str | None, after: str) -> tuple[int, int]:
    """Lines added and removed from ``before`` to ``after`` (all added when no before)."""
    if before is None:
        return len(after.splitlines()), 0
    added = removed = 0
    for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0):
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return added, removed


def history(ledger: Ledger, url_or_slug: str) -> tuple[dict, list[dict]]:
    """The release, and one entry per revision: number, captured, sha256, lines added and
    removed against the revision before."""
    release, revisions = release_revisions(ledger, url_or_slug)
    entries, before = [], None
    for revision in revisions:
        text = document(revision)
        added, removed = line_counts(before, text)
        entries.append({"revision": revision["revision"], "captured": revision["captured"],
                        "sha256": revision["sha256"], "added": added, "removed": removed,
                        "run_id": revision["run_id"],
                        "source": revision.get("source") or "crawl",
                        "url": revision.get("page_url") or revision["url"]})
        before = text
    return release, entries


def pick(revisions: list[dict], number: int | None = None, at: str | None = None) -> dict:
    """Revision ``number``, or the one the archive held at moment ``at``, or the latest."""
    if number is not None:
        for revision in revisions:
            if revision["revision"] == number:
                return revision
        raise NotFound(f"no revision {number}: the release has revisions "
                       f"1 to {revisions[-1]['revision']}")
    if at is not None:
        held = [r for r in revisions if parse_iso(r["captured"]) <= parse_moment(at)]
        if not held:
            raise NotFound(f"not yet captured at {at}: revision 1 was captured "
                           f"{revisions[0]['captured']}")
        return held[-1]
    return revisions[-1]


def diff(ledger: Ledger, url_or_slug: str, a: int | None = None, b: int | None = None
         ) -> Iterator[str]:
    """A unified diff from revision ``a`` to ``b`` (default: the last two; ``b`` defaults to
    the latest)."""
    release, revisions = release_revisions(ledger, url_or_slug)
    newer = pick(revisions, b)
    if a is None:
        older = pick(revisions, newer["revision"] - 1) if newer["revision"] > 1 else newer
    else:
        older = pick(revisions, a)
    path = release["path"]
    # Files end without a newline; diff them as lines that do, so the last line is no change.
    yield from difflib.unified_diff(
        (document(older) + "\n").splitlines(keepends=True),
        (document(newer) + "\n").splitlines(keepends=True),
        fromfile=f"{path}@{older['revision']}", tofile=f"{path}@{newer['revision']}",
        fromfiledate=older["captured"], tofiledate=newer["captured"])


# -- the change log -------------------------------------------------------------------------

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_moment(text: str) -> datetime:
    """A UTC moment from ``YYYY-MM-DD`` or ISO 8601 (``Z`` or an offset; no zone means UTC)."""
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value + "T00:00:00" if _DATE.match(value)
                                        else value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a timestamp (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS[.ffffff]Z): "
                         f"{text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


CHANGE_FIELDS = ("at", "kind", "url", "path", "old_path", "sha256", "revision", "run_id")


def changes(ledger: Ledger, since: str | None) -> Iterator[dict]:
    """Change log entries after ``since``, oldest first, read a page at a time.

    ``since`` is a moment (entries strictly after it: pass the ``at`` of the last entry
    seen) or a run id, a plain integer (entries made by later runs); None gives the whole log.
    """
    if since is None or since.strip().isdigit():
        after_run = int(since) if since else None
        condition, value = ("coalesce(run_id, 0) > :v", after_run) if since else ("1", None)
    else:
        condition, value = "at > :v", change_time(parse_moment(since))
    last = 0
    while True:
        rows = ledger.db.execute(
            f"select id, {', '.join(CHANGE_FIELDS)} from changes "
            f"where {condition} and id > :last order by id limit 256",
            {"v": value, "last": last}).fetchall()
        if not rows:
            return
        for row in rows:
            yield dict(zip(CHANGE_FIELDS, row[1:]))
        last = rows[-1][0]


def format_change(change: dict) -> str:
    """One line: at, kind, revision, path (old -> new for a move), sha256, URL; tab-separated."""
    path = (f"{change['old_path']} -> {change['path']}" if change["old_path"]
            else change["path"])
    revision = f"r{change['revision']}" if change["revision"] else "-"
    return "\t".join([change["at"], change["kind"], revision, path, change["sha256"] or "",
                      change["url"]])
