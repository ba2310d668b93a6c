"""BotProtectionMiddleware (downloader): recognises Imperva Incapsula block pages, backs off,
gives up a URL that stays blocked, and ends the run when the whole site blocks us."""

from __future__ import annotations

import logging

from scrapy.exceptions import IgnoreRequest
from scraper.interrupt import sleep  # ends early when the run is stopped
from scrapy.utils.defer import deferred_from_coro

from archive.parse import is_blocked, is_captcha

logger = logging.getLogger(__name__)

CAPTCHA = ("the site asks for a CAPTCHA, which is for a person to solve, never this crawler; "
           "nothing was stored from it. Wait an hour or more, crawl slower (--delay), or "
           "crawl from another network")


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
        captcha = f"; {CAPTCHA}" if is_captcha(response.body) else ""
        if len(self.streak) >= self.max_blocks:
            self.stop(f"{len(self.streak)} different pages blocked in a row{captcha}")
        elif blocked_again and "listing_page" in request.meta:
            self.stop(f"listing page {request.meta['listing_page']} stays blocked{captcha}")
        if self.stopped or blocked_again:
            raise SiteBlocked(f"bot protection page (HTTP {response.status})"
                              + (", again after waiting" if blocked_again else ""))
        wait = self.backoff * 2 ** max(0, len(self.streak) - 1)
        logger.warning("bot protection page for %s: waiting %.0f s", request.url, wait)
        await sleep(wait, self.crawler)
        return request.replace(dont_filter=True, meta={**request.meta, "blocked_once": True})

    @property
    def stopped(self) -> bool:
        return bool(self.crawler.stats.get_value("beehive/stopped_blocked"))

    def stop(self, why: str) -> None:
        stop_blocked(self.crawler, f"blocked by the site's bot protection: {why}")


def stop_blocked(crawler, reason: str) -> None:
    """End the run as blocked (exit 3), saying why once."""
    if crawler.stats.get_value("beehive/stopped_blocked"):
        return
    crawler.stats.set_value("beehive/stopped_blocked", True)
    crawler.stats.set_value("beehive/reason", reason)
    logger.error("%s: stopping", reason)
    deferred_from_coro(crawler.engine.close_spider_async(reason="blocked"))
