"""Through the site's bot protection (issue 16): a real headless Chromium passes the
JavaScript challenge of a replica that behaves as the live site does, and plain requests
reuse the token it earns. End to end through the command line; no mock of the browser.

Chromium: the system's (Debian's ``chromium`` package; .ci/run installs it). Outside CI a
machine without one skips these tests, saying why; under CI=true they never skip.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from archive.parse import is_captcha, is_challenge
from scraper.browser import BrowserAddon, browser_unavailable, unwanted
from tests.replica import CORPUS_BLOCKED, CORPUS_PAGES, Replica, copy_pages
from tests.run import FAST_REACTOR, beehive, crawl, free_port, rows, summary

# A small site that needs every way in: four releases of the current government (the
# listing), and older ones that only the search finds, some linked as /node/<n> (pre-2014).
PAGES = sorted(CORPUS_PAGES.glob("2025/*/*.html"))[:4] + [
    CORPUS_PAGES / "2006/11/2006-11-13-japan-and-new-zealand-seek-reinvigorate-trade-and-economic-relations.html",
    CORPUS_PAGES / "1996/10/1996-10-11-new-district-court-judge-appointed-0.html",
    CORPUS_PAGES / "2001/05/2001-05-01-10404.html",
    *sorted(CORPUS_PAGES.glob("2017/*/*.html"))[:2],
]
# Files a page shows that the crawl must never fetch: images, styles, fonts.
UNWANTED_ENDINGS = (".css", ".svg", ".png", ".jpg", ".jpeg", ".gif", ".webp", ".woff", ".woff2")


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must have Chromium: .ci/run installs Debian's chromium package")
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    return path


@pytest.fixture
def pages(tmp_path) -> Path:
    return copy_pages(PAGES, tmp_path / "pages")


@pytest.fixture
def protected(pages):
    """The live site's shape: the listing shows the current government only, the search's
    results are drawn by a script, and every page but robots.txt and /rss.xml is gated."""
    with Replica(pages, page_size=2, listing="current", search="javascript",
                 protection="challenge") as site:
        yield site


def browser_crawl(site, out, chromium, *args, **kwargs):
    """``beehive crawl`` with the browser: under Twisted's asyncio reactor (the default),
    which the browser needs."""
    return beehive("crawl", "--base-url", site.base_url, "--out", out, "--delay", "0",
                   "--browser-executable", chromium, "-s", "BEEHIVE_RETRY_BACKOFF=0.05",
                   "-s", "BEEHIVE_BLOCK_BACKOFF=0.05", *args, **kwargs)


def navigations(site) -> list[str]:
    """The pages the browser fetched: its requests carry Sec-Fetch-Mode, Scrapy's do not."""
    return [path for method, path, headers in site.requests
            if headers.get("Sec-Fetch-Mode") == "navigate"]


def plain(site) -> list[str]:
    return [path for method, path, headers in site.requests if "Sec-Fetch-Mode" not in headers]


def files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in (out / "releases").rglob("*.md")}


def chromium_processes() -> set[int]:
    found = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        name = text.split("\n", 1)[0].split("\t")[-1]
        if name in ("chromium", "chrome", "chrome-headless-shell", "headless_shell") \
                and "State:\tZ" not in text:
            found.add(int(status.parent.name))
    return found


def descendants(pid: int) -> set[int]:
    children = set()
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children.update(int(child) for child in task.read_text().split())
        except OSError:
            pass
    return children.union(*(descendants(child) for child in children))


def alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


# -- recognising the protection's pages (pure) ---------------------------------------------------

def test_challenge_and_captcha_pages_are_told_apart_from_each_other_and_from_releases():
    with Replica(CORPUS_PAGES, protection="challenge") as site:
        stubs = [urllib.request.urlopen(site.local_url("/releases")).read() for _ in range(2)]
    assert len({stub for stub in stubs}) == 2  # both of Imperva's forms of the script URL
    for stub in stubs:
        assert len(stub) < 300 and is_challenge(stub) and not is_captcha(stub)
    for blocked in CORPUS_BLOCKED.glob("*.html"):  # real CAPTCHA pages: not a challenge
        assert is_captcha(blocked.read_bytes()) and not is_challenge(blocked.read_bytes())
    page = next(CORPUS_PAGES.glob("2025/*/*.html")).read_bytes()
    assert not is_challenge(page) and not is_captcha(page)
    assert not is_challenge(b"") and not is_challenge(b"<html><body><p>Hello</p></body></html>")


class PlaywrightRequest:
    def __init__(self, url, resource_type):
        self.url, self.resource_type = url, resource_type


def test_the_browser_fetches_no_images_styles_fonts_media_nor_other_hosts():
    host = "www.beehive.govt.nz"
    for kind in ("image", "stylesheet", "font", "media"):
        assert unwanted(PlaywrightRequest(f"https://{host}/x", kind), host)
    for kind in ("document", "script", "xhr", "fetch"):
        assert not unwanted(PlaywrightRequest(f"https://{host}/x", kind), host)
    assert unwanted(PlaywrightRequest("https://www.googletagmanager.com/gtm.js", "script"), host)


def test_the_add_on_installs_the_browser_only_where_it_can_run():
    from scrapy.settings import Settings

    def configured(**values):
        settings = Settings({"BEEHIVE_BASE_URL": "https://www.beehive.govt.nz",
                             "BEEHIVE_BROWSER_TIMEOUT": 30, **values})
        BrowserAddon().update_settings(settings)
        return settings

    off = configured(BEEHIVE_BROWSER="off")
    assert "--browser off" in off.get("BEEHIVE_BROWSER_UNAVAILABLE")
    assert "http" not in off.getdict("DOWNLOAD_HANDLERS")
    epoll = configured(TWISTED_REACTOR="twisted.internet.epollreactor.EPollReactor")
    assert "asyncio reactor" in browser_unavailable(epoll)
    local = configured(BEEHIVE_BROWSER="auto", BEEHIVE_BROWSER_EXECUTABLE="/usr/bin/chromium")
    assert local.get("BEEHIVE_BROWSER_UNAVAILABLE") is None
    assert local.getdict("DOWNLOAD_HANDLERS")["https"].endswith("ScrapyPlaywrightDownloadHandler")
    assert local.getdict("PLAYWRIGHT_LAUNCH_OPTIONS")["executable_path"] == "/usr/bin/chromium"
    assert local["PLAYWRIGHT_PROCESS_REQUEST_HEADERS"] is None  # the browser's own User-Agent
    remote = configured(BEEHIVE_BROWSER="ws://127.0.0.1:3000")
    assert remote.get("PLAYWRIGHT_CDP_URL") == "ws://127.0.0.1:3000"


def test_browser_options_are_checked_before_anything_runs(tmp_path):
    for args in (["--browser", "sometimes"], ["--browser", "ftp://host"],
                 ["--browser-executable", str(tmp_path / "no-such-chromium")]):
        result = beehive("crawl", "--out", tmp_path / "archive", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "archive").exists()


# -- the replica behaves as the live site --------------------------------------------------------

def test_the_replica_gates_plain_clients_and_lets_a_browser_through(protected, chromium):
    get = lambda path: urllib.request.urlopen(protected.local_url(path)).read()  # noqa: E731
    assert is_challenge(get("/releases")) and is_challenge(get(f"/release/{protected.slugs[0]}"))
    assert b"User-agent" in get("/robots.txt") and b"<rss" in get("/rss.xml")
    assert protected.tokens_issued == 0
    rendered = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--virtual-time-budget=5000", "--dump-dom",
         protected.local_url(f"/release/{protected.slugs[0]}")],
        capture_output=True, text=True, timeout=60)
    assert "article__title" in rendered.stdout, rendered.stderr[-2000:]
    assert protected.tokens_issued == 1


# -- crawls through the challenge ----------------------------------------------------------------

def test_a_first_crawl_passes_the_challenge_and_archives_what_a_plain_crawl_would(
        protected, pages, chromium, tmp_path):
    out = tmp_path / "archive"
    result = browser_crawl(protected, out, chromium)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    figures = summary(result)
    assert int(figures["new"]) == len(PAGES)
    assert int(figures["tokens"]) >= 1 and protected.tokens_issued == int(figures["tokens"])
    # Each visit is one navigation, and each token the challenge's reload of the page.
    assert int(figures["browser_requests"]) + protected.tokens_issued == len(navigations(protected))
    # The search, walked through the browser, found the releases the listing does not show.
    walks = rows(out / "ledger.db", "select name, outcome from walks")
    assert {walk["outcome"] for walk in walks} == {"finished"} and len(walks) == 12
    # Most pages were fetched plainly; every release among them, with the browser's token.
    browsed = navigations(protected)
    releases = [path for path in plain(protected) if path.startswith("/release/")]
    assert len(releases) >= len(PAGES) and len(browsed) < len(plain(protected))
    assert sum(path.startswith("/release/") for path in browsed) <= 1
    assert not [path for _, path, _ in protected.requests
                if path.split("?")[0].endswith(UNWANTED_ENDINGS)]
    (run,) = rows(out / "ledger.db", "select browser_requests, tokens, outcome from runs")
    assert run == {"browser_requests": int(figures["browser_requests"]),
                   "tokens": int(figures["tokens"]), "outcome": "ok"}
    assert "browser_requests" in beehive("status", "--out", out).stdout

    # Byte for byte what a plain crawl of the same site without protection archives.
    with Replica(pages, page_size=2) as open_site:
        reference = tmp_path / "unprotected"
        assert crawl(open_site, reference).returncode == 0
    assert files(out) == files(reference) and len(files(out)) == len(PAGES)

    # Nothing new and nothing due: robots.txt and /rss.xml, which the protection lets
    # through, and no browser.
    protected.clear_requests()
    again = browser_crawl(protected, out, chromium, "-v")
    assert again.returncode == 0, again.stderr[-3000:]
    assert protected.paths == ["/robots.txt", "/rss.xml"]
    assert summary(again)["browser_requests"] == "0" and not navigations(protected)
    assert "Launching browser" not in again.stderr  # scrapy-playwright's INFO line

    # What is published next is captured, through the token the browser earns for it.
    protected.clear_requests()
    newest = protected.published(protected.slugs[0])
    from datetime import timedelta
    protected.publish("a-release-published-after-the-first-crawl", newest + timedelta(hours=2))
    later = browser_crawl(protected, out, chromium)
    assert later.returncode == 0, later.stderr[-3000:]
    assert summary(later)["new"] == "1"
    assert rows(out / "ledger.db", "select count(*) as n from releases") == [{"n": len(PAGES) + 1}]
    assert beehive("verify", "--out", out).returncode == 0


def test_tokens_that_expire_mid_run_are_earned_again(pages, chromium, tmp_path):
    with Replica(pages, page_size=2, listing="current", search="javascript",
                 protection="challenge", token_lifetime=3.0) as site:
        result = browser_crawl(site, tmp_path / "archive", chromium, "--delay", "0.5")
    assert result.returncode == 0, result.stderr[-3000:]
    figures = summary(result)
    assert int(figures["new"]) == len(PAGES)
    assert int(figures["tokens"]) >= 3 and site.tokens_issued == int(figures["tokens"])
    # Plain requests still carried each token while it held: most releases came plainly.
    assert sum(path.startswith("/release/") for path in plain(site)) >= len(PAGES)
    # The site sees the delay before each of the crawl's fetches, after whatever it saw
    # last, a browser visit's last script or data request included. A browser visit's own
    # hops are not fetches: the reload after the challenge's POST, and a redirect's target,
    # which comes straight after the navigation it answered. Arrivals wander by a tenth of
    # a second on a loaded machine; without the delay counted from a visit's end, a fetch
    # follows the visit's last request by less than 0.2 s.
    waits, last, after_post, after_navigation = [], None, False, False
    for (method, path, headers), at in zip(site.requests, site.arrivals):
        navigation = headers.get("Sec-Fetch-Mode") == "navigate"
        hop = navigation and (after_post or after_navigation)
        if last is not None and ("Sec-Fetch-Mode" not in headers or navigation and not hop):
            waits.append((round(at - last, 3), path))
        after_post = method == "POST" or after_post and not navigation
        after_navigation, last = navigation, at
    assert len(waits) > 20 and min(waits)[0] >= 0.35, sorted(waits)[:3]


def test_a_search_page_whose_script_shows_nothing_is_asked_again(protected, chromium, tmp_path):
    """Its script may have met a token that expired under it: the search's own request
    fails once, and the page shows no results; asked again, it does. Asked at once, once
    the page has gone quiet: the crawl ends well before one browser timeout has passed."""
    protected.fault("/api/search", "status", 1, status=500)
    out = tmp_path / "archive"
    result = browser_crawl(protected, out, chromium, "-s", "BEEHIVE_BROWSER_TIMEOUT=120",
                           timeout=100)
    assert result.returncode == 0, result.stderr[-3000:]
    assert summary(result)["new"] == str(len(PAGES))
    walks = rows(out / "ledger.db", "select outcome from walks")
    assert {walk["outcome"] for walk in walks} == {"finished"}
    first_search = [path for path in navigations(protected) if path.startswith("/search")][0]
    assert navigations(protected).count(first_search) >= 2


def test_a_captcha_stops_the_run_and_nothing_is_stored(pages, chromium, tmp_path):
    out = tmp_path / "archive"
    with Replica(pages, page_size=2, listing="current", search="javascript",
                 protection="captcha") as site:
        started = time.monotonic()
        result = browser_crawl(site, out, chromium)
        assert time.monotonic() - started < 60
        assert site.tokens_issued == 1  # the browser passed the challenge, then met the CAPTCHA
    assert result.returncode == 3, result.stderr[-3000:]
    assert "CAPTCHA" in result.stderr and "Traceback" not in result.stderr
    assert summary(result)["outcome"] == "blocked"
    assert not list((out / "releases").rglob("*")) if (out / "releases").exists() else True
    assert rows(out / "ledger.db", "select count(*) as n from releases") == [{"n": 0}]
    assert rows(out / "ledger.db", "select outcome, reason from runs")[0]["outcome"] == "blocked"


def test_browser_off_stops_at_the_first_challenge_and_says_how_to_get_a_browser(protected,
                                                                                tmp_path):
    out = tmp_path / "archive"
    started = time.monotonic()
    result = beehive("crawl", "--base-url", protected.base_url, "--out", out, "--delay", "0",
                     "--browser", "off")
    assert time.monotonic() - started < 15
    assert result.returncode == 3, result.stderr
    assert "JavaScript challenge" in result.stderr and "--browser auto" in result.stderr
    assert "Traceback" not in result.stderr and not navigations(protected)
    assert rows(out / "ledger.db", "select count(*) as n from releases") == [{"n": 0}]


def test_with_no_browser_installed_one_line_says_how_to_get_one(protected, tmp_path):
    result = beehive("crawl", "--base-url", protected.base_url, "--out", tmp_path / "archive",
                     "--delay", "0", env={"PLAYWRIGHT_BROWSERS_PATH": str(tmp_path / "none"),
                                          "BEEHIVE_BROWSER_EXECUTABLE": ""})
    assert result.returncode == 3, result.stderr
    assert "playwright install chromium" in result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, result.stderr


def test_the_browser_needs_the_asyncio_reactor_and_says_so(protected, tmp_path):
    result = beehive("crawl", "--base-url", protected.base_url, "--out", tmp_path / "archive",
                     "--delay", "0", "-s", FAST_REACTOR)
    assert result.returncode == 3, result.stderr
    assert "asyncio reactor" in result.stderr and "Traceback" not in result.stderr


def test_a_remote_browser_over_its_devtools_endpoint(protected, pages, chromium, tmp_path):
    port = free_port()
    remote = subprocess.Popen(
        [chromium, "--headless", "--no-sandbox", f"--remote-debugging-port={port}",
         f"--user-data-dir={tmp_path / 'profile'}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                version = json.load(urllib.request.urlopen(f"{endpoint}/json/version"))
                break
            except OSError:
                assert time.monotonic() < deadline, "the remote browser did not start"
                time.sleep(0.2)
        out = tmp_path / "archive"
        result = beehive("crawl", "--base-url", protected.base_url, "--out", out, "--delay", "0",
                         "--browser", version["webSocketDebuggerUrl"])
        assert result.returncode == 0, result.stderr[-3000:]
        assert summary(result)["new"] == str(len(PAGES)) and navigations(protected)
        assert remote.poll() is None  # someone else's browser: left running
    finally:
        remote.kill()
        remote.wait()


def start_crawl(site, out, chromium, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "archive", "crawl", "--base-url", site.base_url, "--out",
         str(out), "--delay", "0.3", "--browser-executable", chromium],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def wait_for_browser(site, crawl: subprocess.Popen) -> set[int]:
    """Once the crawl's browser has fetched a page: its Chromium processes."""
    deadline = time.monotonic() + 60
    while not navigations(site) and crawl.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert navigations(site), "the crawl's browser fetched nothing"
    browsers = descendants(crawl.pid) & chromium_processes()
    assert browsers
    return browsers


def gone_soon(pids: set[int], seconds: float = 15) -> set[int]:
    deadline = time.monotonic() + seconds
    while any(map(alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return {pid for pid in pids if alive(pid)}


def test_a_crawl_killed_with_sigkill_leaves_no_chromium_behind(protected, chromium, tmp_path):
    crawl_process = start_crawl(protected, tmp_path / "archive", chromium)
    browsers = wait_for_browser(protected, crawl_process)
    crawl_process.kill()
    crawl_process.communicate()
    assert not gone_soon(browsers)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_crawl_closes_its_browser(protected, chromium, tmp_path, stop):
    """Ctrl-C at a terminal signals the whole process group; systemd and cron's timeout
    signal the crawl."""
    crawl_process = start_crawl(protected, tmp_path / "archive", chromium,
                                start_new_session=True)
    browsers = wait_for_browser(protected, crawl_process)
    if stop == signal.SIGINT:
        os.killpg(crawl_process.pid, stop)
    else:
        crawl_process.send_signal(stop)
    _, stderr = crawl_process.communicate(timeout=60)
    assert "Traceback" not in stderr, stderr[-3000:]
    assert "beehive summary:" in stderr
    assert not gone_soon(browsers)
