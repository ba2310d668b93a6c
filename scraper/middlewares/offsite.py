"""OffsiteRedirectMiddleware (downloader): a redirect off the site is a failure naming its
target, never followed."""

from __future__ import annotations

import logging

from urllib.parse import urljoin, urlsplit

from scrapy.exceptions import IgnoreRequest


logger = logging.getLogger(__name__)


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
