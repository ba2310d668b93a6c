"""The releases spider: walks the listing newest first and fetches each release page (or,
with BEEHIVE_URLS, fetches exactly those release pages and walks nothing).

It only discovers and fetches. Which releases are skipped as already archived, and where the
walk stops, is the IncrementalMiddleware's business; parsing, files and the ledger are the
pipeline's.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit, urlunsplit

import scrapy
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from archive.urls import PRODUCTION_HOST
from scraper.items import ReleaseFailure, ReleaseNotModified, ReleasePage

RELEASE_PATH = re.compile(r"^/(release/[^/?#]+|node/\d+)$")


class ReleasesSpider(scrapy.Spider):
    name = "releases"

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.base_url = crawler.settings.get("BEEHIVE_BASE_URL").rstrip("/")
        spider.allowed_domains = [urlsplit(spider.base_url).hostname]
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
        # Below the releases it lists: a page's releases are fetched before the next page,
        # so the queue holds one page's worth, not the whole listing's.
        return scrapy.Request(f"{self.base_url}/releases?page={page}", callback=self.parse_listing,
                              errback=self.listing_failed, meta={"listing_page": page},
                              priority=-1)

    def release_request(self, production_url: str) -> scrapy.Request:
        # A /node/N link redirects to a release that may already be fetched in this run; it
        # must still arrive, so that the ledger learns the alias and skips the link next time.
        is_alias = urlsplit(production_url).path.startswith("/node/")
        return scrapy.Request(self.to_base(production_url), callback=self.parse_release,
                              errback=self.release_failed, dont_filter=is_alias,
                              meta={"release_url": production_url})

    # -- callbacks -------------------------------------------------------------------------------

    async def start(self):
        # BEEHIVE_URLS: exactly these releases, now, and no listing (a re-ingest).
        urls = self.crawler.settings.getlist("BEEHIVE_URLS")
        for url in urls:
            production = self.to_production(url.strip())
            if production and RELEASE_PATH.match(urlsplit(production).path):
                yield self.release_request(production)
            else:
                self.logger.error("not a release URL, skipped: %s", url)
        if not urls:
            yield self.listing_request(0)

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
        validators = {name: (response.headers.get(header) or b"").decode("latin-1") or None
                      for name, header in (("etag", "ETag"), ("last_modified", "Last-Modified"))}
        if response.status == 304:  # a conditional recheck: as captured
            yield ReleaseNotModified(response.meta["release_url"], **validators)
            return
        yield ReleasePage(
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
            yield ReleaseFailure(url, kind, f"HTTP {status}", status, recheck=recheck)
        else:
            yield ReleaseFailure(url, getattr(failure.value, "kind", "failed"),
                                 describe(failure.value), recheck=recheck)

    def listing_failed(self, failure: Failure):
        self.crawler.stats.inc_value("beehive/listing_failed")
        if self.crawler.stats.get_value("beehive/reason"):
            return  # the run is stopping (blocked, unreachable), and has said why
        self.logger.error("listing page %s failed: %s", failure.request.url, describe(failure.value))


def describe(error: BaseException) -> str:
    """A one-line reason for the ledger: the exception's own words, or its class name."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
