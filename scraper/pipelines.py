"""The archive pipeline: every side effect of a crawl happens here.

A fetched page is parsed, rendered and saved through the same Archiver that ``beehive
rebuild`` and ``beehive convert`` use; a failure is recorded with its reason, so the next run
tries it again. The pipeline also holds the archive's lock for the whole run and writes the
run's row and its one-line summary.

What it returns is what Scrapy's feed exports (``scrapy crawl releases -O new.jsonl``)
write: a ReleaseRecord for each release archived or updated; everything else (unchanged
releases, failures) is dropped quietly, at DEBUG level.

Neither parsing nor saving runs in the reactor's process, which meanwhile goes on
downloading: pages are parsed and rendered (pure, CPU-bound) in a renderer process, and
every ledger write (files and rows, failures) is made in a writer process (mostly waiting on
fsync). There is one of each, taking work first in, first out, so releases become durable in
the order they arrived, and each is counted here only once its file and row are.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor

from scrapy.exceptions import DropItem

from archive.archiver import Archiver, Rendered, Saved, render
from archive.parse import BlockedPage, ParseError, parse_release
from archive.schedule import Schedule
from archive.store import UnsafePath
from archive.urls import release_slug
from archive.report import record_for
from scraper.discovery import node_shortlink
from scraper.items import ReleaseFailure, ReleaseNotModified, ReleasePage, ReleaseRecord

# Sent just before the summary line is printed, so that whatever draws on the terminal (the
# progress line) can get out of its way.
run_finished = object()

logger = logging.getLogger(__name__)

OUTCOME_EXIT = {"ok": 0, "failed": 1, "incomplete": 1, "blocked": 3, "unreachable": 5}


class ArchivePipeline:
    def __init__(self, crawler):
        settings = self.settings = crawler.settings
        self.signals = crawler.signals
        self.stats = crawler.stats
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
        self._renderer = self._writer = None  # started with the first item: see below

    @property
    def renderer(self) -> ProcessPoolExecutor:
        if self._renderer is None:
            self.start_processes()
        return self._renderer

    @property
    def writer(self) -> ProcessPoolExecutor:
        if self._writer is None:
            self.start_processes()
        return self._writer

    def start_processes(self) -> None:
        """The renderer and the writer, when there is something to archive (a run with
        nothing new starts neither). spawn: fresh interpreters, which inherit neither the
        archive's lock (held here for the whole run) nor the reactor's threads."""
        spawn = multiprocessing.get_context("spawn")
        crawl = os.getpid()
        self._renderer = ProcessPoolExecutor(1, mp_context=spawn, initializer=die_with,
                                             initargs=(crawl,))
        self._writer = ProcessPoolExecutor(1, mp_context=spawn, initializer=open_writer,
                                           initargs=(crawl, *self.location, self.run_id))
        start_deaf_to_stop_signals(self._renderer, self._writer)

    async def process_item(self, item, spider=None):
        if getattr(item, "recheck", False) or isinstance(item, ReleaseNotModified):
            self.stats.inc_value("beehive/rechecked")
        if isinstance(item, ReleaseFailure):
            await self.fail(item.url, item.kind, item.reason, item.status)
            raise DropItem(f"{item.kind}: {item.url}", log_level="DEBUG")
        if isinstance(item, ReleaseNotModified):
            await on(self.writer, not_modified, item.url, item.etag, item.last_modified)
            self.stats.inc_value("beehive/not_modified")
            self.stats.inc_value("beehive/unchanged")
            logger.info("not modified %s", item.url)
            raise DropItem(f"not modified: {item.url}", log_level="DEBUG")
        if not isinstance(item, ReleasePage):  # e.g. a WalkPage, for the middleware only
            raise DropItem(f"not a release page: {type(item).__name__}", log_level="DEBUG")
        saved = None
        try:
            rendered = await on(self.renderer, prepare, item)
            saved = await on(self.writer, save, rendered, item.url, {
                "etag": item.etag, "last_modified": item.last_modified})
        except BlockedPage:
            await self.fail(item.url, "blocked", "bot protection page", item.status)
        except (ParseError, UnsafePath) as error:
            await self.fail(item.url, "failed", f"not a release page: {error}", item.status)
        except OSError as error:  # the disk, not the page: the next run tries again
            await self.fail(item.url, "failed", f"could not write its file: {error}", item.status)
        else:
            self.stats.inc_value(f"beehive/{saved.outcome}")
            node = node_shortlink(item.body)
            if node and node != item.url:
                await on(self.writer, add_alias, node, rendered.url)
            if item.recheck and saved.revised:
                self.stats.inc_value("beehive/changed")
            logger.info("%s %s -> %s", saved.outcome, rendered.url, saved.path)
        return self.feed_record(item, rendered if saved else None, saved)

    def feed_record(self, item, release, saved):
        """The record a feed export gets for a release this run archived or updated."""
        if saved is None or saved.outcome not in ("new", "updated"):
            raise DropItem(f"{saved.outcome if saved else 'failed'}: {item.url}",
                           log_level="DEBUG")
        return ReleaseRecord(**record_for(self.archiver.ledger, release.url),
                             outcome=saved.outcome)

    @staticmethod
    def parse(page: ReleasePage):
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

    async def fail(self, url, kind, reason, status=None):
        await on(self.writer, record_failure, url, kind, reason, status, self.run_id)
        self.stats.inc_value("beehive/gone" if kind == "gone" else "beehive/failed")
        logger.warning("%s %s: %s", kind, url, reason)

    def close_spider(self, spider=None):
        for executor in (self._writer, self._renderer):  # every item is through by now
            if executor is not None:
                executor.shutdown(wait=True)
        stats = self.stats
        figures = {name: stats.get_value(f"beehive/{name}", 0)
                   for name in ("new", "updated", "unchanged", "failed", "gone", "rechecked",
                                "changed", "not_modified")}
        figures["blocked"] = stats.get_value("beehive/blocks", 0)
        figures["requested"] = stats.get_value("downloader/request_count", 0)
        if stats.get_value("beehive/unreachable"):
            outcome = "unreachable"
        elif stats.get_value("beehive/stopped_blocked"):
            outcome = "blocked"
        elif figures["failed"] or stats.get_value("beehive/listing_failed"):
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


# -- the renderer and writer processes ---------------------------------------------------------

def start_deaf_to_stop_signals(*executors) -> None:
    """Start the executors' processes ignoring SIGINT and SIGTERM from their first instant.

    Ctrl-C, `timeout` and systemd signal the whole process group; the crawl then stops
    gracefully, finishing the pages under way, so these processes must outlive the signal.
    They end when the crawl shuts them down, or dies (their pipe closes). An ignored signal
    stays ignored across exec, and Python then installs no KeyboardInterrupt handler.
    """
    stop_signals = (signal.SIGINT, signal.SIGTERM)
    handlers = {number: signal.signal(number, signal.SIG_IGN) for number in stop_signals}
    try:
        for executor in executors:
            executor.submit(int)  # starts its process, now
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)


def prepare(page: ReleasePage) -> Rendered:
    """Parse and render a fetched page. Pure: the renderer process runs it."""
    return render(ArchivePipeline.parse(page))


writer_archiver: Archiver | None = None


def die_with(crawl: int) -> None:
    """End this process when the crawl's is gone (killed with SIGKILL, say), instead of
    living on as an orphan. Stopping the writer anywhere loses nothing: a file is renamed
    into place whole and a row committed whole, and the next run clears what is left."""
    def watch():
        while os.getppid() == crawl:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="die-with-the-crawl", daemon=True).start()


def open_writer(crawl, out, db, recheck_intervals, run_id) -> None:
    global writer_archiver
    die_with(crawl)
    # The crawl's process holds the archive's lock for the whole run; this one holds the
    # writer's lock, which outlives the crawl's if the crawl is killed (Archiver.lock waits).
    writer_archiver = Archiver(out, db, Schedule.parse(recheck_intervals))
    writer_archiver.hold_writer_lock()
    writer_archiver.ledger.run_id = run_id  # what it writes belongs to this run


def save(item: Rendered, requested_url: str, validators: dict) -> Saved:
    """Its file and ledger row, durably: the writer process runs it."""
    return writer_archiver.save_rendered(item, requested_url, validators)


def record_failure(*args) -> None:
    writer_archiver.ledger.record_failure(*args)


def not_modified(*args) -> None:
    writer_archiver.ledger.not_modified(*args)


def add_alias(*args) -> None:
    writer_archiver.ledger.add_alias(*args)


def on(executor, function, *args):
    """Run function(*args) on an executor; an awaitable that the reactor's thread resumes."""
    # Imported here, not at the top: the renderer and writer processes import this module
    # for prepare and save, and need none of this. (And importing the reactor before Scrapy
    # installs its own would install the default one.)
    from scrapy.utils.defer import maybe_deferred_to_future
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred
    from twisted.python.failure import Failure

    result = Deferred()

    def settle(future: Future) -> None:
        error = future.exception()
        if error is not None:
            reactor.callFromThread(result.errback, Failure(error))
        else:
            reactor.callFromThread(result.callback, future.result())

    executor.submit(function, *args).add_done_callback(settle)
    return maybe_deferred_to_future(result)


SUMMARY_FIELDS = ("requested", "new", "updated", "unchanged", "failed", "gone", "blocked")


def summary_line(outcome: str, figures: dict, elapsed: float) -> str:
    """'beehive summary: outcome=… name=value … elapsed=…s': one line a log reader can grep.
    Figures named in SUMMARY_FIELDS come first, in that order; any others follow."""
    names = [name for name in SUMMARY_FIELDS if name in figures]
    names += [name for name in figures if name not in SUMMARY_FIELDS]
    pairs = " ".join(f"{name}={figures[name]}" for name in names)
    return f"beehive summary: outcome={outcome} {pairs} elapsed={elapsed:.1f}s"
