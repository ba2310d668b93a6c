"""UnreachableMiddleware (downloader): ends the run, in one line, when the site cannot be
reached at all (DNS failure, connection refused)."""

from __future__ import annotations

import logging

from scrapy.exceptions import (CannotResolveHostError, DownloadConnectionRefusedError,
                               IgnoreRequest)
from scrapy.utils.defer import deferred_from_coro
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet import error as twisted_errors


logger = logging.getLogger(__name__)


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
