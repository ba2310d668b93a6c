"""BackoffRetryMiddleware (downloader): Scrapy's retries, with exponential backoff and
Retry-After."""

from __future__ import annotations

import logging

from email.utils import parsedate_to_datetime
from datetime import datetime, timezone

import scrapy
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scraper.interrupt import sleep  # ends early when the run is stopped


logger = logging.getLogger(__name__)


class BackoffRetryMiddleware(RetryMiddleware):
    """Retry as Scrapy does, but wait before each retry: 2 s, 4 s, 8 s… or what Retry-After says."""

    def __init__(self, settings):
        super().__init__(settings)
        self.backoff = settings.getfloat("BEEHIVE_RETRY_BACKOFF")
        self.backoff_max = settings.getfloat("BEEHIVE_RETRY_BACKOFF_MAX")

    async def process_response(self, request, response, spider=None):
        retry = super().process_response(request, response)
        if isinstance(retry, scrapy.Request):
            await sleep(self.delay(retry, response.headers.get("Retry-After")), self.crawler)
        return retry

    async def process_exception(self, request, exception, spider=None):
        retry = super().process_exception(request, exception)
        if isinstance(retry, scrapy.Request):
            await sleep(self.delay(retry), self.crawler)
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
