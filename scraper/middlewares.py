"""The crawl's middlewares, each configured by settings.

- IncrementalMiddleware (spider): skips releases the ledger holds and ends the listing walk
  at the first page with nothing new, in the manner of scrapy-deltafetch.
- RecheckMiddleware (spider): asks again, conditionally, for archived releases whose
  recheck is due.
- BackoffRetryMiddleware (downloader): Scrapy's retries, with exponential backoff and
  Retry-After.
- BotProtectionMiddleware (downloader): recognises Imperva Incapsula block pages, backs off,
  gives up a URL that stays blocked, and ends the run when the whole site blocks us.
- UnreachableMiddleware (downloader): ends the run, in one line, when the site cannot be
  reached at all (DNS failure, connection refused).
- OffsiteRedirectMiddleware (downloader): a redirect off the site is a failure naming its
  target, never followed.
"""

from __future__ import annotations

import logging
from email.utils import parsedate_to_datetime
from datetime import datetime, timezone
from urllib.parse import urljoin, urlsplit

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
    whose last attempt failed are tried again last, once the walk and everything it found
    are done: one that stays blocked can then neither delay nor stop what is new.
    """

    def __init__(self, crawler):
        super().__init__(crawler)
        settings = crawler.settings
        self.ledger = Ledger(settings.get("BEEHIVE_DB") or f"{settings.get('BEEHIVE_OUT')}/ledger.db")
        self.full = settings.getbool("BEEHIVE_FULL")
        self.only_urls = bool(settings.getlist("BEEHIVE_URLS"))  # just those: no retries
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
        for url, kind in [] if self.only_urls else self.failed_before.items():
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


class RecheckMiddleware(BaseSpiderMiddleware):
    """Ask the site again for archived releases whose recheck is due, conditionally.

    After the spider's start requests, yields up to BEEHIVE_RECHECK_MAX requests for the
    releases whose ``next_check`` has passed, most overdue first (gone ones included: the
    site sometimes restores a release), each with If-None-Match / If-Modified-Since from
    its last capture, so that an unchanged page costs a 304 and no download. Off with
    BEEHIVE_RECHECK_MAX=0, with BEEHIVE_FULL (which fetches everything anyway) and with
    BEEHIVE_URLS (exactly those releases).
    """

    def __init__(self, crawler):
        super().__init__(crawler)
        settings = crawler.settings
        self.limit = settings.getint("BEEHIVE_RECHECK_MAX")
        if settings.getbool("BEEHIVE_FULL") or settings.getlist("BEEHIVE_URLS"):
            self.limit = 0
        self.db = settings.get("BEEHIVE_DB") or f"{settings.get('BEEHIVE_OUT')}/ledger.db"

    async def process_start(self, start):
        async for request in start:
            yield request
        if self.limit <= 0:
            return
        ledger = Ledger(self.db)
        try:
            due = ledger.due(self.limit)
        finally:
            ledger.close()
        if due:
            logger.info("rechecking %d archived releases whose recheck is due", len(due))
        spider = self.crawler.spider
        for release in due:
            headers = {}
            if release["etag"]:
                headers["If-None-Match"] = release["etag"]
            if release["last_modified"]:
                headers["If-Modified-Since"] = release["last_modified"]
            request = spider.release_request(release["url"])
            # 304 is no error here: let it through to the spider.
            yield request.replace(headers=headers, meta={
                **request.meta, "recheck": True, "handle_httpstatus_list": [304]})


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


class OffsiteRedirect(IgnoreRequest):
    kind = "failed"


class OffsiteRedirectMiddleware:
    """A redirect that leaves the site (another host or port, or a scheme other than http(s))
    fails the request, naming its target, before Scrapy's RedirectMiddleware can act on it.

    Scrapy would otherwise drop a redirect to another host silently in its offsite filter
    (or follow it, for a request that is not filtered), and hand a redirect to another
    scheme on as a bare 301; either way the release would be lost without a word. Placed
    after RedirectMiddleware (nearer the downloader), so it sees the 3xx response first;
    the target is never requested.
    """

    REDIRECTS = {301, 302, 303, 307, 308}
    DEFAULT_PORTS = {"http": 80, "https": 443}

    @classmethod
    def from_crawler(cls, crawler):
        return cls()

    async def process_response(self, request, response, spider=None):
        location = response.headers.get("Location")
        if response.status not in self.REDIRECTS or not location or \
                request.meta.get("dont_redirect"):
            return response
        target = urljoin(request.url, location.decode("latin-1").strip())
        if not self.same_site(request.url, target):
            raise OffsiteRedirect(f"redirected off the site to {target} "
                                  f"(HTTP {response.status}); not followed")
        return response

    @classmethod
    def same_site(cls, source: str, target: str) -> bool:
        """Same host name and port (an http -> https upgrade on the default ports counts)."""
        source, target = urlsplit(source), urlsplit(target)
        if target.scheme not in cls.DEFAULT_PORTS:
            return False
        try:
            source_port = source.port or cls.DEFAULT_PORTS.get(source.scheme)
            target_port = target.port or cls.DEFAULT_PORTS[target.scheme]
        except ValueError:  # a port that is not a number
            return False
        if source_port != target_port and not (
                source_port == cls.DEFAULT_PORTS.get(source.scheme)
                and target_port == cls.DEFAULT_PORTS[target.scheme]):
            return False
        return source.hostname == target.hostname
