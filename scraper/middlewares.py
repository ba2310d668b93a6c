"""The crawl's three middlewares, each configured by settings.

- IncrementalMiddleware (spider): skips releases the ledger holds and ends the listing walk
  at the first page with nothing new, in the manner of scrapy-deltafetch.
- BackoffRetryMiddleware (downloader): Scrapy's retries, with exponential backoff and
  Retry-After.
- BotProtectionMiddleware (downloader): recognises Imperva Incapsula block pages, backs off,
  gives up a URL that stays blocked, and ends the run when the whole site blocks us.
- UnreachableMiddleware (downloader): ends the run, in one line, when the site cannot be
  reached at all (DNS failure, connection refused).
"""

from __future__ import annotations

import logging
from email.utils import parsedate_to_datetime
from datetime import datetime, timezone

import scrapy
from scrapy import signals
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import (CannotResolveHostError, DontCloseSpider,
                               DownloadConnectionRefusedError, IgnoreRequest)
from scrapy.spidermiddlewares.base import BaseSpiderMiddleware
from scrapy.utils.asyncio import sleep
from scrapy.utils.defer import deferred_from_coro
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet import error as twisted_errors

from archive.ledger import Ledger
from archive.parse import is_blocked

logger = logging.getLogger(__name__)


class IncrementalMiddleware(BaseSpiderMiddleware):
    """Fetch only what the ledger lacks, and stop walking once a listing page has nothing new.

    The walk runs to the end of the listing instead when BEEHIVE_FULL is set (and then every
    release is fetched again, to pick up edits), and when the last crawl did not finish its
    walk (first run, killed, blocked), since older releases may still be missing. Releases
    whose last attempt failed are tried again first.
    """

    def __init__(self, crawler):
        super().__init__(crawler)
        settings = crawler.settings
        self.ledger = Ledger(settings.get("BEEHIVE_DB") or f"{settings.get('BEEHIVE_OUT')}/ledger.db")
        self.full = settings.getbool("BEEHIVE_FULL")
        self.walk_everything = self.full or not self.ledger.last_walk_finished()
        self.stats = crawler.stats
        self.requested = set()
        # Last run's failures wait for the end of the walk (retry_failures): listed again,
        # they are neither fetched in the walk nor a reason to walk on.
        self.failed_before = dict(self.ledger.retry_failures())
        self.retried = False
        self.stats.set_value("beehive/backfill", self.walk_everything)
        crawler.signals.connect(self.ledger.close, signal=signals.spider_closed)
        crawler.signals.connect(self.retry_failures, signal=signals.spider_idle)

    def retry_failures(self):
        """On the first idle moment (the walk is over), ask again for last run's failures."""
        if self.retried:
            return
        self.retried = True
        spider = self.crawler.spider
        scheduled = False
        for url, kind in self.failed_before.items():
            if url in self.requested:
                continue  # listed again, so fetched already in this run
            self.requested.add(url)
            request = spider.release_request(url)
            request.meta["failed_before"] = kind
            self.crawler.engine.crawl(request)
            scheduled = True
        if scheduled:
            raise DontCloseSpider

    async def process_spider_output_async(self, response, result, spider=None):
        # An errback's output comes through here too: only a listing page that arrived counts.
        if response is None or "listing_page" not in response.meta or response.status != 200:
            async for item in result:
                yield item
            return
        listed = new = 0
        next_page = None
        async for item in result:
            if not isinstance(item, scrapy.Request):
                yield item
            elif "listing_page" in item.meta:
                next_page = item  # held back until we know whether this page had anything new
            else:
                listed += 1
                if item.meta["release_url"] in self.failed_before and not self.full:
                    continue
                if self.full or not self.ledger.is_known(item.meta["release_url"]):
                    new += 1
                    self.requested.add(item.meta["release_url"])
                    yield item
        self.stats.inc_value("beehive/listed", listed)
        if next_page is None:
            self.stats.set_value("beehive/walk_finished", True)
            if self.full:
                # Releases no longer listed under their URL: each answers 404 (gone) or 301
                # (renamed). Unfiltered, since a rename redirects to a page fetched already.
                for url in self.ledger.release_urls():
                    if url not in self.requested:
                        yield self.crawler.spider.release_request(url).replace(dont_filter=True)
        elif new or self.walk_everything or not listed:
            yield next_page
        else:
            logger.info("listing page %s has nothing new: stopping the walk", response.meta["listing_page"])
            self.stats.set_value("beehive/walk_finished", True)


class BackoffRetryMiddleware(RetryMiddleware):
    """Retry as Scrapy does, but wait before each retry: 2 s, 4 s, 8 s… or what Retry-After says."""

    def __init__(self, settings):
        super().__init__(settings)
        self.backoff = settings.getfloat("BEEHIVE_RETRY_BACKOFF")
        self.backoff_max = settings.getfloat("BEEHIVE_RETRY_BACKOFF_MAX")

    async def process_response(self, request, response, spider=None):
        retry = super().process_response(request, response)
        if isinstance(retry, scrapy.Request):
            await sleep(self.delay(retry, response.headers.get("Retry-After")))
        return retry

    async def process_exception(self, request, exception, spider=None):
        retry = super().process_exception(request, exception)
        if isinstance(retry, scrapy.Request):
            await sleep(self.delay(retry))
        return retry

    def delay(self, retry: scrapy.Request, retry_after: bytes | None = None) -> float:
        seconds = self.backoff * 2 ** (retry.meta.get("retry_times", 1) - 1)
        if retry_after:
            seconds = max(seconds, parse_retry_after(retry_after.decode("latin-1")))
        return min(seconds, self.backoff_max)


def parse_retry_after(value: str) -> float:
    """Retry-After is either seconds or an HTTP date; anything unreadable counts as zero."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds())
    except (TypeError, ValueError):
        return 0.0


class SiteBlocked(IgnoreRequest):
    kind = "blocked"


class BotProtectionMiddleware:
    """A block page is never a release.

    A URL that meets one waits (BEEHIVE_BLOCK_BACKOFF seconds, doubling while blocks follow
    one another) and is tried once more; blocked again, it is given up for this run (the
    pipeline records it as blocked, the next run tries it again) and the crawl moves on.
    Only when BEEHIVE_MAX_BLOCKS different URLs are blocked in a row, or a listing page
    stays blocked (nothing more can be discovered), is it the site blocking us: the run
    stops. A release that was already blocked last run does not add to the streak, so a
    page the site always blocks cannot stop every run.
    """

    def __init__(self, crawler):
        self.crawler = crawler
        self.max_blocks = crawler.settings.getint("BEEHIVE_MAX_BLOCKS")
        self.backoff = crawler.settings.getfloat("BEEHIVE_BLOCK_BACKOFF")
        self.streak = []  # different URLs blocked since the last page that was not a block

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    async def process_response(self, request, response, spider=None):
        if request.url.endswith("/robots.txt") or not is_blocked(response.body):
            self.streak.clear()
            return response
        stats = self.crawler.stats
        stats.inc_value("beehive/blocks")
        if request.url not in self.streak and request.meta.get("failed_before") != "blocked":
            self.streak.append(request.url)
        blocked_again = request.meta.get("blocked_once", False)
        if len(self.streak) >= self.max_blocks:
            self.stop(f"{len(self.streak)} different pages blocked in a row")
        elif blocked_again and "listing_page" in request.meta:
            self.stop(f"listing page {request.meta['listing_page']} stays blocked")
        if self.stopped or blocked_again:
            raise SiteBlocked(f"bot protection page (HTTP {response.status})"
                              + (", again after waiting" if blocked_again else ""))
        wait = self.backoff * 2 ** max(0, len(self.streak) - 1)
        logger.warning("bot protection page for %s: waiting %.0f s", request.url, wait)
        await sleep(wait)
        return request.replace(dont_filter=True, meta={**request.meta, "blocked_once": True})

    @property
    def stopped(self) -> bool:
        return bool(self.crawler.stats.get_value("beehive/stopped_blocked"))

    def stop(self, why: str) -> None:
        if self.stopped:
            return
        reason = f"blocked by the site's bot protection: {why}"
        self.crawler.stats.set_value("beehive/stopped_blocked", True)
        self.crawler.stats.set_value("beehive/reason", reason)
        logger.error("%s: stopping", reason)
        deferred_from_coro(self.crawler.engine.close_spider_async(reason="blocked"))


class SiteUnreachable(IgnoreRequest):
    kind = "failed"


# Errors that mean the site cannot be reached at all, not that one page is broken.
UNREACHABLE = (
    (CannotResolveHostError, "DNS lookup failed"),
    (twisted_errors.DNSLookupError, "DNS lookup failed"),
    (DownloadConnectionRefusedError, "connection refused"),
    (twisted_errors.ConnectionRefusedError, "connection refused"),
    (twisted_errors.NoRouteError, "no route to host"),
    (twisted_errors.TCPTimedOutError, "connection timed out"),
    (twisted_errors.ConnectError, "cannot connect"),
)


def unreachable_cause(exception: BaseException) -> str | None:
    for kind, cause in UNREACHABLE:
        if isinstance(exception, kind):
            return cause
    return None


class UnreachableMiddleware:
    """When the site cannot be reached (after the retries), say so in one line and end the
    run with outcome ``unreachable``, instead of failing every request with a traceback.

    Sits below the retry middleware, so it sees only errors that retrying did not cure.
    """

    def __init__(self, crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def process_request(self, request, spider=None):
        reason = self.crawler.stats.get_value("beehive/unreachable")
        if reason:
            raise SiteUnreachable(reason)

    def process_exception(self, request, exception, spider=None):
        cause = unreachable_cause(exception)
        if cause is None:
            return None
        stats = self.crawler.stats
        if not stats.get_value("beehive/unreachable"):
            reason = f"cannot reach {urlparse_cached(request).hostname}: {cause}"
            stats.set_value("beehive/unreachable", reason)
            stats.set_value("beehive/reason", reason)
            logger.error(reason)
            deferred_from_coro(self.crawler.engine.close_spider_async(reason="unreachable"))
        # An IgnoreRequest: Scrapy's robots.txt middleware logs anything else with a traceback.
        raise SiteUnreachable(stats.get_value("beehive/unreachable"))
