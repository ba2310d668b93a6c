"""The archive pipeline: every side effect of a crawl happens here.

A fetched page is parsed, rendered and saved through the same Archiver that ``beehive
rebuild`` and ``beehive convert`` use; a failure is recorded with its reason, so the next run
tries it again. The pipeline also holds the archive's lock for the whole run and writes the
run's row and its one-line summary.

What it returns is what Scrapy's feed exports (``scrapy crawl releases -O new.jsonl``)
write: a ReleaseRecord for each release archived or updated; everything else (unchanged
releases, failures) is dropped quietly, at DEBUG level.
"""

from __future__ import annotations

import dataclasses
import logging
import time

from scrapy.exceptions import DropItem

from archive.archiver import Archiver
from archive.parse import BlockedPage, ParseError, parse_release
from archive.schedule import Schedule
from archive.store import UnsafePath
from archive.urls import release_slug
from archive.report import record_for
from scraper.discovery import node_shortlink
from scraper.items import ReleaseFailure, ReleaseNotModified, ReleasePage, ReleaseRecord

logger = logging.getLogger(__name__)

OUTCOME_EXIT = {"ok": 0, "failed": 1, "incomplete": 1, "blocked": 3}


class ArchivePipeline:
    def __init__(self, crawler):
        settings = self.settings = crawler.settings
        self.stats = crawler.stats
        # Raises ArchiveBusy before anything is fetched when another run holds the archive.
        self.archiver = Archiver(settings.get("BEEHIVE_OUT"), settings.get("BEEHIVE_DB"),
                                 Schedule.parse(settings.get("BEEHIVE_RECHECK_INTERVALS"))).lock()
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

    def process_item(self, item, spider=None):
        if getattr(item, "recheck", False) or isinstance(item, ReleaseNotModified):
            self.stats.inc_value("beehive/rechecked")
        if isinstance(item, ReleaseFailure):
            self.fail(item.url, item.kind, item.reason, item.status)
            raise DropItem(f"{item.kind}: {item.url}", log_level="DEBUG")
        if isinstance(item, ReleaseNotModified):
            self.archiver.ledger.not_modified(item.url, item.etag, item.last_modified)
            self.stats.inc_value("beehive/not_modified")
            self.stats.inc_value("beehive/unchanged")
            logger.info("not modified %s", item.url)
            raise DropItem(f"not modified: {item.url}", log_level="DEBUG")
        if not isinstance(item, ReleasePage):  # e.g. a WalkPage, for the middleware only
            raise DropItem(f"not a release page: {type(item).__name__}", log_level="DEBUG")
        saved = None
        try:
            release = self.parse(item)
            saved = self.archiver.save(release, requested_url=item.url, validators={
                "etag": item.etag, "last_modified": item.last_modified})
        except BlockedPage:
            self.fail(item.url, "blocked", "bot protection page", item.status)
        except (ParseError, UnsafePath) as error:
            self.fail(item.url, "failed", f"not a release page: {error}", item.status)
        except OSError as error:  # the disk, not the page: the next run tries again
            self.fail(item.url, "failed", f"could not write its file: {error}", item.status)
        else:
            self.stats.inc_value(f"beehive/{saved.outcome}")
            node = node_shortlink(item.body)
            if node and node != item.url:
                self.archiver.ledger.add_alias(node, release.url)
            if item.recheck and saved.revised:
                self.stats.inc_value("beehive/changed")
            logger.info("%s %s -> %s", saved.outcome, release.url, saved.path)
        return self.feed_record(item, release if saved else None, saved)

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

    def fail(self, url, kind, reason, status=None):
        self.archiver.ledger.record_failure(url, kind, reason, status, self.run_id)
        self.stats.inc_value("beehive/gone" if kind == "gone" else "beehive/failed")
        logger.warning("%s %s: %s", kind, url, reason)

    def close_spider(self, spider=None):
        stats = self.stats
        figures = {name: stats.get_value(f"beehive/{name}", 0)
                   for name in ("new", "updated", "unchanged", "failed", "gone", "rechecked",
                                "changed", "not_modified")}
        figures["blocked"] = stats.get_value("beehive/blocks", 0)
        figures["requested"] = stats.get_value("downloader/request_count", 0)
        if stats.get_value("beehive/stopped_blocked"):
            outcome = "blocked"
        elif figures["failed"] or stats.get_value("beehive/listing_failed"):
            outcome = "failed"
        elif stats.get_value("beehive/history_unavailable") or stats.get_value("beehive/search_forbidden"):
            outcome = "incomplete"
        else:
            outcome = "ok"
        walk_finished = bool(stats.get_value("beehive/walk_finished")) and outcome != "blocked"
        elapsed = round(time.monotonic() - self.started, 2)
        self.archiver.ledger.finish_run(self.run_id, outcome=outcome, elapsed=elapsed,
                                        walk_finished=int(walk_finished), **figures)
        stats.set_value("beehive/outcome", outcome)
        self.archiver.close()
        if stats.get_value("beehive/history_unavailable") or stats.get_value("beehive/search_forbidden"):
            logger.warning(
                "history discovery is incomplete: the site's search %s; add the missing releases "
                "with 'beehive crawl --seed FILE' (URLs, discovery-index JSON or a sitemap), or try "
                "the search again with 'beehive crawl --full'; 'beehive status' lists them",
                "is forbidden by robots.txt" if stats.get_value("beehive/search_forbidden") else
                f"gave no results for {stats.get_value('beehive/history_unavailable')} governments")
        logger.info(
            "beehive summary: outcome=%s requested=%d new=%d updated=%d unchanged=%d "
            "failed=%d gone=%d blocked=%d rechecked=%d changed=%d not_modified=%d elapsed=%.1fs",
            outcome, figures["requested"], figures["new"], figures["updated"],
            figures["unchanged"], figures["failed"], figures["gone"], figures["blocked"],
            figures["rechecked"], figures["changed"], figures["not_modified"], elapsed,
        )
