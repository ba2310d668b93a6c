"""The crawl's writer process: every page the pipeline is handed is parsed, rendered and
saved here, one at a time and in order, while the crawl's own process goes on downloading.

One process does all three, so a page crosses between processes once, and what comes back
is small: what happened, and the release's record for the feed exports. Calls come in over
a socket, each a length-prefixed pickle (Twisted's Int32StringReceiver framing, which the
crawl's end speaks: see scraper.pipelines.WriterConnection), and each gets its reply, in
order. This module imports no Scrapy, which keeps the process quick to start.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import socket
import struct
from dataclasses import dataclass

from archive.archiver import Archiver, Saved, render
from archive.parse import ParseError, parse_release
from archive.report import record_for
from archive.schedule import Schedule
from archive.urls import release_slug
from scraper.discovery import node_shortlink
from scraper.items import ReleasePage

archiver: Archiver | None = None


@dataclass
class Archived:
    """What became of a page: its release's canonical URL, its file's fate, and its record
    when it is new or updated (what a crawl's feed exports get)."""

    url: str
    saved: Saved
    record: dict | None


HEADER = struct.Struct("!I")  # a message's length, as Int32StringReceiver frames it


def serve(connection: socket.socket, crawl: int, out, db, recheck_intervals: str,
          run_id: int) -> None:
    """The process: a call in, its reply out, until the crawl closes its end or is gone.

    A crawl killed with SIGKILL closes its end too: this process then finishes the call
    under way (a file is renamed into place whole and a row committed whole) and ends.
    """
    global archiver
    archiver = Archiver(out, db, Schedule.parse(recheck_intervals))
    # The crawl's process holds the archive's lock for the whole run; this one holds the
    # writer's lock, which outlives the crawl's if the crawl is killed (Archiver.lock waits).
    archiver.hold_writer_lock()
    archiver.ledger.run_id = run_id
    with connection, connection.makefile("rwb") as stream:
        try:
            while reply_to(stream, crawl):
                pass
        except OSError:  # the crawl is gone
            pass
        finally:
            archiver.close()


def reply_to(stream, crawl: int) -> bool:
    """Read a call, make it and send its reply; false when there is none to make."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size or os.getppid() != crawl:
        return False
    name, args = pickle.loads(stream.read(HEADER.unpack(header)[0]))
    try:
        reply = pickle.dumps((True, CALLS[name](*args)), pickle.HIGHEST_PROTOCOL)
    except Exception as error:  # the crawl's end raises it: BlockedPage, ParseError...
        try:
            reply = pickle.dumps((False, error), pickle.HIGHEST_PROTOCOL)
        except Exception:
            reply = pickle.dumps((False, RuntimeError(repr(error))))
    stream.write(HEADER.pack(len(reply)) + reply)
    stream.flush()
    return True


def parse_page(page: ReleasePage):
    """A fetched page's release. Pure."""
    if "html" not in page.content_type.lower():
        raise ParseError(f"not an HTML page ({page.content_type or 'no content type'})")
    release = parse_release(page.body)
    # The page's canonical link is the release's identity; when it is missing or names
    # another host, the URL we were redirected to stands in.
    if release_slug(release.url) is None:
        url = page.final_url if release_slug(page.final_url) else page.url
        if release_slug(url) is None:
            raise ParseError(f"not a release URL: {url}")
        release = dataclasses.replace(release, url=url, slug=release_slug(url))
    return release


def archive_page(page: ReleasePage) -> Archived:
    """Parse, render and save a fetched page: its file and ledger row, durably. Raises
    BlockedPage, ParseError, UnsafePath or OSError, and then has saved nothing."""
    rendered = render(parse_page(page))
    validators = {"etag": page.etag, "last_modified": page.last_modified}
    saved = archiver.save_rendered(rendered, page.url, validators,
                                   alias=node_shortlink(page.body))
    fresh = saved.outcome in ("new", "updated")
    record = record_for(archiver.ledger, rendered.url) if fresh else None
    return Archived(rendered.url, saved, record)


def record_failure(*args) -> None:
    archiver.ledger.record_failure(*args)


def not_modified(*args) -> None:
    archiver.ledger.not_modified(*args)


CALLS = {call.__name__: call for call in (archive_page, record_failure, not_modified)}
