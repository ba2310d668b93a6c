"""ChallengeMiddleware (downloader): through the site's JavaScript challenge with a real
browser, used sparingly.

The site's bot protection (Imperva) answers a plain client with a tiny page that is only a
script; a browser runs it, earns a token (the ``reese84`` cookie, bound to its User-Agent,
good for some 12 to 15 minutes) and sees the page. So:

- Escalate: a response that is the challenge is asked again through the browser
  (scrapy-playwright, set up by scraper/browser.py), which runs the challenge.
- Reuse: the browser's cookies and User-Agent then go with every plain request, until a
  challenge comes back (the token expired) and the browser earns another. On the live site
  that is about one browser visit per token lifetime.
- Same bytes: a page visited to earn a token is fetched again plainly, so that what the
  crawl keeps is the site's response, never the browser's re-serialised DOM. Only pages
  whose content a script draws (the search: ``needs_javascript``) keep the browser's
  rendering, and once the site is known to be protected they go to the browser at once.
- A CAPTCHA met in the browser is for a person: the run stops (exit 3) and says so.
- Without a browser (BEEHIVE_BROWSER=off, or none to be had) the first challenge stops the
  run at once (exit 3), saying how to get one.
"""

from __future__ import annotations

import logging
from time import monotonic
from urllib.parse import urlsplit

from playwright.async_api import Error as PlaywrightError
from scrapy.exceptions import IgnoreRequest
from scrapy_playwright.page import PageMethod

from archive.parse import is_captcha, is_challenge
from scraper.middlewares.blocks import CAPTCHA, stop_blocked

logger = logging.getLogger(__name__)

# Said in the line that stops a run which meets the challenge with no browser at hand.
HOW_TO_GET_A_BROWSER = (
    "to get past it, use --browser auto (the default) with Chromium installed "
    "('playwright install chromium'), or --browser-executable PATH (a system Chrome or "
    "Chromium), or --browser ws://HOST:PORT (a remote browser's DevTools endpoint)")
# A page has settled when it is a CAPTCHA, or no longer the challenge (loaded, with text)
# and, when its content is drawn by script, shows its results, "no results" or a pager.
SETTLED = """(needsJavascript) => {
  const html = document.documentElement ? document.documentElement.outerHTML : "";
  if (/SWUDNSAI|Incapsula incident ID/.test(html)) return true;
  const text = document.body ? document.body.innerText.trim() : "";
  if (document.readyState !== "complete" || !text) return false;
  return !needsJavascript || /[0-9][0-9,]* results?\\b|no results/i.test(text)
    || document.querySelector("nav.pager") !== null;
}"""
MAX_CHALLENGES = 3  # challenges one request may meet before it is given up
DRAWING_MS = 2000  # for a script to draw what its last request brought, once all is quiet


class ChallengeFailed(IgnoreRequest):
    kind = "blocked"  # recorded as blocked, and tried again by the next run


class ChallengeMiddleware:
    def __init__(self, crawler):
        self.crawler = crawler
        self.stats = crawler.stats
        settings = crawler.settings
        self.unavailable = settings.get("BEEHIVE_BROWSER_UNAVAILABLE")
        self.timeout_ms = settings.getfloat("BEEHIVE_BROWSER_TIMEOUT") * 1000
        self.host = urlsplit(settings.get("BEEHIVE_BASE_URL")).hostname
        self.cookie_header: str | None = None  # the browser's cookies, token included
        self.user_agent: str | None = None  # the browser's: the token holds with it only
        self.token: str | None = None

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def process_request(self, request, spider=None):
        if self.user_agent is None or request.meta.get("playwright"):
            return None
        if request.meta.get("needs_javascript"):
            request.meta.update(self.browser_meta(request.meta))
            return None
        request.headers["Cookie"] = self.cookie_header
        request.headers["User-Agent"] = self.user_agent
        return None

    async def process_response(self, request, response, spider=None):
        if request.meta.get("playwright"):
            return await self.from_browser(request, response)
        if request.url.endswith("/robots.txt") or not is_challenge(response.body):
            return response
        self.stats.inc_value("beehive/challenges")
        if self.unavailable:
            self.stop(f"the site answers with a JavaScript challenge (bot protection), and "
                      f"{self.unavailable}: {HOW_TO_GET_A_BROWSER}")
            raise ChallengeFailed("JavaScript challenge, and no browser")
        logger.info("JavaScript challenge for %s: asking the browser", request.url)
        return self.to_browser(request)

    def to_browser(self, request):
        """The request again, through the browser; given up after MAX_CHALLENGES."""
        challenges = request.meta.get("challenges", 0) + 1
        if challenges > MAX_CHALLENGES:
            raise ChallengeFailed(f"JavaScript challenge {MAX_CHALLENGES} times in a row, "
                                  "though the browser passed it")
        return request.replace(dont_filter=True, meta={
            **request.meta, **self.browser_meta(request.meta), "challenges": challenges})

    def browser_meta(self, meta: dict) -> dict:
        """What sends a request to the browser (scrapy-playwright): there, once the page has
        loaded, ``settle`` waits for it and takes the browser's cookies and User-Agent."""
        wait = PageMethod(settle, bool(meta.get("needs_javascript")), self.timeout_ms)
        return {"playwright": True, "playwright_page_methods": [wait]}

    async def from_browser(self, request, response):
        """A page the browser visited and settled: take its token, and hand back the plain
        request again (or, for a page drawn by script, the rendering)."""
        self.stats.inc_value("beehive/browser_requests")
        self.delay_from_now(request)
        settled, cookies, user_agent = request.meta["playwright_page_methods"][0].result
        html = response.text
        if is_captcha(html):
            self.stop(f"blocked by the site's bot protection: {CAPTCHA}")
            raise ChallengeFailed("CAPTCHA (in the browser)")
        if is_challenge(html):
            raise ChallengeFailed("the browser did not get past the JavaScript challenge "
                                  f"within {self.timeout_ms / 1000:.0f} s")
        self.keep_token(cookies, user_agent)
        if not request.meta.get("needs_javascript"):
            return request.replace(dont_filter=True, meta={
                name: value for name, value in request.meta.items()
                if not name.startswith("playwright")})
        if not settled:  # its script drew nothing: it may have met a token that expired
            logger.info("%s showed no results: asking the browser again", request.url)
            return self.to_browser(request)
        return response

    def delay_from_now(self, request) -> None:
        """A browser visit takes seconds, and Scrapy counts DOWNLOAD_DELAY from when a
        request starts: counted from the visit's end instead, the site sees the same
        delay between any two fetches, browser or not."""
        slot = self.crawler.engine.downloader.slots.get(request.meta.get("download_slot"))
        if slot is not None:
            slot.lastseen = monotonic()

    def keep_token(self, cookies: list[dict], user_agent: str) -> None:
        mine = [cookie for cookie in cookies
                if self.host == cookie["domain"].lstrip(".")
                or self.host.endswith("." + cookie["domain"].lstrip("."))]
        token = next((cookie["value"] for cookie in mine if cookie["name"] == "reese84"), None)
        if token and token != self.token:
            self.stats.inc_value("beehive/tokens")
            logger.info("the browser earned a token: plain requests carry it from now on")
        self.token = token
        self.cookie_header = "; ".join(f"{cookie['name']}={cookie['value']}" for cookie in mine)
        self.user_agent = user_agent

    def process_exception(self, request, exception, spider=None):
        """A browser that could not be started (none installed, a remote one unreachable)
        stops the run, saying so."""
        if not request.meta.get("playwright"):
            return None
        message = str(exception).strip().splitlines()[0] if str(exception).strip() else ""
        if message.startswith("BrowserType."):  # Playwright could not launch or connect
            self.stop("the site answers with a JavaScript challenge (bot protection), and no "
                      f"browser could be started ({message}): {HOW_TO_GET_A_BROWSER}")
            raise ChallengeFailed("JavaScript challenge, and no browser")
        return None

    def stop(self, reason: str) -> None:
        stop_blocked(self.crawler, reason)


async def settle(page, needs_javascript: bool, timeout_ms: float) -> tuple[bool, list, str]:
    """In the browser: wait until the page has settled (SETTLED; one that does not settle
    in time is judged as it is); whether it did, its cookies and the browser's User-Agent.

    A page drawn by script is judged once its requests have gone quiet: one whose data
    request met a token that expired under it shows nothing however long it is given, and
    is better asked again at once than after the whole timeout."""
    settled = await wait_until_settled(page, False, timeout_ms)
    if settled and needs_javascript and not await page.evaluate(SETTLED, True):
        try:
            await page.wait_for_load_state("networkidle", timeout=timeout_ms)
        except PlaywrightError:  # never quiet (a script that polls): judged as it is
            pass
        settled = await wait_until_settled(page, True, DRAWING_MS)
    try:
        user_agent = await page.evaluate("navigator.userAgent")
    except PlaywrightError:  # the page navigated once more: ask the one it loaded
        await page.wait_for_load_state()
        user_agent = await page.evaluate("navigator.userAgent")
    return settled, await page.context.cookies(), user_agent


async def wait_until_settled(page, needs_javascript: bool, timeout_ms: float) -> bool:
    try:
        await page.wait_for_function(SETTLED, arg=needs_javascript, timeout=timeout_ms)
        return True
    except PlaywrightError as error:  # a timeout, or the page went away
        logger.info("%s had not settled after %.1f s: %s", page.url, timeout_ms / 1000,
                    (str(error).splitlines() or [""])[0])
        return False
