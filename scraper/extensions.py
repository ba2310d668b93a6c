"""CrawlProgress: a live progress line for a crawl watched on a terminal.

One line, redrawn in place by tqdm: releases archived, their rate, the listing page the walk
has reached and, on a backfill (a walk to the end of the listing), an estimate of the time
left. Configured by ``BEEHIVE_PROGRESS``: None (the default) shows it only when stderr is a
terminal, so cron, systemd and Scrapyd logs never get it; true or false force it.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time

from scrapy import signals
from scrapy.exceptions import NotConfigured

from scraper.pipelines import run_finished

ARCHIVED = ("new", "updated", "unchanged")
DONE = (*ARCHIVED, "failed", "gone")


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


class AboveTheLine:
    """A stream for a log handler: what it writes goes above the progress line."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        from tqdm import tqdm

        tqdm.write(text.rstrip("\n"), file=self.stream)

    def flush(self) -> None:
        self.stream.flush()


class CrawlProgress:
    def __init__(self, crawler, stream=None):
        self.stats = crawler.stats
        self.stream = stream or sys.stderr
        self.bar = None
        self.started = None
        self.pages = 0  # listing pages walked
        self.page = None  # the last one
        crawler.signals.connect(self.opened, signal=signals.spider_opened)
        crawler.signals.connect(self.listing_page, signal=signals.response_received)
        crawler.signals.connect(self.item_done, signal=signals.item_scraped)
        # Unchanged releases and failures are dropped (they make no feed record).
        crawler.signals.connect(self.item_done, signal=signals.item_dropped)
        crawler.signals.connect(self.closed, signal=signals.spider_closed)
        crawler.signals.connect(self.closed, signal=run_finished)

    @classmethod
    def from_crawler(cls, crawler):
        setting = crawler.settings.get("BEEHIVE_PROGRESS")
        show = sys.stderr.isatty() if setting is None else crawler.settings.getbool("BEEHIVE_PROGRESS")
        if not show:
            raise NotConfigured
        return cls(crawler)

    def opened(self, spider=None):
        from tqdm import tqdm

        self.started = time.monotonic()
        # A terminal that reports no size (0 x 0) would get nothing at all from tqdm.
        size = shutil.get_terminal_size(fallback=(100, 24))
        self.bar = tqdm(file=self.stream, unit="", ncols=size.columns, nrows=size.lines,
                        mininterval=0.5,
                        bar_format="{n_fmt} releases archived [{elapsed}, {rate_noinv_fmt}]{postfix}")
        # Log lines (warnings) are printed above the progress line, not glued to it.
        self.swapped = [(handler, handler.setStream(AboveTheLine(self.stream)))
                        for handler in logging.root.handlers
                        if isinstance(handler, logging.StreamHandler)
                        and handler.stream is self.stream]

    def listing_page(self, response, request, spider=None):
        if "listing_page" in request.meta and response.status == 200:
            self.pages += 1
            self.page = request.meta["listing_page"]
            self.refresh()

    def item_done(self, item, response=None, spider=None, **kwargs):
        archived = sum(self.stats.get_value(f"beehive/{name}", 0) for name in ARCHIVED)
        if self.bar is not None and archived > self.bar.n:
            self.bar.update(archived - self.bar.n)
            self.refresh()

    def refresh(self) -> None:
        if self.bar is None or self.page is None:
            return
        last = self.stats.get_value("beehive/listing_last_page")
        postfix = f"listing page {self.page}" + (f"/{last}" if last is not None else "")
        estimate = self.time_left(last)
        if estimate is not None:
            postfix += f", about {format_duration(estimate)} left"
        self.bar.set_postfix_str(postfix, refresh=False)

    def time_left(self, last: int | None) -> float | None:
        """On a backfill: the releases the whole listing holds (pages x releases per page so
        far), less those done, at this run's rate."""
        done = sum(self.stats.get_value(f"beehive/{name}", 0) for name in DONE)
        if last is None or not self.stats.get_value("beehive/backfill") or not done:
            return None
        per_page = self.stats.get_value("beehive/listed", 0) / self.pages
        rate = done / (time.monotonic() - self.started)
        return max(0.0, (last + 1) * per_page - done) / rate

    def closed(self, spider=None, reason=None, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
            for handler, stream in self.swapped:
                handler.setStream(stream)
