"""The archive pipeline: every side effect of a crawl happens here.

A fetched page is parsed, rendered and saved through the same Archiver that ``beehive
rebuild`` and ``beehive convert`` use; a failure is recorded with its reason, so the next run
tries it again. The pipeline also holds the archive's lock for the whole run and writes the
run's row and its one-line summary.

What it returns is what Scrapy's feed exports (``scrapy crawl releases -O new.jsonl``)
write: a ReleaseRecord for each release archived or updated; everything else (unchanged
releases, failures) is dropped quietly, at DEBUG level.

Neither parsing nor saving runs in the reactor's process, which meanwhile goes on
downloading: each page is parsed, rendered and saved (file, then ledger row) in a writer
process (scraper/worker.py), one at a time, first in, first out, so releases become durable
in the order they arrived, and each is counted here only once its file and row are.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import multiprocessing
import os
import pickle
import signal
import socket
import sys
import time

from scrapy.exceptions import DropItem
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory
from twisted.protocols.basic import Int32StringReceiver
from twisted.python.failure import Failure

from archive.archiver import Archiver
from archive.parse import BlockedPage, ParseError
from archive.schedule import Schedule
from archive.store import UnsafePath
from scraper import worker
from scraper.checks import check_settings
from scraper.items import ReleaseFailure, ReleaseNotModified, ReleasePage, ReleaseRecord

# Sent just before the summary line is printed, so that whatever draws on the terminal (the
# progress line) can get out of its way.
run_finished = object()

logger = logging.getLogger(__name__)

# "interrupted": 128 + the stop signal's number, as shells report a command a signal ended
# (beehive crawl exits 143 for SIGTERM); 130 is Ctrl-C's.
OUTCOME_EXIT = {"ok": 0, "failed": 1, "incomplete": 1, "blocked": 3, "unreachable": 5,
                "interrupted": 130}


class ArchivePipeline:
    def __init__(self, crawler):
        settings = self.settings = crawler.settings
        self.crawler = crawler
        self.signals = crawler.signals
        self.stats = crawler.stats
        check_settings(settings)  # `scrapy crawl` too: stop before anything is recorded
        self.log_level = settings.get("LOG_LEVEL") if settings.getbool("LOG_ENABLED") else None
        # Raises ArchiveBusy before anything is fetched when another run holds the archive.
        self.location = (settings.get("BEEHIVE_OUT"), settings.get("BEEHIVE_DB"),
                         settings.get("BEEHIVE_RECHECK_INTERVALS"))
        self.archiver = Archiver(*self.location[:2], Schedule.parse(self.location[2])).lock()
        self.run_id = None
        self.started = None

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def open_spider(self, spider=None):
        self.started = time.monotonic()
        removed = self.archiver.store.remove_temporary_files()
        if removed:
            logger.warning("removed %d temporary files left by an interrupted run", removed)
        # A --url run walks no listing: it must not count as a crawl whose walk stopped
        # short, or the next crawl would walk the whole listing again.
        only_urls = self.settings.getlist("BEEHIVE_URLS")
        self.run_id = self.archiver.ledger.start_run("crawl --url" if only_urls else "crawl")
        self.stats.set_value("beehive/run_id", self.run_id)  # walks record their progress with it
        self._writer = self._writer_process = None  # started with the first item: see below

    @property
    def writer(self) -> WriterConnection:
        """The writer process, started when there is something to archive (a run with
        nothing new starts none). spawn: a fresh interpreter, which inherits neither the
        archive's lock (held here for the whole run) nor the reactor's threads."""
        if self._writer is None:
            self._writer, self._writer_process = start_writer(self.location, self.run_id)
        return self._writer

    async def process_item(self, item, spider=None):
        if getattr(item, "recheck", False) or isinstance(item, ReleaseNotModified):
            self.stats.inc_value("beehive/rechecked")
        if isinstance(item, ReleaseFailure):
            await self.fail(item.url, item.kind, item.reason, item.status)
            raise DropItem(f"{item.kind}: {item.url}", log_level="DEBUG")
        if isinstance(item, ReleaseNotModified):
            await self.on_writer(worker.not_modified, item.url, item.etag, item.last_modified)
            self.stats.inc_value("beehive/not_modified")
            self.stats.inc_value("beehive/unchanged")
            logger.info("not modified %s", item.url)
            raise DropItem(f"not modified: {item.url}", log_level="DEBUG")
        if not isinstance(item, ReleasePage):  # e.g. a WalkPage, for the middleware only
            raise DropItem(f"not a release page: {type(item).__name__}", log_level="DEBUG")
        try:
            archived = await self.on_writer(worker.archive_page, item)
        except BlockedPage:
            await self.fail(item.url, "blocked", "bot protection page", item.status)
        except (ParseError, UnsafePath) as error:
            await self.fail(item.url, "failed", f"not a release page: {error}", item.status)
        except OSError as error:  # the disk, not the page: the next run tries again
            await self.fail(item.url, "failed", f"could not write its file: {error}", item.status)
        except DropItem:  # the writer is gone (on_writer): nothing can be recorded
            raise
        except Exception as error:  # noqa: BLE001 - any page the converter cannot handle
            # (ConversionError, or a bug a page finds) is a recorded failure, tried again
            # by the next run and named by status, never a release dropped in silence.
            await self.fail(item.url, "failed",
                            f"could not convert: {type(error).__name__}: {error}", item.status)
        else:
            saved = archived.saved
            self.stats.inc_value(f"beehive/{saved.outcome}")
            if item.recheck and saved.revised:
                self.stats.inc_value("beehive/changed")
            logger.info("%s %s -> %s", saved.outcome, archived.url, saved.path)
            if archived.record is not None:
                return ReleaseRecord(**archived.record, outcome=saved.outcome)
            raise DropItem(f"{saved.outcome}: {item.url}", log_level="DEBUG")
        raise DropItem(f"failed: {item.url}", log_level="DEBUG")

    async def on_writer(self, function, *args):
        """function(*args) in the writer process. Once that process has ended under the
        run (killed, out of memory), nothing more can be saved: the run stops, says why, and
        ends failed; the next run fetches again what this one could not save."""
        try:
            return await self.writer.call(function, *args)
        except WriterGone as error:
            if not self.stats.get_value("beehive/writer_gone"):
                self.stats.set_value("beehive/writer_gone", True)
                self.stats.set_value("beehive/reason", str(error))
                logger.error("%s: stopping", error)
                deferred_from_coro(self.crawler.engine.close_spider_async(reason="writer_gone"))
            raise DropItem(f"not saved: {error}", log_level="DEBUG") from None

    async def fail(self, url, kind, reason, status=None):
        await self.on_writer(worker.record_failure, url, kind, reason, status, self.run_id)
        self.stats.inc_value("beehive/gone" if kind == "gone" else "beehive/failed")
        logger.warning("%s %s: %s", kind, url, reason)

    async def close_spider(self, spider=None):
        if self._writer is not None:  # every item is through by now
            self._writer.transport.loseConnection()
            await maybe_deferred_to_future(self._writer.closed)
            self._writer_process.join()  # it ends as soon as it sees its connection close
        stats = self.stats
        figures = {name: stats.get_value(f"beehive/{name}", 0)
                   for name in ("new", "updated", "unchanged", "failed", "gone", "rechecked",
                                "changed", "not_modified")}
        figures["blocked"] = stats.get_value("beehive/blocks", 0)
        figures["requested"] = stats.get_value("downloader/request_count", 0)
        # of those, how many went through the browser, and the challenge tokens it earned
        figures["browser_requests"] = stats.get_value("beehive/browser_requests", 0)
        figures["tokens"] = stats.get_value("beehive/tokens", 0)
        if stats.get_value("beehive/interrupted"):  # Ctrl-C, SIGTERM (scraper/interrupt.py)
            outcome = "interrupted"
        elif stats.get_value("beehive/unreachable"):
            outcome = "unreachable"
        elif stats.get_value("beehive/stopped_blocked"):
            outcome = "blocked"
        elif (figures["failed"] or stats.get_value("beehive/listing_failed")
              or stats.get_value("beehive/writer_gone")):
            outcome = "failed"
        elif stats.get_value("beehive/history_unavailable") or stats.get_value("beehive/search_forbidden"):
            outcome = "incomplete"
        else:
            outcome = "ok"
        walk_finished = (bool(stats.get_value("beehive/walk_finished"))
                         and outcome not in ("blocked", "unreachable"))
        elapsed = round(time.monotonic() - self.started, 2)
        self.archiver.ledger.finish_run(self.run_id, outcome=outcome, elapsed=elapsed,
                                        walk_finished=int(walk_finished),
                                        reason=stats.get_value("beehive/reason"), **figures)
        stats.set_value("beehive/outcome", outcome)
        self.archiver.close()
        if stats.get_value("beehive/history_unavailable") or stats.get_value("beehive/search_forbidden"):
            logger.warning(
                "history discovery is incomplete: the site's search %s; add the missing releases "
                "with 'beehive crawl --seed FILE' (URLs, discovery-index JSON or a sitemap), or try "
                "the search again with 'beehive crawl --full'; 'beehive status' lists them",
                "is forbidden by robots.txt" if stats.get_value("beehive/search_forbidden") else
                f"gave no results for {stats.get_value('beehive/history_unavailable')} governments")
        self.signals.send_catch_log(signal=run_finished)
        self.print_summary(summary_line(outcome, figures, elapsed))

    def print_summary(self, line: str) -> None:
        """Logged at INFO; written to stderr instead when the log would not show it (a quiet
        ``beehive crawl``, ``-s LOG_LEVEL=WARNING``), so every run ends with the line."""
        level = logging.getLevelName(str(self.log_level).upper()) if self.log_level else None
        if isinstance(level, int) and level <= logging.INFO:
            logger.info(line)
        else:
            print(line, file=sys.stderr, flush=True)


# -- the writer process ---------------------------------------------------------------------

class WriterGone(RuntimeError):
    """The writer process ended before it replied."""


class WriterConnection(Int32StringReceiver):
    """The crawl's end of its connection to the writer process (scraper/worker.py): calls go
    out, replies come back in the same order, and the reactor's thread does all of it, with
    no threads of its own."""

    MAX_LENGTH = 2**31 - 1  # a reply holds a release's Markdown body

    def __init__(self):
        self.pending: collections.deque[Deferred] = collections.deque()
        self.closed: Deferred = Deferred()

    def call(self, function, *args):
        """function(*args) in the writer process: an awaitable of its result."""
        if self.closed.called:
            raise WriterGone("the writer process ended unexpectedly")
        reply = Deferred()
        self.pending.append(reply)
        self.sendString(pickle.dumps((function.__name__, args), pickle.HIGHEST_PROTOCOL))
        return maybe_deferred_to_future(reply)

    def stringReceived(self, string: bytes) -> None:
        succeeded, value = pickle.loads(string)
        reply = self.pending.popleft()
        if succeeded:
            reply.callback(value)
        else:
            reply.errback(Failure(value))

    def connectionLost(self, reason=None) -> None:
        while self.pending:
            self.pending.popleft().errback(
                Failure(WriterGone("the writer process ended unexpectedly")))
        self.closed.callback(None)


def start_writer(location: tuple, run_id: int) -> tuple[WriterConnection, multiprocessing.Process]:
    """Start the writer process, connected to the reactor by a socket pair."""
    from twisted.internet import reactor  # not at the top: Scrapy installs its reactor first

    ours, theirs = socket.socketpair()
    process = multiprocessing.get_context("spawn").Process(
        target=worker.serve, args=(theirs, os.getpid(), *location, run_id),
        name="beehive-writer")
    with deaf_to_stop_signals():
        process.start()
    theirs.close()
    connection = WriterConnection()
    ours.setblocking(False)
    reactor.adoptStreamConnection(ours.fileno(), socket.AF_UNIX,
                                  Factory.forProtocol(lambda: connection))
    ours.close()  # the reactor holds a duplicate
    return connection, process


@contextlib.contextmanager
def deaf_to_stop_signals():
    """Processes started in here ignore SIGINT and SIGTERM from their first instant.

    Ctrl-C, `timeout` and systemd signal the whole process group; the crawl then stops
    gracefully, finishing the pages under way, so the writer must outlive the signal. It
    ends when the crawl closes its connection, or dies. An ignored signal stays ignored
    across exec, and Python then installs no KeyboardInterrupt handler.
    """
    stop_signals = (signal.SIGINT, signal.SIGTERM)
    handlers = {number: signal.signal(number, signal.SIG_IGN) for number in stop_signals}
    try:
        yield
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)


SUMMARY_FIELDS = ("requested", "new", "updated", "unchanged", "failed", "gone", "blocked")


def summary_line(outcome: str, figures: dict, elapsed: float) -> str:
    """'beehive summary: outcome=… name=value … elapsed=…s': one line a log reader can grep.
    Figures named in SUMMARY_FIELDS come first, in that order; any others follow."""
    names = [name for name in SUMMARY_FIELDS if name in figures]
    names += [name for name in figures if name not in SUMMARY_FIELDS]
    pairs = " ".join(f"{name}={figures[name]}" for name in names)
    return f"beehive summary: outcome={outcome} {pairs} elapsed={elapsed:.1f}s"
