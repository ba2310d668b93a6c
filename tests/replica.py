"""A local replica of www.beehive.govt.nz for end-to-end tests and benchmarks.

The real site cannot be used in tests (no network, and it must not be hammered), so
this module serves the captured release regions in ``tests/corpus/pages`` the way the
Drupal site does: release pages wrapped in a bulky page shell, the paged ``/releases``
listing, the search filtered by government (``/search?f[0]=government_facet:<id>&
f[1]=content_type_facet:article&page=N``, 24 results a page, ``/node/<n>`` links for
releases before 2014, an "N results" summary), the RSS feeds, ``robots.txt`` and
``/node/<n>`` redirects. Like the live site, the listing can be made to cover the current
government only (``listing="current"``), and the search can be made to need JavaScript
(``search="javascript"``: the static page holds no results; its script fetches and shows
them, so a real browser sees them). It can also stand behind the live site's bot protection
(``protection="challenge"``): every path but ``robots.txt`` and ``/rss.xml`` answers a plain
client with Imperva's ~200-byte JavaScript challenge, whose script, run by a real browser,
computes a proof, POSTs it, gets ``{"token", "renewInSec"}``, sets the ``reese84`` cookie and
reloads; a token expires after ``token_lifetime`` seconds and holds only with the
User-Agent that earned it. ``protection="captcha"`` passes nobody: the challenge, and
for the token it earns the CAPTCHA block page.  Tests change the
site while a crawler runs (publish, edit, remove, rename) and inject the failures a
crawler meets in the wild (5xx, 429, stalls, truncated bodies, Incapsula block pages,
oversized and binary responses).

Standard library only, so the replica cannot be broken by the code it tests.

Standalone use (prints the base URL, serves until Ctrl-C)::

    python -m tests.replica [--port 8000] [--synthesize N] [--page-size 10]
                            [--listing all|current] [--search html|javascript]
                            [--bot-protection [challenge|captcha]] [--token-lifetime S]
"""

from __future__ import annotations

import argparse
import email.utils
import gzip
import hashlib
import html
import itertools
import json
import os
import re
import secrets
import socket
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
CORPUS_PAGES = CORPUS_DIR / "pages"
CORPUS_BLOCKED = CORPUS_DIR / "blocked"


def copy_pages(pages, folder: Path) -> Path:
    """Corpus pages copied into folder in the corpus's year/month layout, for a Replica to
    serve: a test's own small site."""
    for path in pages:
        target = folder / path.relative_to(CORPUS_PAGES)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    return folder

PRODUCTION = "https://www.beehive.govt.nz"
FEED_SIZE = 10  # Drupal's RSS views show the newest 10 items
SEARCH_PAGE_SIZE = 24
# The search's government facet ids (as the site's search uses them) and the election days
# (UTC dates) from which the replica files a release under that government. The project has its
# own table (archive/governments.py); the replica keeps this copy so that it cannot be
# broken by the code it tests.
GOVERNMENTS = ((6700, "2023-10-14"), (6455, "2020-10-17"), (6203, "2017-09-23"),
               (6064, "2014-09-20"), (5926, "2011-11-26"), (4775, "2008-11-08"),
               (4637, "2005-09-17"), (4507, "2002-07-27"), (4376, "1999-11-27"),
               (4265, "1996-10-12"), (4194, "1993-11-06"))
NODE_LINKS_BEFORE = "2014-01-01"  # older search results link /node/<n>, as on the site
FAULT_KINDS = ("status", "timeout", "cut", "blocked", "huge", "binary")
PROTECTIONS = (None, "challenge", "captcha")
# What the bot protection lets through to every client: as reported of the live site.
UNGATED = ("/robots.txt", "/rss.xml")
# Imperva's two forms of the challenge's script URL (SITE.md, "Bot protection").
CHALLENGE_SCRIPTS = ("/_Incapsula_Resource?SWJIYLWA=719d34d31c8e3a6e6fffd425f7e032f3",
                     "/arquings-Vizard-thats-to-Enter-Glamise-To-those-")

# The only parsing the replica does of a region: the machine-readable UTC datetime
# (the inner <time>; the outer one has an empty attribute), the visible date beside it,
# the title and the share links.
TIME_RE = re.compile(r'<time datetime="(....-..-..T..:..:..Z)">([^<]*)</time>')
TITLE_RE = re.compile(r'(<h1 class="article__title">)(.*?)(</h1>)', re.S)
SHARE_HREF_RE = re.compile(r'(<a class="social__link" href=")([^"]*)(")')
# A share link repeats the page's own URL; old, unaliased nodes show /node/<n> instead.
OWN_URL_RE = re.compile(r"https://www\.beehive\.govt\.nz/(?:release/[^\"&?#]*|node/\d+)")
FILENAME_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})-(.+)\.html$")
BODY_OPEN = '<div class="prose field field--name-body'
DIV_TAG_RE = re.compile(r"<div\b|</div\s*>", re.I)

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")

try:  # the visible date is the New Zealand one; tzdata is a project dependency anyway
    from zoneinfo import ZoneInfo

    NZ = ZoneInfo("Pacific/Auckland")
except Exception:  # pragma: no cover - no tz database: close enough for a replica
    NZ = timezone(timedelta(hours=12))


def _utc(dt: datetime) -> datetime:
    """Aware UTC datetime without microseconds (the site's attribute has seconds)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).replace(microsecond=0)


def iso_z(dt: datetime) -> str:
    return _utc(dt).strftime("%Y-%m-%dT%H:%M:%SZ")


def nz_date_text(dt: datetime) -> str:
    """The visible date as the site prints it, e.g. '14 November 2006' (no leading zero)."""
    d = _utc(dt).astimezone(NZ)
    return f"{d.day} {MONTHS[d.month - 1]} {d.year}"


def _plain(fragment: str) -> str:
    """Tag-stripped, unescaped, whitespace-collapsed text of an HTML fragment."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def _body_span(region: str) -> tuple[int, int] | None:
    """(start, end) of the body div's inner HTML, matching nested divs by depth."""
    start = region.find(BODY_OPEN)
    if start < 0:
        return None
    inner = region.index(">", start) + 1
    depth = 1
    for m in DIV_TAG_RE.finditer(region, inner):
        depth += -1 if m.group(0).startswith("</") else 1
        if depth == 0:
            return inner, m.start()
    return None


def _rewrite_share_links(region: str, slug: str) -> str:
    url = f"{PRODUCTION}/release/{slug}"
    return SHARE_HREF_RE.sub(
        lambda m: m.group(1) + OWN_URL_RE.sub(url, m.group(2)) + m.group(3), region)


@dataclass
class Release:
    slug: str
    node_id: int
    published: datetime  # aware, UTC
    region: str          # the content region served inside the page shell
    source: str          # corpus slug it came from (itself for corpus pages)
    raw: tuple[bytes, str] | None = None  # set_release_html override: (body, content type)
    modified: datetime | None = None  # Last-Modified: when its page last changed

    def touch(self) -> None:
        """The page changed now: a later Last-Modified, by at least a second (HTTP dates
        have seconds), so that If-Modified-Since sees every change."""
        now = _utc(datetime.now(timezone.utc))
        self.modified = max(now, (self.modified or now) + timedelta(seconds=1))

    @property
    def title(self) -> str:
        m = TITLE_RE.search(self.region)
        return _plain(m.group(2)) if m else self.slug

    @property
    def summary(self) -> str:
        span = _body_span(self.region)
        text = _plain(self.region[span[0]:span[1]]) if span else ""
        return text if len(text) <= 200 else text[:197].rsplit(" ", 1)[0] + "…"


class Headers(dict):
    """Request headers as a dict whose keys are normalised to 'User-Agent' form.

    Clients disagree on case (urllib sends 'User-agent', Scrapy 'User-Agent'), so both
    storing and looking up normalise, and tests can write headers["User-Agent"].
    """

    @staticmethod
    def _k(key):
        return "-".join(p.capitalize() for p in key.split("-")) if isinstance(key, str) else key

    def __init__(self, items=()):
        super().__init__()
        for k, v in items:
            self[k] = v

    def __setitem__(self, key, value):
        super().__setitem__(self._k(key), value)

    def __getitem__(self, key):
        return super().__getitem__(self._k(key))

    def __contains__(self, key):
        return super().__contains__(self._k(key))

    def get(self, key, default=None):
        return super().get(self._k(key), default)


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "text/html; charset=UTF-8"
    headers: tuple[tuple[str, str], ...] = ()


class Replica:
    """The replica site.  All mutators are thread-safe and take effect immediately."""

    def __init__(self, pages_dir: Path | str = CORPUS_PAGES, page_size: int = 10, *,
                 blocked_dir: Path | str = CORPUS_BLOCKED, host: str = "127.0.0.1",
                 port: int = 0, listing: str = "all", search: str = "html",
                 search_page_size: int = SEARCH_PAGE_SIZE, search_pager: bool = True,
                 protection: str | None = None, token_lifetime: float = 900.0):
        if listing not in ("all", "current") or search not in ("html", "javascript"):
            raise ValueError("listing is 'all' or 'current', search 'html' or 'javascript'")
        if protection not in PROTECTIONS:
            raise ValueError(f"protection is one of {PROTECTIONS}")
        self.protection = protection  # "challenge" or "captcha": see the module's docstring
        self.token_lifetime = token_lifetime  # seconds a challenge token holds
        self.tokens_issued = 0
        self._tokens: dict[str, tuple[str, float]] = {}  # token: (User-Agent, expiry)
        self._challenge_turn = itertools.count()
        self.page_size = page_size
        self.listing = listing  # "current": the listing shows the current government only
        self.search = search  # "javascript": search result pages carry no results
        self.search_page_size = search_page_size
        self.search_pager = search_pager  # False: result pages without a pager (unverified)
        self.host, self.port = host, port
        self.verbose = False  # standalone mode prints an access log
        self.compress = False  # gzip 200 answers for clients that accept it, as most sites do
        self._lock = threading.RLock()
        self._releases: dict[str, Release] = {}
        self._redirects: dict[str, str] = {}   # old slug -> new slug (rename)
        self._redirects_anywhere: dict[str, tuple[int, str]] = {}  # slug -> (status, Location)
        self._aliases: dict[int, str] = {}     # node id -> slug (alias)
        self._extra_links: dict[int, list[tuple[str, str]]] = {}
        self._faults: dict[str, list[dict]] = {}
        self._disallowed: list[str] = []
        self._blocked_all: int | None = None
        self._blocked_except_feeds = False
        self._requests: list[tuple[str, str, dict]] = []
        self._arrivals: list[float] = []  # time.monotonic() of each request, in step
        self._synth_counter = itertools.count()
        self._ordered: list[Release] | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._blocked_pages = [p.read_bytes() for p in sorted(Path(blocked_dir).glob("*.html"))]
        self._blocked_turn = itertools.count()
        self._load(Path(pages_dir))

    # ------------------------------------------------------------------ corpus

    def _load(self, pages_dir: Path) -> None:
        found = []
        for path in sorted(pages_dir.rglob("*.html")):
            m = FILENAME_RE.match(path.name)
            if not m:
                continue
            region = path.read_text("utf-8")
            t = TIME_RE.search(region)
            published = (datetime.strptime(t.group(1), "%Y-%m-%dT%H:%M:%SZ") if t
                         else datetime.fromisoformat(m.group(1)))
            found.append((_utc(published), m.group(2), region))
        if not found:
            raise ValueError(f"no release pages under {pages_dir}")
        # Node ids grow with time on the real site.  Old unaliased releases carry their
        # node id as slug (e.g. /release/10404, shared as /node/10404): keep those ids.
        next_id = itertools.count(100000)
        for published, slug, region in sorted(found):
            node_id = int(slug) if slug.isdigit() else next(next_id)
            self._releases[slug] = Release(slug, node_id, published, region, slug)
        self._corpus_slugs = [r.slug for r in self._ordered_releases()]

    def _ordered_releases(self) -> list[Release]:
        with self._lock:
            if self._ordered is None:
                # Drupal sorts the view by created date, then node id, descending.
                self._ordered = sorted(self._releases.values(),
                                       key=lambda r: (r.published, r.node_id), reverse=True)
            return self._ordered

    def _changed(self) -> None:
        self._ordered = None

    def _next_node_id(self) -> int:
        ids = [r.node_id for r in self._releases.values()] + list(self._aliases)
        return max(ids, default=100000) + 1

    def _get(self, slug: str) -> Release:
        try:
            return self._releases[slug]
        except KeyError:
            raise KeyError(f"no release {slug!r} on the replica") from None

    # ------------------------------------------------------------------ public API

    @property
    def slugs(self) -> list[str]:
        """Current releases, newest first (the listing's order)."""
        return [r.slug for r in self._ordered_releases()]

    @property
    def corpus_slugs(self) -> list[str]:
        """The corpus pages loaded at construction, newest first."""
        return list(self._corpus_slugs)

    def url(self, slug: str) -> str:
        """Production URL of a release (what canonical links, feeds and archives hold)."""
        return f"{PRODUCTION}/release/{slug}"

    def local_url(self, path: str) -> str:
        """URL of a path on this replica, e.g. local_url('/releases?page=1')."""
        return self.base_url + path

    def published(self, slug: str) -> datetime:
        with self._lock:
            return self._get(slug).published

    def node_id(self, slug: str) -> int:
        with self._lock:
            return self._get(slug).node_id

    def region(self, slug: str) -> str:
        """The content region currently served for a release."""
        with self._lock:
            return self._get(slug).region

    def publish(self, slug: str, published: datetime, source_slug: str | None = None,
                title: str | None = None) -> str:
        """Add a release cloned from an existing one (default: the newest corpus page).

        The clone gets the new datetime (attribute and visible NZ date), optionally a new
        title, and share links pointing at its own URL.  Returns its production URL.
        """
        with self._lock:
            if slug in self._releases:
                raise ValueError(f"release {slug!r} already exists")
            src = self._get(source_slug or self._corpus_slugs[0])
            published = _utc(published)
            region = TIME_RE.sub(
                f'<time datetime="{iso_z(published)}">{nz_date_text(published)}</time>',
                src.region, count=1)
            if title is not None:
                region = TITLE_RE.sub(
                    lambda m: f"{m.group(1)}\n  {html.escape(title)}\n{m.group(3)}",
                    region, count=1)
            region = _rewrite_share_links(region, slug)
            self._releases[slug] = Release(slug, self._next_node_id(), published, region,
                                           src.source)
            self._redirects.pop(slug, None)  # a live page wins over an old redirect
            self._changed()
            return self.url(slug)

    def edit(self, slug: str, body_append: str) -> None:
        """Append HTML to a release's body (a correction), same URL and date."""
        with self._lock:
            rel = self._get(slug)
            span = _body_span(rel.region)
            at = span[1] if span else rel.region.rindex("</article>")
            rel.region = rel.region[:at] + body_append + rel.region[at:]
            rel.touch()

    def edit_side_column(self, slug: str, html_fragment: str) -> None:
        """Add HTML to the left side column (beside the share links): related content,
        which is no part of the release's record. Same URL, new ETag and Last-Modified."""
        with self._lock:
            rel = self._get(slug)
            marker = '<aside class="ds-three-col__column ds-three-col__left">'
            at = rel.region.index(marker) + len(marker)
            rel.region = rel.region[:at] + html_fragment + rel.region[at:]
            rel.touch()

    def remove(self, slug: str) -> None:
        """Unpublish: the page 404s and leaves the listing, the feeds and /node/<n>."""
        with self._lock:
            self._get(slug)
            del self._releases[slug]
            self._redirects = {o: n for o, n in self._redirects.items() if n != slug}
            self._changed()

    def rename(self, old_slug: str, new_slug: str) -> None:
        """Change a release's path alias; the old URL 301s to the new one."""
        with self._lock:
            if new_slug in self._releases:
                raise ValueError(f"release {new_slug!r} already exists")
            rel = self._releases.pop(old_slug) if old_slug in self._releases else self._get(old_slug)
            rel.slug = new_slug
            rel.region = _rewrite_share_links(rel.region, new_slug)
            rel.touch()
            self._releases[new_slug] = rel
            self._redirects.pop(new_slug, None)
            # Point earlier redirects and aliases straight at the new slug, no chains.
            self._redirects = {o: (new_slug if n == old_slug else n)
                               for o, n in self._redirects.items()}
            self._redirects[old_slug] = new_slug
            self._aliases = {n: (new_slug if s == old_slug else s)
                             for n, s in self._aliases.items()}
            self._changed()

    def redirect_anywhere(self, slug: str, location: str | None, status: int = 301) -> None:
        """Make /release/<slug> answer `status` with exactly this Location (another host,
        another scheme: an open redirect, a moved page); the release stays listed.
        location=None serves the page again."""
        with self._lock:
            self._get(slug)
            if location is None:
                self._redirects_anywhere.pop(slug, None)
            else:
                self._redirects_anywhere[slug] = (status, location)

    def alias(self, node_id: int, slug: str) -> None:
        """Make /node/<node_id> 301 to /release/<slug> (every release's own id already does)."""
        with self._lock:
            self._aliases[int(node_id)] = slug

    def add_listing_link(self, href: str, page: int = 0, text: str | None = None) -> None:
        """Inject an extra link among the teasers of listing page `page`."""
        with self._lock:
            self._extra_links.setdefault(page, []).append((href, text or "Read more"))

    def set_release_html(self, slug: str, full_html: str | bytes,
                         content_type: str = "text/html; charset=utf-8") -> None:
        """Serve exactly these bytes at /release/<slug> (hostile-input tests).

        The release keeps its listing and feed entry.  An unknown slug is first published
        as a clone dated now, so it is listed too.
        """
        body = full_html.encode("utf-8") if isinstance(full_html, str) else bytes(full_html)
        with self._lock:
            if slug not in self._releases:
                self.publish(slug, datetime.now(timezone.utc))
            self._releases[slug].raw = (body, content_type)
            self._releases[slug].touch()

    def synthesize(self, n: int, start: datetime | None = None,
                   step: timedelta = timedelta(hours=1)) -> list[str]:
        """Add n releases cloned round-robin from the corpus, slugs '<orig-slug>-s<i>'.

        Datetimes are distinct and decreasing by `step` from `start`; by default the
        block sits just above the current newest release, so it is deterministic.
        Returns the new slugs, newest first.
        """
        with self._lock:
            if start is None:
                newest = self._ordered_releases()[0].published if self._releases else \
                    datetime(2026, 1, 1, tzinfo=timezone.utc)
                start = newest + step * n
            start = _utc(start)
            made = []
            sources = self._corpus_slugs
            for k in range(n):
                i = next(self._synth_counter)
                src = sources[k % len(sources)]
                if src not in self._releases:  # removed or renamed since: use any other
                    src = next(s for s in sources if s in self._releases)
                slug = f"{src}-s{i}"
                self.publish(slug, start - step * k, source_slug=src)
                made.append(slug)
            return made

    @staticmethod
    def government(published: datetime) -> int:
        """The government facet id a release of this date is filed under."""
        day = _utc(published).strftime("%Y-%m-%d")
        return next((facet for facet, elected in GOVERNMENTS if day >= elected), GOVERNMENTS[-1][0])

    def listed(self) -> list[Release]:
        """The releases the listing shows, newest first."""
        ordered = self._ordered_releases()
        if self.listing == "current":
            current = GOVERNMENTS[0][0]
            return [r for r in ordered if self.government(r.published) == current]
        return ordered

    def search_results(self, facet: int) -> list[Release]:
        """A government's releases as its search lists them, newest first."""
        return [r for r in self._ordered_releases() if self.government(r.published) == facet]

    def disallow(self, path_prefix: str) -> None:
        """Add a 'Disallow:' line to robots.txt."""
        with self._lock:
            self._disallowed.append(path_prefix)

    def fault(self, path: str, kind: str, times: int = 1, **opts) -> None:
        """Make the next `times` requests of `path` fail in the way `kind` says.

        `path` may carry a query ('/releases?page=0'), then only that exact request
        matches; without a query it matches the path with any query.  Faults queue per
        path: fault(p, 'status', 2, status=503) then fault(p, 'timeout') gives two 503s,
        then one stall, then normal service.

        kinds and opts:
          status   status=500 (any code), retry_after=seconds -> Retry-After header
          timeout  seconds=30: stall before answering normally (stop() interrupts)
          cut      full Content-Length, half of the body, then close the connection
          blocked  an Incapsula block page, status=200
          huge     ~10 MB of HTML with 200, size=bytes
          binary   random bytes as application/octet-stream, size=bytes (64 KiB)
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {FAULT_KINDS}")
        parts = urlsplit(path)
        key = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        with self._lock:
            self._faults.setdefault(key, []).append(dict(opts, kind=kind, left=times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def block_all(self, status: int = 200, except_feeds: bool = False) -> None:
        """Site-wide bot protection: everything but robots.txt gets the Incapsula page.

        except_feeds=True keeps the RSS feeds reachable, as has been reported of the site.
        """
        with self._lock:
            self._blocked_all = status
            self._blocked_except_feeds = except_feeds

    def unblock_all(self) -> None:
        with self._lock:
            self._blocked_all = None

    @property
    def requests(self) -> list[tuple[str, str, dict]]:
        """A snapshot of (method, path_with_query, headers) for every request so far."""
        with self._lock:
            return list(self._requests)

    @property
    def paths(self) -> list[str]:
        """Just the path_with_query of every request so far, in order."""
        with self._lock:
            return [p for _, p, _ in self._requests]

    @property
    def arrivals(self) -> list[float]:
        """When each request of ``requests`` arrived (time.monotonic())."""
        with self._lock:
            return list(self._arrivals)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()
            self._arrivals.clear()

    # ------------------------------------------------------------------ server

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("replica not started")
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> "Replica":
        server = _Server((self.host, self.port), _Handler)
        server.replica = self
        self._server = server
        self._stopping.clear()
        # A short poll interval makes shutdown() return promptly.
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="beehive-replica", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes handlers stalled by a "timeout" fault
        server.shutdown()
        server.server_close()
        # Handler threads may sit in a keep-alive read; closing their sockets ends them.
        with self._lock:
            conns, self._connections = set(self._connections), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=2)

    def __enter__(self) -> "Replica":
        return self.start() if self._server is None else self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ serving

    def _log(self, method: str, path: str, headers) -> None:
        with self._lock:
            self._requests.append((method, path, Headers(headers.items())))
            self._arrivals.append(time.monotonic())

    def _take_fault(self, path: str) -> dict | None:
        bare = path.split("?", 1)[0]
        with self._lock:
            # An exact match first, then a query-less fault for the same path.
            for key in (path, bare):
                queue = self._faults.get(key)
                if queue:
                    fault = queue[0]
                    fault["left"] -= 1
                    if fault["left"] <= 0:
                        queue.pop(0)
                    return fault
        return None

    def _blocked_page(self, status: int) -> Response:
        body = self._blocked_pages[next(self._blocked_turn) % len(self._blocked_pages)]
        # Incapsula's own headers, so a detector may use either headers or body.
        return Response(status, body, "text/html", (
            ("Cache-Control", "no-cache, no-store"),
            ("X-CDN", "Imperva"),
            ("X-Iinfo", "13-99909475-0 PNNN RT(1789449140881 113) q(0 -1 -1 -1) r(1 -1)"),
            ("Set-Cookie", "visid_incap_2412345=replica; path=/; HttpOnly"),
        ))

    def respond(self, path: str) -> Response:
        """The normal (fault-free) response for a path with query."""
        parts = urlsplit(path)
        route, query = parts.path, parse_qs(parts.query)
        with self._lock:
            if route == "/robots.txt":
                return Response(200, self._robots().encode(), "text/plain; charset=UTF-8")
            feeds = route in ("/rss.xml", "/releases/feed")
            if self._blocked_all is not None and not (feeds and self._blocked_except_feeds):
                return self._blocked_page(self._blocked_all)
            if feeds:
                return Response(200, self._feed(site_wide=route == "/rss.xml").encode(),
                                "application/rss+xml; charset=utf-8")
            if route == "/releases":
                try:
                    page = max(0, int(query.get("page", ["0"])[0]))
                except ValueError:  # Drupal treats a junk page number as the first page
                    page = 0
                return self._page(200, _listing_page(self, page))
            if route == "/search":
                return self._page(200, _search_page(self, query))
            if route == "/api/search":  # the javascript search's own request
                return Response(200, json.dumps({"html": _search_results(self, query)}).encode(),
                                "application/json")
            if route.startswith("/release/"):
                slug = route[len("/release/"):]
                if slug in self._redirects_anywhere:
                    status, location = self._redirects_anywhere[slug]
                    return Response(status, b"Moved", "text/html; charset=UTF-8",
                                    (("Location", location),))
                rel = self._releases.get(slug)
                if rel is not None:
                    if rel.raw is not None:
                        return Response(200, rel.raw[0], rel.raw[1])
                    page = self._page(200, _release_page(rel))
                    modified = email.utils.format_datetime(rel.modified or rel.published,
                                                           usegmt=True)
                    page.headers += (("Last-Modified", modified),)
                    return page
                if slug in self._redirects:
                    return self._redirect(self._redirects[slug])
            m = re.fullmatch(r"/node/(\d+)", route)
            if m:
                nid = int(m.group(1))
                slug = self._aliases.get(nid)
                if slug is None:
                    slug = next((r.slug for r in self._releases.values() if r.node_id == nid), None)
                slug = self._redirects.get(slug, slug)
                if slug in self._releases:
                    return self._redirect(slug)
            return self._page(404, _not_found_page())

    def _page(self, status: int, text: str) -> Response:
        body = text.encode("utf-8")
        etag = '"' + hashlib.md5(body).hexdigest() + '"'
        return Response(status, body, "text/html; charset=UTF-8", (
            ("Cache-Control", "max-age=300, public"),
            ("Content-Language", "en"),
            ("ETag", etag),
            ("X-Generator", "Drupal 10 (https://www.drupal.org)"),
            ("X-Drupal-Cache", "HIT"),
        ))

    def _redirect(self, slug: str) -> Response:
        # Drupal answers with an absolute Location on the host that was asked.
        location = f"{self.base_url}/release/{slug}"
        body = f'<html><body>Redirecting to <a href="{location}">{location}</a>.</body></html>'
        return Response(301, body.encode(), "text/html; charset=UTF-8",
                        (("Location", location), ("Cache-Control", "max-age=300, public")))

    def _robots(self) -> str:
        lines = ["#", "# robots.txt", "#", "# This file is to prevent the crawling and indexing",
                 "# of certain parts of your site by web crawlers and spiders run by sites",
                 "# like Yahoo! and Google.", "",
                 "User-agent: *",
                 "# CSS, JS, Images", "Allow: /core/*.css$", "Allow: /core/*.js$",
                 "# Directories", "Disallow: /core/", "Disallow: /profiles/",
                 "# Paths (clean URLs)", "Disallow: /search/", "Disallow: /user/",
                 "Disallow: /node/add/", "Disallow: /admin/",
                 "# Paths (no clean URLs)", "Disallow: /index.php/user/"]
        lines += [f"Disallow: {p}" for p in self._disallowed]
        return "\n".join(lines) + "\n"

    def _feed(self, site_wide: bool = False) -> str:
        """/releases/feed; or /rss.xml (site_wide), which holds every content type: a
        speech follows every third release there."""
        items = []
        for number, rel in enumerate(self._ordered_releases()[:FEED_SIZE]):
            if site_wide and number % 3 == 2:
                items.append(
                    f"<item>\n  <title>Speech {number}</title>\n"
                    f"  <link>{PRODUCTION}/speech/speech-beside-{rel.slug}</link>\n"
                    f"  <pubDate>{email.utils.format_datetime(rel.published)}</pubDate>\n"
                    f'  <guid isPermaLink="false">{rel.node_id + 7} at {PRODUCTION}</guid>\n'
                    "</item>")
            items.append(
                "<item>\n"
                f"  <title>{html.escape(rel.title, quote=False)}</title>\n"
                f"  <link>{self.url(rel.slug)}</link>\n"
                f"  <description>{html.escape(rel.summary, quote=False)}</description>\n"
                f"  <pubDate>{email.utils.format_datetime(rel.published)}</pubDate>\n"
                "  <dc:creator>Beehive.govt.nz</dc:creator>\n"
                f'  <guid isPermaLink="false">{rel.node_id} at {PRODUCTION}</guid>\n'
                "</item>")
        return ('<?xml version="1.0" encoding="utf-8"?>\n'
                f'<rss version="2.0" xml:base="{PRODUCTION}/" '
                'xmlns:dc="http://purl.org/dc/elements/1.1/" '
                'xmlns:atom="http://www.w3.org/2005/Atom">\n<channel>\n'
                "  <title>Beehive.govt.nz - Releases</title>\n"
                f"  <link>{PRODUCTION}/releases</link>\n"
                "  <description>Latest releases from the New Zealand Government</description>\n"
                "  <language>en</language>\n" + "\n".join(items) + "\n</channel>\n</rss>\n")

    # Request handling proper, called by _Handler.
    def _serve(self, handler: "_Handler", head: bool) -> None:
        path = handler.path
        if "://" in path:  # absolute-form request target (proxies): keep path and query
            parts = urlsplit(path)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._log(handler.command, path, handler.headers)
        gate = self._gate(path, handler.headers)
        if gate is not None:
            handler.send(gate, head=head)
            return
        fault = self._take_fault(path)
        kind = fault["kind"] if fault else None
        if kind == "timeout":
            if self._stopping.wait(float(fault.get("seconds", 30))):
                handler.close_connection = True
                return  # shutting down: drop the request without an answer
        if kind == "status":
            status = int(fault.get("status", 500))
            extra = ()
            if fault.get("retry_after") is not None:
                extra = (("Retry-After", str(fault["retry_after"])),)
            resp = self._page(status, _error_page(status))
            resp.headers += extra
        elif kind == "blocked":
            resp = self._blocked_page(int(fault.get("status", 200)))
        elif kind == "huge":
            resp = Response(200, _huge_html(int(fault.get("size", 10 * 1024 * 1024))))
        elif kind == "binary":
            resp = Response(200, os.urandom(int(fault.get("size", 64 * 1024))),
                            "application/octet-stream")
        else:
            resp = self.respond(path)
        if resp.status == 200 and not kind and self._not_modified(handler, resp):
            resp = Response(304, b"", resp.content_type,
                            tuple(h for h in resp.headers if h[0] in ("ETag", "Last-Modified")))
        if (self.compress and resp.status == 200 and not kind
                and "gzip" in (handler.headers.get("Accept-Encoding") or "")):
            resp = Response(200, gzip.compress(resp.body, mtime=0), resp.content_type,
                            resp.headers + (("Content-Encoding", "gzip"),
                                            ("Vary", "Accept-Encoding")))
        handler.send(resp, head=head, cut=(kind == "cut"))

    # -- the bot protection, in front of the site ------------------------------------------

    def _gate(self, path: str, headers) -> Response | None:
        """What the protection answers instead of the site; None lets the request through."""
        route = urlsplit(path).path
        with self._lock:
            protection = self.protection
            if protection is None or route in UNGATED:
                return None
            if "SWUDNSAI=" in path:  # what the CAPTCHA page frames: the CAPTCHA itself
                return Response(200, b'<html><body><form><div class="g-recaptcha"></div>'
                                     b"</form></body></html>", "text/html")
            script = next((s for s in CHALLENGE_SCRIPTS if path.split("&")[0] == s), None)
            if script is not None:
                return Response(200, _challenge_script(script).encode(),
                                "application/javascript; charset=utf-8",
                                (("Cache-Control", "no-cache, no-store"),))
            if self._token_holds(_cookie(headers.get("Cookie") or "", "reese84"),
                                 headers.get("User-Agent") or ""):
                # "captcha": the protection has judged the browser that earned the token
                return self._blocked_page(200) if protection == "captcha" else None
            # Alternate the two forms, so that a crawler must know both.
            script = CHALLENGE_SCRIPTS[next(self._challenge_turn) % len(CHALLENGE_SCRIPTS)]
            return Response(200, _challenge_stub(script).encode(), "text/html", (
                ("Cache-Control", "no-cache, no-store"),
                ("X-CDN", "Imperva"),
                ("Set-Cookie", "visid_incap_2412345=replica; path=/; HttpOnly"),
                ("Set-Cookie", "incap_ses_1234_2412345=replica; path=/"),
            ))

    def _token_holds(self, token: str | None, user_agent: str) -> bool:
        entry = self._tokens.get(token or "")
        return bool(entry and entry[0] == user_agent and time.monotonic() < entry[1])

    def answer_challenge(self, path: str, headers, body: bytes) -> Response:
        """The challenge script's POST: a right proof, computed for the User-Agent that
        sends it, earns a token for that User-Agent."""
        try:
            sent = json.loads(body)
            seed, proof = str(sent["seed"]), str(sent["proof"])
        except (ValueError, KeyError, TypeError):
            return Response(400, b'{"error": "bad request"}', "application/json")
        user_agent = headers.get("User-Agent") or ""
        if path.split("&")[0] not in CHALLENGE_SCRIPTS or proof != _proof(seed, user_agent):
            return Response(403, b'{"error": "wrong proof"}', "application/json")
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = (user_agent, time.monotonic() + self.token_lifetime)
            self.tokens_issued += 1
        answer = {"token": token, "renewInSec": max(1, int(self.token_lifetime))}
        return Response(200, json.dumps(answer).encode(), "application/json")

    def expire_tokens(self) -> None:
        """Every token earned so far stops holding now."""
        with self._lock:
            self._tokens.clear()

    @staticmethod
    def _not_modified(handler, resp: Response) -> bool:
        """RFC 9110 13.2.2: If-None-Match decides when sent; else If-Modified-Since."""
        headers = dict(resp.headers)
        etag, inm = headers.get("ETag"), handler.headers.get("If-None-Match")
        if inm:
            return bool(etag and etag in [t.strip() for t in inm.split(",")])
        modified, ims = headers.get("Last-Modified"), handler.headers.get("If-Modified-Since")
        if not (modified and ims):
            return False
        try:
            return email.utils.parsedate_to_datetime(modified) <= \
                email.utils.parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            return False


class _Server(ThreadingHTTPServer):
    # Daemon handler threads and no join on close: a request stalled by a "timeout"
    # fault must never hold up stop() or the end of the test session.
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    replica: Replica

    def handle_error(self, request, client_address):
        # Clients hang up mid-response all the time here (timeouts, cut bodies, size
        # limits); that is expected, not worth a traceback on stderr.
        if isinstance(sys.exc_info()[1], OSError):  # resets, broken pipes, timeouts
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as crawlers pool connections
    server_version = "nginx"
    sys_version = ""
    timeout = 60  # idle keep-alive limit; stop() closes sockets explicitly anyway
    server: _Server

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm
        # holds the body until the client's delayed ACK (~40 ms), per request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.replica._lock:
            self.server.replica._connections.add(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            with self.server.replica._lock:
                self.server.replica._connections.discard(self.connection)

    def do_GET(self):
        self.server.replica._serve(self, head=False)

    def do_HEAD(self):
        self.server.replica._serve(self, head=True)

    def do_POST(self):
        replica = self.server.replica
        replica._log("POST", self.path, self.headers)
        length = min(int(self.headers.get("Content-Length") or 0), 65536)
        self.send(replica.answer_challenge(self.path, self.headers, self.rfile.read(length)))

    def send(self, resp: Response, head: bool = False, cut: bool = False) -> None:
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        for name, value in resp.headers:
            self.send_header(name, value)
        if cut:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if head or resp.status == 304:
            return
        body = memoryview(resp.body)
        if cut:  # promise everything, deliver half, hang up
            body = body[: len(body) // 2]
        for i in range(0, len(body), 256 * 1024):
            self.wfile.write(body[i:i + 256 * 1024])
        if cut:
            self.wfile.flush()
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def log_message(self, format, *args):
        if self.server.replica.verbose:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")


# ---------------------------------------------------------------------- page shell
#
# A live page is ~350 KB, nearly all of it shell: inline settings JSON, styles,
# scripts and navigation.  ~30 KB of it is enough to make parsers and extractors work
# on realistic input (the region is a small part of the document, there are many
# non-release links, and script/style text must not leak into extracted content).

NAV_LINKS = [
    ("/", "Home"), ("/releases", "Releases"), ("/speeches", "Speeches"),
    ("/features", "Features"), ("/ministerial-diaries", "Ministerial diaries"),
    ("/ministers", "Ministers"), ("/portfolios", "Portfolios"), ("/search", "Search"),
    ("/speech/prime-ministers-state-nation-speech", "State of the Nation speech"),
    ("/feature/budget-2025", "Budget 2025"),
    ("/minister/rt-hon-christopher-luxon", "Rt Hon Christopher Luxon"),
    ("/minister/hon-nicola-willis", "Hon Nicola Willis"),
    ("/minister/hon-david-seymour", "Hon David Seymour"),
    ("/minister/rt-hon-winston-peters", "Rt Hon Winston Peters"),
    ("/portfolio/nationalactnzf2023-2026/finance", "Finance"),
    ("/portfolio/nationalactnzf2023-2026/health", "Health"),
    ("/portfolio/nationalactnzf2023-2026/education", "Education"),
    ("/portfolio/nationalactnzf2023-2026/foreign-affairs", "Foreign Affairs"),
    ("https://www.govt.nz/", "govt.nz"),
    ("https://www.dpmc.govt.nz/", "Department of the Prime Minister and Cabinet"),
]
FOOTER_LINKS = [
    ("/about-site", "About this site"), ("/copyright", "Copyright"),
    ("/privacy", "Privacy"), ("/contact-us", "Contact us"), ("/rss", "RSS feeds"),
    ("/user/login", "Log in"), ("https://www.govt.nz/", "New Zealand Government"),
]


def _build_static():
    css = "\n".join(
        f".c{i}{{margin:{i % 7}px {i % 5}px;padding:{i % 3}rem;color:#{(i * 2654435761) % 0xFFFFFF:06x}}}"
        f"@media (min-width:{600 + i}px){{.c{i}>a:hover{{text-decoration:underline}}}}"
        for i in range(160))
    settings = {
        "path": {"baseUrl": "/", "scriptPath": None, "pathPrefix": "", "currentPathIsAdmin": False,
                 "isFront": False, "currentLanguage": "en"},
        "pluralDelimiter": "\u0003", "suppressDeprecationErrors": True,
        "ajaxPageState": {"libraries": ",".join(f"beehive/lib-{i}" for i in range(120)),
                          "theme": "beehive", "theme_token": None},
        "google_analytics": {"account": "UA-0000000-1", "trackOutbound": True, "trackMailto": True},
        "views": {"ajax_path": "/views/ajax", "ajaxViews": {f"views_dom_id:{'%040x' % (i * 7919)}": {
            "view_name": "releases", "view_display_id": "page_1", "view_args": "",
            "pager_element": 0} for i in range(30)}},
        "user": {"uid": 0, "permissionsHash": "0" * 64},
    }
    script = ("(function(w,d,s,l,i){w[l]=w[l]||[];w[l].push({'gtm.start':new Date().getTime(),"
              "event:'gtm.js'});var f=d.getElementsByTagName(s)[0],j=d.createElement(s);"
              "j.async=true;j.src='/modules/google_tag/gtm.js?id='+i;"
              "f.parentNode.insertBefore(j,f);})(window,document,'script','dataLayer','GTM-XXXX');\n"
              + "\n".join(f"window.__bh{i}=function(e){{if(e&&e.target){{var n=e.target.closest"
                          f"('.c{i}');if(n){{n.classList.toggle('is-open');return '<div>{i}</div>';}}}}}};"
                          for i in range(60)))
    nav = "\n".join(f'      <li class="menu-item"><a href="{h}">{t}</a></li>' for h, t in NAV_LINKS)
    footer = "\n".join(f'    <li><a href="{h}">{t}</a></li>' for h, t in FOOTER_LINKS)
    return css, json.dumps(settings, separators=(",", ":")).replace("/", "\\/"), script, nav, footer


_CSS, _SETTINGS, _SCRIPT, _NAV, _FOOTER = _build_static()


def _shell(title: str, canonical: str, main: str, body_class: str, head_extra: str = "") -> str:
    t = html.escape(title)
    return f"""<!DOCTYPE html>
<html lang="en" dir="ltr" prefix="og: https://ogp.me/ns#">
  <head>
    <meta charset="utf-8" />
    <meta name="Generator" content="Drupal 10 (https://www.drupal.org)" />
    <meta name="MobileOptimized" content="width" />
    <meta name="viewport" content="width=device-width, initial-scale=1.0" />
    <meta property="og:site_name" content="Beehive.govt.nz" />
    <meta property="og:title" content="{t}" />
    <meta property="og:url" content="{canonical}" />
    <link rel="canonical" href="{canonical}" />
{head_extra}    <link rel="stylesheet" media="all" href="/themes/custom/beehive/dist/css/main.css?t9x2k1" />
    <link rel="preload" href="/themes/custom/beehive/fonts/Inter.woff2" as="font" type="font/woff2" crossorigin />
    <link rel="icon" href="/themes/custom/beehive/favicon.ico" type="image/vnd.microsoft.icon" />
    <link rel="alternate" type="application/rss+xml" title="Releases" href="{PRODUCTION}/releases/feed" />
    <title>{t} | Beehive.govt.nz</title>
    <style media="all">
{_CSS}
    </style>
    <script>
{_SCRIPT}
    </script>
  </head>
  <body class="{body_class}">
    <a href="#main-content" class="visually-hidden focusable skip-link">Skip to main content</a>
    <div class="dialog-off-canvas-main-canvas" data-off-canvas-main-canvas>
    <header role="banner" class="header">
      <a href="/" title="Home" rel="home" class="site-logo"><img src="/themes/custom/beehive/logo.svg" alt="Home" /></a>
      <form action="/search" method="get" class="search-form"><input type="search" name="keys" /><button type="submit">Search</button></form>
      <nav role="navigation" aria-label="Main navigation"><ul class="menu">
{_NAV}
      </ul></nav>
    </header>
    <main role="main" class="main-container container js-quickedit-main-content">
{main}
    </main>
    <footer role="contentinfo" class="footer"><ul class="menu menu--footer">
{_FOOTER}
    </ul><p>Content is New Zealand Crown copyright.</p></footer>
    </div>
    <script type="application/json" data-drupal-selector="drupal-settings-json">{_SETTINGS}</script>
    <script src="/core/assets/vendor/jquery/jquery.min.js?v=3.7.1"></script>
    <script src="/themes/custom/beehive/dist/js/main.js?t9x2k1"></script>
  </body>
</html>
"""


def _release_page(rel: Release) -> str:
    head = f'    <link rel="shortlink" href="{PRODUCTION}/node/{rel.node_id}" />\n'
    return _shell(rel.title, f"{PRODUCTION}/release/{rel.slug}", rel.region,
                  "path-node page-node-type-article", head)


def _listing_page(replica: Replica, page: int) -> str:
    ordered = replica.listed()
    size = replica.page_size
    chunk = ordered[page * size:(page + 1) * size]
    rows = [
        '<div class="views-row"><article class="node node--type-article node--view-mode-teaser">\n'
        f'  <div class="meta"><time datetime="{iso_z(r.published)}">{nz_date_text(r.published)}</time></div>\n'
        f'  <h2 class="teaser__title"><a href="/release/{r.slug}" hreflang="en">'
        f"{html.escape(r.title, quote=False)}</a></h2>\n"
        f'  <div class="teaser__summary"><p>{html.escape(r.summary, quote=False)}</p></div>\n'
        "</article></div>"
        for r in chunk]
    rows += [f'<div class="views-row"><a href="{html.escape(h)}">{html.escape(t)}</a></div>'
             for h, t in replica._extra_links.get(page, [])]
    content = ('  <div class="view-content">\n' + "\n".join(rows) + "\n  </div>\n") if rows else ""
    pager = _pager(page, max(0, (len(ordered) - 1) // size), "?page=")
    main = ('<a id="main-content"></a><h1 class="page-title">Releases</h1>\n'
            '<div class="view view-releases view-id-releases view-display-id-page_1">\n'
            f"{content}{pager}</div>")
    canonical = f"{PRODUCTION}/releases" + (f"?page={page}" if page else "")
    return _shell("Releases", canonical, main, "path-releases")


def _pager(page: int, last: int, href: str) -> str:
    """Drupal's full pager; ``href`` is the link up to the page number. One page: none."""
    if not (0 < last and page <= last):
        return ""
    items = []
    if page > 0:
        items.append(f'<li class="pager__item pager__item--first"><a href="{href}0" title="Go to first page">'
                     '<span class="visually-hidden">First page</span><span aria-hidden="true">« First</span></a></li>')
        items.append(f'<li class="pager__item pager__item--previous"><a href="{href}{page - 1}" '
                     'title="Go to previous page" rel="prev"><span aria-hidden="true">‹ Previous</span></a></li>')
    for n in range(max(0, page - 4), min(last, page + 4) + 1):
        active = ' is-active' if n == page else ''
        items.append(f'<li class="pager__item{active}"><a href="{href}{n}" title="Go to page {n + 1}">{n + 1}</a></li>')
    if page < last:
        items.append(f'<li class="pager__item pager__item--next"><a href="{href}{page + 1}" '
                     'title="Go to next page" rel="next"><span aria-hidden="true">Next ›</span></a></li>')
        items.append(f'<li class="pager__item pager__item--last"><a href="{href}{last}" title="Go to last page">'
                     '<span aria-hidden="true">Last »</span></a></li>')
    return ('  <nav class="pager" role="navigation" aria-labelledby="pagination-heading">\n'
            '    <h4 id="pagination-heading" class="visually-hidden">Pagination</h4>\n'
            '    <ul class="pager__items js-pager__items">\n      ' + "\n      ".join(items) +
            "\n    </ul>\n  </nav>\n")


def _search_page(replica: Replica, query: dict) -> str:
    """The search filtered by facets (``f[0]=government_facet:<id>``,
    ``f[1]=content_type_facet:article``); only releases are served. In javascript mode
    the page holds no results: its script asks ``/api/search`` for them and shows them."""
    if replica.search == "javascript":
        script = ('fetch("/api/search" + location.search).then(function (r) { return r.json(); })'
                  '.then(function (d) { document.querySelector(".js-search-results")'
                  '.innerHTML = d.html; });')
        main = ('<a id="main-content"></a><h1 class="page-title">Search</h1>\n'
                '<div class="search-api-page" data-search-endpoint="/api/search"'
                ' data-drupal-selector="search-results">\n'
                '  <noscript>Search results need JavaScript to be shown.</noscript>\n'
                '  <div class="search-results js-search-results" aria-live="polite"></div>\n</div>'
                f"\n<script>{script}</script>")
        return _shell("Search", f"{PRODUCTION}/search", main, "path-search")
    main = ('<a id="main-content"></a><h1 class="page-title">Search</h1>\n'
            '<div class="view view-search-content view-id-search_content">\n'
            f"{_search_results(replica, query)}</div>")
    return _shell("Search", f"{PRODUCTION}/search", main, "path-search")


def _search_results(replica: Replica, query: dict) -> str:
    """A search page's results: the count, the list and the pager."""
    facets = dict(value.split(":", 1) for key, values in query.items()
                  if re.fullmatch(r"f\[\d+\]", key) for value in values if ":" in value)
    try:
        page = max(0, int(query.get("page", ["0"])[0]))
        facet = int(facets.get("government_facet", "0"))
    except ValueError:
        page, facet = 0, 0
    found = replica.search_results(facet) if facets.get("content_type_facet", "article") == "article" else []
    size = replica.search_page_size
    chunk = found[page * size:(page + 1) * size]
    rows = []
    for r in chunk:
        old = iso_z(r.published) < NODE_LINKS_BEFORE
        href = f"/node/{r.node_id}" if old else f"/release/{r.slug}"
        rows.append(
            '<li class="search-result">\n'
            f'  <h3 class="search-result__title"><a href="{href}">{html.escape(r.title, quote=False)}</a></h3>\n'
            f'  <div class="search-result__meta">Release · <time datetime="{iso_z(r.published)}">'
            f"{nz_date_text(r.published)}</time></div>\n"
            f'  <p class="search-result__snippet">{html.escape(r.summary, quote=False)}</p>\n'
            "</li>")
    content = ('  <ol class="search-results">\n' + "\n".join(rows) + "\n  </ol>\n") if rows else \
        '  <p class="search-results__empty">Your search yielded no results.</p>\n'
    href = (f"?f%5B0%5D=government_facet%3A{facet}&f%5B1%5D=content_type_facet%3Aarticle&page=")
    pager = _pager(page, max(0, (len(found) - 1) // size), href) if replica.search_pager else ""
    return (f'  <div class="view-header"><p class="search-results__count">{len(found):,} results</p></div>\n'
            f"{content}{pager}")


def _challenge_stub(script: str) -> str:
    """Imperva's challenge as a plain client gets it: a tiny page that is only a script."""
    return ('<html><head><META NAME="robots" CONTENT="noindex,nofollow">'
            f'<script src="{html.escape(script)}"></script></head><body></body></html>')


def _proof(seed: str, user_agent: str) -> str:
    """What the challenge's script computes: FNV-1a (32 bits) of the seed and the browser's
    User-Agent, in hex. A stand-in for Imperva's fingerprint: it takes a JavaScript engine."""
    value = 0x811C9DC5
    for char in f"{seed}|{user_agent}":
        value = ((value ^ ord(char)) * 0x01000193) & 0xFFFFFFFF
    return format(value, "x")


def _challenge_script(script: str) -> str:
    """The challenge's script: prove, POST the proof, keep the token as the reese84 cookie,
    reload (SITE.md, "What the script does in a browser")."""
    seed = secrets.token_hex(8)
    return f"""(function () {{
  if (document.querySelector("iframe") || (document.body && document.body.innerText.trim()))
    return;  // not the challenge page (the CAPTCHA page loads this script too)
  var seed = "{seed}", text = seed + "|" + navigator.userAgent, value = 0x811c9dc5;
  for (var i = 0; i < text.length; i++) {{
    value = Math.imul(value ^ text.charCodeAt(i), 0x01000193) >>> 0;
  }}
  var xhr = new XMLHttpRequest();
  xhr.open("POST", {json.dumps(script + "&d=" + "replica")}, true);
  xhr.setRequestHeader("Content-Type", "text/plain; charset=utf-8");
  xhr.onload = function () {{
    if (xhr.status !== 200) return;
    var answer = JSON.parse(xhr.responseText);
    document.cookie = "reese84=" + answer.token + "; path=/";
    location.reload();
  }};
  xhr.send(JSON.stringify({{seed: seed, proof: value.toString(16)}}));
}})();
"""


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def _not_found_page() -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><title>Page not found | Beehive.govt.nz</title></head>"
            "<body><h1>Page not found</h1><p>The requested page could not be found.</p></body></html>\n")


def _error_page(status: int) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><title>Error {status}</title></head>"
            f"<body><h1>Error {status}</h1><p>The website encountered an unexpected error. "
            "Please try again later.</p></body></html>\n")


_huge_cache: dict[int, bytes] = {}


def _huge_html(size: int) -> bytes:
    """`size` bytes of valid-looking HTML (cached: built once per size)."""
    if size not in _huge_cache:
        head = b"<!DOCTYPE html>\n<html><head><title>Huge</title></head><body>\n"
        tail = b"</body></html>\n"
        para = b"<p>" + b"All work and no play makes a very large page. " * 20 + b"</p>\n"
        fill = max(0, size - len(head) - len(tail))
        body = (para * (fill // len(para) + 1))[:fill]
        _huge_cache.clear()  # keep at most one 10 MB blob around
        _huge_cache[size] = head + body + tail
    return _huge_cache[size]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.replica", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--page-size", type=int, default=10)
    parser.add_argument("--synthesize", type=int, default=0, metavar="N",
                        help="add N synthetic releases cloned from the corpus")
    parser.add_argument("--listing", choices=("all", "current"), default="all",
                        help="what the listing covers: every release, or (like the live site) "
                             "the current government's only")
    parser.add_argument("--search", choices=("html", "javascript"), default="html",
                        help="search results in the page, or (javascript) a page without them")
    parser.add_argument("--bot-protection", nargs="?", const="challenge",
                        choices=("challenge", "captcha"),
                        help="stand behind the live site's bot protection: a JavaScript "
                             "challenge for every page but robots.txt and /rss.xml (captcha: "
                             "and then a CAPTCHA block page, even for a browser)")
    parser.add_argument("--token-lifetime", type=float, default=900.0, metavar="SECONDS",
                        help="how long a challenge token holds (default: 900)")
    parser.add_argument("--quiet", action="store_true", help="no access log")
    args = parser.parse_args(argv)
    replica = Replica(page_size=args.page_size, host=args.host, port=args.port,
                      listing=args.listing, search=args.search,
                      protection=args.bot_protection, token_lifetime=args.token_lifetime)
    if args.synthesize:
        replica.synthesize(args.synthesize)
    replica.verbose = not args.quiet
    with replica:
        print(replica.base_url, flush=True)
        print(f"{len(replica.slugs)} releases, {replica.page_size} a page; Ctrl-C to stop",
              file=sys.stderr, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
