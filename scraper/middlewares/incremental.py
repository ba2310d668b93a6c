"""IncrementalMiddleware (spider): skips releases the ledger holds, chooses the walks a run
needs (feed, listing, each government's search), ends each where nothing new remains, and
records how far each got so that an interrupted walk resumes."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import scrapy
from scrapy import signals
from scrapy.exceptions import DontCloseSpider
from scrapy.spidermiddlewares.base import BaseSpiderMiddleware
from w3lib.url import add_or_replace_parameter

from archive.governments import GOVERNMENTS
from archive.ledger import Ledger, check_integrity
from scraper.items import WalkPage

logger = logging.getLogger(__name__)


@dataclass
class Walk:
    """A discovery walk (the listing, or one government's search) in this run."""
    name: str
    to_end: bool  # walk to the last page, not only until a page with nothing new
    resume: int = 0  # where an earlier, unfinished walk stopped
    ended: str | None = None  # how it ended in this run (see Ledger.end_walk)
    pages: int = 0  # pages read in this run
    last_page: int = -1  # the page read last


class IncrementalMiddleware(BaseSpiderMiddleware):
    """Fetch only what the ledger lacks, and walk only as far as needed, in the manner of
    scrapy-deltafetch.

    Which ways in a run takes (the spider offers them all):
    - the feed, when the listing has been walked before: if its oldest release is archived
      it holds everything new, and the listing is not read at all (robots.txt and the feed
      are the whole of a run with nothing new);
    - otherwise the listing, newest first, until a page with nothing new; to its end on the
      first run, with BEEHIVE_FULL (every release is then fetched again, to pick up edits),
      and after a walk that did not finish (killed, blocked, a page failed);
    - each government's search walk, on the first run, with BEEHIVE_FULL, and while it is
      unfinished; never in an ordinary incremental run. A search page without results (nor
      a "0 results": its results need JavaScript) is recorded as unavailable and left
      alone until the next full run.
    An unfinished walk resumes: from page 0 until a page with nothing new, then on from the
    page where it stopped. Seed releases are fetched unless archived. Releases whose last
    attempt failed are tried again last, once the walks and everything they found are done:
    one that stays blocked can then neither delay nor stop what is new. One that answered
    404 or 410 before it was ever captured is tried again only when its next try is due
    (Ledger.retry_failures; ever less often, and not at all once given up), and no walk
    asks for it in between, but a full run's.
    """

    def __init__(self, crawler):
        super().__init__(crawler)
        settings = crawler.settings
        path = settings.get("BEEHIVE_DB") or f"{settings.get('BEEHIVE_OUT')}/ledger.db"
        # The crawl's first look at the ledger, so `scrapy crawl` checks it too: a damaged
        # one (LedgerDamaged) stops the run before anything is fetched or written.
        if os.path.isfile(path):
            check_integrity(path)
        self.ledger = Ledger(path)
        self.full = settings.getbool("BEEHIVE_FULL")
        self.only_urls = bool(settings.getlist("BEEHIVE_URLS"))  # just those: no retries
        self.recorded = self.ledger.walks()
        listing = self.recorded.get("listing")
        listing_finished = bool(listing["finished"]) if listing else self.ledger.last_walk_finished()
        self.walk_everything = self.full or not listing_finished
        # An incremental walk that was interrupted left a page to get past: not the feed.
        self.feed_first = not self.walk_everything and not (listing and listing["page"])
        self.stats = crawler.stats
        self.requested = set()
        self.walks: dict[str, Walk] = {}
        self.ended: list[Walk] = []  # ended in this run, recorded once their releases are in
        self.outstanding: dict[str, tuple[str, int]] = {}  # release URL: (walk, page) it came from
        self.reasked = False
        # Last run's failures wait for the end of the walks (retry_failures): listed again,
        # they are neither fetched in a walk nor a reason to walk on.
        self.failed_before = dict(self.ledger.retry_failures())
        # Releases that answered 404 or 410 before they were ever captured, not due again
        # yet or given up: no walk asks for them (nor counts them as new), except a full
        # run's, which asks for everything, and then for them too if no walk listed them.
        not_due = self.ledger.gone_not_due()
        if self.full:
            self.failed_before.update(dict.fromkeys(not_due, "gone"))
        self.held_back = set() if self.full else set(self.failed_before) | set(not_due)
        self.retried = False
        self.stats.set_value("beehive/backfill", self.walk_everything)
        for signal in (signals.item_scraped, signals.item_dropped, signals.item_error,
                       signals.request_dropped):
            crawler.signals.connect(self.release_done, signal=signal)
        crawler.signals.connect(self.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(self.retry_failures, signal=signals.spider_idle)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @property
    def run_id(self):
        return self.stats.get_value("beehive/run_id")

    def walk(self, name: str) -> Walk:
        if name not in self.walks:
            row = self.recorded.get(name)
            to_end = self.walk_everything if name == "listing" else True
            resume = row["page"] or 0 if row and not self.full else 0
            self.walks[name] = Walk(name, to_end, resume)
        return self.walks[name]

    def searches(self, name: str) -> bool:
        row = self.recorded.get(name)
        return self.full or row is None or not (
            row["finished"] or row["outcome"] in ("unavailable", "forbidden"))

    def wanted(self, request: scrapy.Request, canonical: str | None) -> bool:
        """Is this release to be fetched (not archived, not requested already in this run,
        under this URL or the one it is an alias of)? ``canonical``: what the ledger's
        canonical_url says of it, asked once per link by the caller."""
        url = request.meta["release_url"]
        if url in self.requested or canonical in self.requested or canonical and not self.full:
            return False
        self.requested.update((url, canonical or url))
        return True

    def imported(self, request: scrapy.Request) -> str | None:
        """A search result linking a release as /node/<n> that the archive holds imported
        (not yet captured): known by the title and UTC date the result shows, so that it
        costs no fetch. Its page is fetched when its recheck falls due, and then the
        ledger learns the /node/ alias from the page's shortlink."""
        title, date = request.meta["result"]
        canonical = self.ledger.imported_by_title(title, date)
        if canonical is not None:
            self.stats.inc_value("beehive/imported_by_title")
        return canonical

    def is_new(self, url: str, canonical: str | None) -> bool:
        """New to the archive as it was when this run started."""
        return canonical is None or url in self.requested or canonical in self.requested

    async def process_start(self, start):
        async for request in start:
            walk = request.meta.get("walk")
            if walk is None:  # a seed; or BEEHIVE_URLS, a recheck: fetched whatever the ledger holds
                if not request.meta.get("seed") or self.wanted(
                        request, self.ledger.canonical_url(request.meta["release_url"])):
                    yield request
            elif walk == "feed":
                if self.feed_first:
                    yield request
            elif walk == "listing":
                if not self.feed_first:
                    self.walk(walk)
                    yield request
            elif self.searches(walk):
                self.walk(walk)
                yield request

    def retry_failures(self):
        """On the first idle moment (the walks are over), ask again for last run's failures."""
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
        name = response.meta.get("walk") if response is not None else None
        if name is None or response.status != 200:
            async for item in result:
                yield item
            return
        if name == "feed":
            async for item in self.feed_output(result):
                yield item
            return
        walk, page = self.walk(name), response.meta["walk_page"]
        walk.pages += 1
        walk.last_page = page
        listed = new = 0
        next_page = reported = None
        async for item in result:
            if isinstance(item, WalkPage):
                reported = item.reported
            elif not isinstance(item, scrapy.Request):
                yield item
            elif "walk" in item.meta:
                next_page = item  # held back until we know how far this walk goes
            else:
                listed += 1
                url = item.meta["release_url"]
                if url in self.held_back:
                    continue  # tried again after the walks (retry_failures), or not yet
                canonical = self.ledger.canonical_url(url)
                if canonical is None and "result" in item.meta:
                    canonical = self.imported(item)
                new += self.is_new(url, canonical)
                if self.wanted(item, canonical):
                    self.outstanding[url] = (name, page)
                    yield item
        self.stats.inc_value("beehive/listed", listed)
        self.ledger.walk_progress(name, self.resume_page(walk, page), self.run_id, reported=reported,
                                  finished=False if walk.to_end and page >= walk.resume else None)
        if name != "listing" and page == 0 and not listed and reported != 0:
            # No results and no "0 results" either: a page whose results need JavaScript,
            # or not a result page at all. (A search that answers "0 results" is believed.)
            self.end(walk, "unavailable")
            logger.info("the search for the releases of the %s government gave no results "
                           "(its results may need JavaScript): history discovery is incomplete",
                           GOVERNMENT_NAMES.get(name, name))
        elif next_page is None:
            self.end(walk, "finished")
        elif page < walk.resume:
            if not new and page + 1 < walk.resume:
                logger.info("%s page %d has nothing new: resuming at page %d, where the last "
                            "walk stopped", name, page, walk.resume)
                next_page = at_page(next_page, walk.resume)
            yield next_page
        elif walk.to_end or new or not listed:
            yield next_page
        else:
            logger.info("%s page %d has nothing new: stopping the walk", name, page)
            self.end(walk, "caught up")

    async def feed_output(self, result):
        """The feed's new releases; and the listing's first page unless the feed reaches
        back to a release already archived (then it holds everything new)."""
        oldest, listing = None, None
        async for item in result:
            if isinstance(item, scrapy.Request) and "walk" in item.meta:
                listing = item
            elif isinstance(item, scrapy.Request) and "release_url" in item.meta:
                url = item.meta["release_url"]
                oldest = (url, self.ledger.canonical_url(url))
                if url in self.held_back:
                    continue  # tried again after the walks (retry_failures), or not yet
                if self.wanted(item, oldest[1]):
                    yield item
            else:
                yield item
        if oldest and not self.is_new(*oldest):
            logger.info("the feed reaches back to archived releases: not reading the listing")
            self.stats.set_value("beehive/walk_finished", True)
        elif listing is not None:
            # Until the listing's first page is read, the next run must not trust the feed
            # (by then its oldest release may be archived, with older new ones missing).
            self.ledger.walk_progress("listing", 1, self.run_id, finished=True)
            self.walk("listing")
            yield listing

    def end(self, walk: Walk, outcome: str) -> None:
        walk.ended = outcome
        if walk.name == "listing":
            self.stats.set_value("beehive/walk_finished", True)
        if outcome in ("finished", "caught up"):
            self.ended.append(walk)
            self.record_ended()
        else:
            self.stats.inc_value("beehive/history_unavailable")
            self.ledger.end_walk(walk.name, outcome, self.run_id)

    def resume_page(self, walk: Walk, page: int) -> int:
        """Where this walk resumes if the run ends now: the earliest page whose releases
        are not all in yet, else the page after this one (never before where an earlier
        run stopped)."""
        pending = [at for name, at in self.outstanding.values() if name == walk.name]
        return max(min(pending) if pending else page + 1, walk.resume)

    def record_ended(self) -> None:
        """Record the walks that ended once every release they led to is in (or failed)."""
        busy = {name for name, _ in self.outstanding.values()}
        for walk in [walk for walk in self.ended if walk.name not in busy]:
            self.ledger.end_walk(walk.name, walk.ended, self.run_id)
            self.ended.remove(walk)

    def release_done(self, item=None, response=None, request=None, **kwargs):
        """A release a walk led to is in, or recorded as failed (whatever item the pipeline
        passes on or drops): when it was the last one of the walk's latest page, the walk
        resumes after that page."""
        request = request or getattr(response, "request", None)  # a Response, or a Failure
        url = request.meta.get("release_url") if request is not None else None
        source = self.outstanding.pop(url or getattr(item, "url", None), None)
        if source is None:
            return
        walk = self.walks[source[0]]
        if walk.ended:
            self.record_ended()
        elif source[1] == walk.last_page and source[1] >= walk.resume and \
                not any(name == walk.name for name, _ in self.outstanding.values()):
            self.ledger.walk_progress(walk.name, source[1] + 1, self.run_id)

    def spider_idle(self):
        """With BEEHIVE_FULL, once every walk has ended: ask again for archived releases no
        walk showed; each answers 404 (gone) or 301 (renamed). Unfiltered, since a rename
        redirects to a page fetched already."""
        forbidden = self.stats.get_value("beehive/search_forbidden")
        unended = [walk for walk in self.walks.values() if walk.ended is None and not (
            forbidden and walk.name != "listing" and not walk.pages)]
        if (not self.full or self.reasked or unended
                or self.stats.get_value("beehive/stopped_blocked")):
            return
        self.reasked = True
        spider = self.crawler.spider
        unlisted = [url for url in self.ledger.release_urls() if url not in self.requested]
        for url in unlisted:
            self.requested.add(url)
            self.crawler.engine.crawl(spider.release_request(url).replace(dont_filter=True))
        if unlisted:
            raise DontCloseSpider

    def spider_closed(self, spider, reason):
        try:
            if reason == "finished":
                self.record_ended()
                # robots.txt forbade the search (the spider said so): left alone until the
                # next full run, like a search that gives no results.
                if self.stats.get_value("beehive/search_forbidden"):
                    for walk in self.walks.values():
                        if walk.name.startswith("search:") and not walk.pages:
                            self.ledger.end_walk(walk.name, "forbidden", self.run_id)
        finally:
            self.ledger.close()


GOVERNMENT_NAMES = {government.walk: government.name for government in GOVERNMENTS}


def at_page(request: scrapy.Request, page: int) -> scrapy.Request:
    """The same walk's request for another page."""
    meta = {**request.meta, "walk_page": page}
    if "listing_page" in meta:
        meta["listing_page"] = page
    return request.replace(url=add_or_replace_parameter(request.url, "page", str(page)), meta=meta)
