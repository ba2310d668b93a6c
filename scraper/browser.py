"""The browser the site's bot protection demands, set up the Scrapy way: an add-on that
reads BEEHIVE_BROWSER and, when a browser may be used, puts scrapy-playwright's download
handler in place, configured for this crawl. Plain requests still go through Scrapy's own
HTTP client (the handler passes on whatever is not marked ``playwright``); which requests
go to the browser is the ChallengeMiddleware's business (scraper/middlewares/challenge.py).

Nothing is started until the first request that needs the browser: a run that meets no
challenge starts neither Playwright nor Chromium.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
from urllib.parse import urlsplit

try:
    from scrapy_playwright.provider import PlaywrightBrowserProvider
except ImportError:  # browser_unavailable says so, when it matters
    PlaywrightBrowserProvider = object

ASYNCIO_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
PLAYWRIGHT_HANDLER = "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler"
# What a page of the site loads that the crawl has no use for.
UNWANTED_RESOURCES = frozenset({"image", "stylesheet", "font", "media"})


def browser_unavailable(settings) -> str | None:
    """Why this crawl can use no browser, or None when it can (whether it will is up to the
    site)."""
    mode = settings.get("BEEHIVE_BROWSER") or "auto"
    if mode == "off":
        return "the browser is off (--browser off)"
    if importlib.util.find_spec("scrapy_playwright") is None:
        return "scrapy-playwright is not installed (pip install scrapy-playwright)"
    reactor = settings.get("TWISTED_REACTOR") or ASYNCIO_REACTOR
    if reactor != ASYNCIO_REACTOR:
        return f"the browser needs Twisted's asyncio reactor, and TWISTED_REACTOR is {reactor}"
    return None


def is_remote(mode: str) -> bool:
    """BEEHIVE_BROWSER names a remote browser's DevTools endpoint."""
    return urlsplit(mode).scheme in ("http", "https", "ws", "wss")


def unwanted(request, host: str) -> bool:
    """PLAYWRIGHT_ABORT_REQUEST: the browser fetches no images, styles, fonts or media, and
    nothing from other hosts (analytics, embeds); the page and its scripts (the challenge's
    among them) load."""
    return (request.resource_type in UNWANTED_RESOURCES
            or urlsplit(request.url).hostname != host)


class BrowserAddon:
    """Installs scrapy-playwright for this crawl, unless no browser can be used, in which
    case BEEHIVE_BROWSER_UNAVAILABLE says why (the ChallengeMiddleware says it when a
    challenge makes it matter)."""

    def update_settings(self, settings) -> None:
        reason = browser_unavailable(settings)
        if reason:
            settings.set("BEEHIVE_BROWSER_UNAVAILABLE", reason, priority="addon")
            return
        handlers = {**settings.getdict("DOWNLOAD_HANDLERS"),
                    "http": PLAYWRIGHT_HANDLER, "https": PLAYWRIGHT_HANDLER}
        mode = settings.get("BEEHIVE_BROWSER") or "auto"
        host = urlsplit(settings.get("BEEHIVE_BASE_URL")).hostname
        timeout_ms = int(settings.getfloat("BEEHIVE_BROWSER_TIMEOUT") * 1000)
        configured = {
            "DOWNLOAD_HANDLERS": handlers,
            "PLAYWRIGHT_BROWSER_PROVIDER": "scraper.browser.LazyBrowserProvider",
            # The browser's own headers: a token holds only with the User-Agent that earned
            # it, and scrapy-playwright would otherwise send Scrapy's.
            "PLAYWRIGHT_PROCESS_REQUEST_HEADERS": None,
            "PLAYWRIGHT_ABORT_REQUEST": functools.partial(unwanted, host=host),
            "PLAYWRIGHT_MAX_CONTEXTS": 1,  # one page at a time
            "PLAYWRIGHT_MAX_PAGES_PER_CONTEXT": 1,
            "PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT": timeout_ms,
        }
        if is_remote(mode):
            configured["PLAYWRIGHT_CDP_URL"] = mode
        else:
            launch = {"headless": True}
            if settings.get("BEEHIVE_BROWSER_EXECUTABLE"):
                launch["executable_path"] = settings.get("BEEHIVE_BROWSER_EXECUTABLE")
            configured["PLAYWRIGHT_LAUNCH_OPTIONS"] = launch
        for name, value in configured.items():
            settings.set(name, value, priority="addon")


class LazyBrowserProvider(PlaywrightBrowserProvider):
    """scrapy-playwright's provider, but Playwright (its driver process) starts with the
    first browser request, not with every crawl, and in a session of its own."""

    async def start(self) -> None:
        pass

    async def launch_browser(self):
        if self.playwright is None:
            with subprocesses_in_their_own_session():
                await super().start()
        return await super().launch_browser()


@contextlib.contextmanager
def subprocesses_in_their_own_session():
    """Playwright starts its driver (which starts Chromium) in the crawl's process group,
    where a Ctrl-C at the terminal reaches it too and kills the browser under pages the crawl
    is still loading. Started in a session of their own, they hear only the crawl, which
    closes them in order when it stops; a crawl killed outright still takes them with it
    (the driver ends Chromium when the crawl's end of its pipe closes)."""
    original = asyncio.create_subprocess_exec
    asyncio.create_subprocess_exec = functools.partial(original, start_new_session=True)
    try:
        yield
    finally:
        asyncio.create_subprocess_exec = original
