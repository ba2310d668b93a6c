"""The releases spider: discovers releases and fetches each release page (or, with
BEEHIVE_URLS, fetches exactly those release pages and discovers nothing).

Discovery: the feeds (what is new: ``/rss.xml``, the site-wide feed, which the site's bot
protection lets every client read; ``/releases/feed`` when that cannot be read), the listing ``/releases`` (newest
first; on the live site the current government only), the site's search filtered by each
government (the whole history back to 1993), and seed files (``BEEHIVE_SEEDS``). The spider
offers every start; which of them a run uses, which releases are skipped as already
archived, where a walk stops or resumes, is the IncrementalMiddleware's business; parsing,
files and the ledger are the pipeline's.

Request priorities make each walk go page by page: the releases a page leads to are fetched
before the walk's next page is read, and the walks run one after another (feed, listing,
then the governments newest first). So the page a walk has reached is a safe place to
resume from after a crash.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit, urlunsplit

import scrapy
from scrapy.exceptions import IgnoreRequest
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from archive.governments import GOVERNMENTS, Government
from archive.urls import PRODUCTION_HOST
from scraper.discovery import (SEARCH_PAGE_SIZE, parse_feed, parse_search_page, read_seeds,
                               search_url, utc_date)
from scraper.items import ReleaseFailure, ReleaseNotModified, ReleasePage, WalkPage

RELEASE_PATH = re.compile(r"^/(release/[^/?#]+|node/\d+)$")

RELEASE_PRIORITY = 100
FEED_PRIORITY = 60
LISTING_PRIORITY = 50
SEARCH_PRIORITY = 40  # minus the government's place, newest first
EMPTY_PAGES_END_A_WALK = 3  # a search walk without a pager ends after this many in a row


class ReleasesSpider(scrapy.Spider):
    name = "releases"

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.base_url = crawler.settings.get("BEEHIVE_BASE_URL").rstrip("/")
        spider.allowed_domains = [urlsplit(spider.base_url).hostname]
        # Read now, so that a bad seed file stops the run before anything is fetched.
        spider.seeds = [url for path in crawler.settings.getlist("BEEHIVE_SEEDS")
                        for url in read_seeds(path)]
        return spider

    # -- URLs: the ledger knows releases by their production URL; requests go to base_url ---

    def to_production(self, url: str) -> str | None:
        """The production form of a URL on the base host or the production host; None for others."""
        parts = urlsplit(url)
        base = urlsplit(self.base_url)
        if parts.netloc != base.netloc and parts.hostname not in (PRODUCTION_HOST, "beehive.govt.nz"):
            return None
        return urlunsplit(("https", PRODUCTION_HOST, parts.path, parts.query, ""))

    def to_base(self, production_url: str) -> str:
        parts = urlsplit(production_url)
        base = urlsplit(self.base_url)
        return urlunsplit((base.scheme, base.netloc, parts.path, parts.query, ""))

    def listing_request(self, page: int) -> scrapy.Request:
        return scrapy.Request(f"{self.base_url}/releases?page={page}", callback=self.parse_listing,
                              errback=self.walk_failed, priority=LISTING_PRIORITY,
                              meta={"listing_page": page, "walk": "listing", "walk_page": page})

    def feed_request(self, path: str = "/rss.xml") -> scrapy.Request:
        return scrapy.Request(f"{self.base_url}{path}", callback=self.parse_feed,
                              errback=self.feed_failed, priority=FEED_PRIORITY,
                              meta={"walk": "feed", "walk_page": 0})

    def search_request(self, government: Government, page: int, empty_pages: int = 0):
        place = GOVERNMENTS.index(government)
        return scrapy.Request(search_url(self.base_url, government.facet, page),
                              callback=self.parse_search, errback=self.walk_failed,
                              priority=SEARCH_PRIORITY - place,
                              meta={"walk": government.walk, "walk_page": page,
                                    "government": government, "empty_pages": empty_pages,
                                    # the site's results are drawn by a script
                                    "needs_javascript": True})

    def release_request(self, production_url: str) -> scrapy.Request:
        # A /node/N link redirects to a release that may already be fetched in this run; it
        # must still arrive, so that the ledger learns the alias and skips the link next time.
        is_alias = urlsplit(production_url).path.startswith("/node/")
        return scrapy.Request(self.to_base(production_url), callback=self.parse_release,
                              errback=self.release_failed, dont_filter=is_alias,
                              priority=RELEASE_PRIORITY, meta={"release_url": production_url})

    # -- callbacks -------------------------------------------------------------------------------

    async def start(self):
        """Every way in; the IncrementalMiddleware keeps those this run needs."""
        # BEEHIVE_URLS: exactly these releases, now, and no discovery (a re-ingest).
        urls = self.crawler.settings.getlist("BEEHIVE_URLS")
        for url in urls:
            production = self.to_production(url.strip())
            if production and RELEASE_PATH.match(urlsplit(production).path):
                yield self.release_request(production)
            else:
                self.logger.error("not a release URL, skipped: %s", url)
        if urls:
            return
        yield self.feed_request()
        yield self.listing_request(0)
        for government in GOVERNMENTS:
            yield self.search_request(government, 0)
        for url in self.seeds:
            request = self.release_request(url)
            request.meta["seed"] = True  # fetched unless archived
            yield request

    def parse_feed(self, response):
        """The feed's releases, newest first, then the listing's first page: needed only
        when the feed may not hold everything new, which the middleware judges."""
        for url in parse_feed(response.body):
            yield self.release_request(url)
        yield self.listing_request(0)

    def feed_failed(self, failure: Failure):
        """/rss.xml failed: the releases feed instead; that failed too: the listing."""
        if urlsplit(failure.request.url).path == "/rss.xml":
            self.logger.info("/rss.xml failed (%s): reading /releases/feed instead",
                             describe(failure.value))
            yield self.feed_request("/releases/feed")
            return
        self.logger.warning("the feed failed (%s): reading the listing instead",
                            describe(failure.value))
        yield self.listing_request(0)

    def parse_search(self, response):
        """One page of a government's search results. The pager says whether there is a
        next page; without one, a full page of results may have more after it, and a
        walk of empty pages ends after EMPTY_PAGES_END_A_WALK in a row (an empty first
        page ends it at once: that search gives nothing)."""
        government, page = response.meta["government"], response.meta["walk_page"]
        found = parse_search_page(response.body, response.url, self.base_url)
        yield WalkPage(government.walk, page, found.reported)
        for url, date in found.results:
            request = self.release_request(url)
            if date and utc_date(date) and url in found.titles:  # what the result shows
                request.meta["result"] = (found.titles[url], utc_date(date))
            yield request
        empty_pages = 0 if found.results else response.meta["empty_pages"] + 1
        if found.has_pager:
            more = found.has_next
        else:
            more = (len(found.results) >= SEARCH_PAGE_SIZE
                    or not found.results and 0 < page and empty_pages < EMPTY_PAGES_END_A_WALK)
        if more:
            yield self.search_request(government, page + 1, empty_pages)

    def parse_listing(self, response):
        """Release links by their path, not by teaser class names (the teaser markup varies)."""
        seen = set()
        for href in response.css("a::attr(href)").getall():
            url = self.to_production(urljoin(response.url, href.strip()))
            if url and RELEASE_PATH.match(urlsplit(url).path) and url not in seen:
                seen.add(url)
                yield self.release_request(url)
        last_href = response.css("nav.pager li.pager__item--last a::attr(href)").get()
        last_page = re.search(r"page=(\d+)", last_href or "")
        if last_page:  # how long the walk is, for the progress line's estimate
            self.crawler.stats.set_value("beehive/listing_last_page", int(last_page.group(1)))
        next_href = response.css("nav.pager li.pager__item--next a[rel=next]::attr(href)").get()
        if next_href:
            page = response.meta["listing_page"] + 1
            yield self.listing_request(page).replace(url=urljoin(response.url, next_href))

    def parse_release(self, response):
        # Returns its one item rather than yielding it: Scrapy reads a generator callback's
        # source (for its warning about return values) for every response whose callback it
        # has not met (a bound method, new with each request): 5% of the crawl's own time
        # in benchmarks/bench_crawl.py --profile.
        validators = {name: (response.headers.get(header) or b"").decode("latin-1") or None
                      for name, header in (("etag", "ETag"), ("last_modified", "Last-Modified"))}
        if response.status == 304:  # a conditional recheck: as captured
            return ReleaseNotModified(response.meta["release_url"], **validators)
        return ReleasePage(
            url=response.meta["release_url"],
            final_url=self.to_production(response.url) or response.meta["release_url"],
            status=response.status,
            content_type=response.headers.get("Content-Type", b"").decode("latin-1"),
            body=response.body,
            recheck=bool(response.meta.get("recheck")),
            **validators,
        )

    def release_failed(self, failure: Failure):
        url = failure.request.meta["release_url"]
        recheck = bool(failure.request.meta.get("recheck"))
        if failure.check(HttpError):
            status = failure.value.response.status
            kind = "gone" if status in (404, 410) else "failed"
            return ReleaseFailure(url, kind, f"HTTP {status}", status, recheck=recheck)
        return ReleaseFailure(url, getattr(failure.value, "kind", "failed"),
                              describe(failure.value), recheck=recheck)

    def walk_failed(self, failure: Failure):
        """A listing or search page that could not be read: the walk stays unfinished and
        the next run resumes it. robots.txt forbidding the search is said once, plainly."""
        stats = self.crawler.stats
        walk = failure.request.meta["walk"]
        if (walk.startswith("search:") and failure.check(IgnoreRequest)
                and "robots" in str(failure.value).lower()):
            if not stats.get_value("beehive/search_forbidden"):
                self.logger.error(
                    "robots.txt forbids the site's search (%s): the releases of past "
                    "governments cannot be discovered; add them with --seed FILE",
                    urlsplit(failure.request.url).path)
            stats.inc_value("beehive/search_forbidden")
            return
        stats.inc_value("beehive/listing_failed")
        if stats.get_value("beehive/reason"):
            return  # the run is stopping (blocked, unreachable), and has said why
        self.logger.error("%s page %s failed: %s",
                          "listing" if walk == "listing" else "search",
                          failure.request.url, describe(failure.value))


def describe(error: BaseException) -> str:
    """A one-line reason for the ledger: the exception's own words, or its class name."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
