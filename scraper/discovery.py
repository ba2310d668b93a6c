"""Where release URLs come from, as pure functions: page or file in, URLs out.

- ``search_url`` and ``parse_search_page``: the site's search, filtered by government,
  which is the only way to the releases of past governments (the listing covers the
  current one).
- ``parse_feed``: the RSS feed of releases, the cheap way to what is new.
- ``read_seeds``: seed files for when the search cannot serve (its results need
  JavaScript): plain text, the reference exporter's discovery-index JSON, or a sitemap.

Links are found by their path (``/release/<slug>``, ``/node/<n>``), never by class names:
the markup of search results is not known for certain.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

from parsel import Selector

from archive.urls import PRODUCTION_HOST

RELEASE_PATH = re.compile(r"^/(release/[^/?#]+|node/\d+)$")
RESULTS_COUNT = re.compile(r"(\d[\d,]*)\s+results?\b", re.I)
SEARCH_PAGE_SIZE = 24  # the site's: a full page without a pager may have more after it


def _has_class(name: str) -> str:
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"


# The result a link sits in, whose time[datetime] is the result's date.
ENCLOSING_RESULT = (f"ancestor::*[self::article or {_has_class('views-row')} "
                    f"or {_has_class('search-result')}][1]")


def production_release_url(url: str, base_url: str | None = None) -> str | None:
    """The production form (https://www.beehive.govt.nz/...) of a release or node URL on the
    production host or on ``base_url``'s host; None for anything else."""
    parts = urlsplit(url.strip())
    hosts = {PRODUCTION_HOST, "beehive.govt.nz"}
    if parts.scheme not in ("http", "https"):
        return None
    if parts.hostname not in hosts and not (base_url and parts.netloc == urlsplit(base_url).netloc):
        return None
    if not RELEASE_PATH.match(parts.path):
        return None
    return urlunsplit(("https", PRODUCTION_HOST, parts.path, "", ""))


def search_url(base_url: str, facet: int, page: int, content_type: str = "article") -> str:
    """One page of the search for a government's releases (``article`` is the release type)."""
    query = urlencode([("f[0]", f"government_facet:{facet}"),
                       ("f[1]", f"content_type_facet:{content_type}"), ("page", page)])
    return f"{base_url.rstrip('/')}/search?{query}"


@dataclass
class SearchPage:
    results: list[tuple[str, str | None]] = field(default_factory=list)  # (URL, datetime)
    reported: int | None = None  # "N results", when the page says
    has_pager: bool = False
    has_next: bool = False
    # URL -> the title the result shows (its link's text), to know an imported release
    # linked as /node/<n> without fetching it (Ledger.imported_by_title)
    titles: dict[str, str] = field(default_factory=dict)


def parse_search_page(html: str | bytes, page_url: str, base_url: str | None = None) -> SearchPage:
    """The release links of a search result page, each with the ``time[datetime]`` of the
    result it sits in (an enclosing ``article``, ``.views-row`` or ``.search-result``)."""
    if isinstance(html, bytes):
        html = html.decode("utf-8", "replace")
    selector = Selector(text=html or "<html></html>")
    page = SearchPage()
    seen = set()
    for link in selector.css("a[href]"):
        url = production_release_url(urljoin(page_url, link.attrib["href"]), base_url or page_url)
        if not url or url in seen:
            continue
        seen.add(url)
        result = link.xpath(ENCLOSING_RESULT)
        date = result.css("time[datetime]::attr(datetime)").get() if result else None
        page.results.append((url, date or None))
        title = " ".join(" ".join(link.xpath(".//text()").getall()).split())
        if not title and result:
            title = " ".join(" ".join(result.css("h2 ::text, h3 ::text").getall()).split())
        if title:
            page.titles[url] = title
    text = " ".join(selector.xpath(
        "//body//text()[not(ancestor::script) and not(ancestor::style)]").getall())
    match = RESULTS_COUNT.search(text)
    if match:
        page.reported = int(match.group(1).replace(",", ""))
    page.has_pager = bool(selector.css("nav.pager, .pager__items"))
    page.has_next = bool(selector.css("li.pager__item--next a[href], a[rel=next][href]"))
    return page


def utc_date(moment: str) -> str | None:
    """The UTC date (YYYY-MM-DD) of a result's datetime (``Z``, an offset, or none: UTC)."""
    try:
        parsed = datetime.fromisoformat(moment.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc).strftime("%Y-%m-%d")


def parse_feed(body: bytes) -> list[str]:
    """The release links of an RSS feed, in the feed's order (newest first)."""
    selector = Selector(body=body or b"<rss/>", type="xml")
    urls = []
    for link in selector.xpath("//item/link/text()").getall():
        url = production_release_url(link)
        if url and url not in urls:
            urls.append(url)
    return urls


SHORTLINK = re.compile(rb'<link\s+rel="shortlink"\s+href="([^"]+)"', re.I)


def node_shortlink(page: bytes) -> str | None:
    """The /node/<n> URL a release page names as its shortlink (Drupal's), in production
    form: the URL the search links older releases by."""
    match = SHORTLINK.search(page[:65536])
    if not match:
        return None
    href = match.group(1).decode("latin-1")
    url = production_release_url(urljoin(f"https://{PRODUCTION_HOST}/", href))
    return url if url and "/node/" in url else None


# -- seed files ---------------------------------------------------------------------------

class SeedError(ValueError):
    """A seed file that cannot be used; the message is one line naming the file."""


def read_seeds(path: str | Path) -> list[str]:
    """The release URLs a seed file names, in production form, without repeats.

    The format is told by the content: a sitemap (``<urlset>``, gzipped or not; other
    pages in it are skipped), the discovery-index JSON (``{"releases": {"YYYY-MM":
    [{"url": …, "date": …}]}}``), or plain text: one URL a line, ``#`` starts a comment.
    In JSON and text every URL must be a release URL of www.beehive.govt.nz.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            gzipped = handle.read(2) == b"\x1f\x8b"
            handle.seek(0)
            if gzipped:
                with gzip.GzipFile(fileobj=handle) as unpacked:
                    data = _read_bounded(path, unpacked)
            else:
                data = _read_bounded(path, handle)
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise SeedError(f"seed file {path}: not a readable gzip file: {error}") from None
    except OSError as error:
        raise SeedError(f"seed file {path}: {error.strerror or error}") from None
    head = data.lstrip()[:200]
    if head.startswith(b"<"):
        urls = _sitemap_urls(path, data)
    elif head.startswith((b"{", b"[")):
        urls = _index_urls(path, data)
    else:
        urls = _text_urls(path, data)
    if not urls:
        raise SeedError(f"seed file {path}: no release URLs in it")
    return list(dict.fromkeys(urls))


# A seed file's size, unpacked: a sitemap may hold 50 MB (the sitemap protocol's limit), and
# a list of every release ever published is a few MB.
MAX_SEED_BYTES = 50 * 1024 * 1024


def _read_bounded(path: Path, stream) -> bytes:
    """The stream's bytes, read a chunk at a time and refused past MAX_SEED_BYTES, so that
    a small gzip file that unpacks to gigabytes is never unpacked whole."""
    chunks, size = [], 0
    while chunk := stream.read(1024 * 1024):
        size += len(chunk)
        if size > MAX_SEED_BYTES:
            raise SeedError(f"seed file {path}: larger than {MAX_SEED_BYTES // 2**20} MB "
                            "unpacked; split it into several --seed files")
        chunks.append(chunk)
    return b"".join(chunks)


def _sitemap_urls(path: Path, data: bytes) -> list[str]:
    from lxml.etree import XMLSyntaxError
    from scrapy.utils.sitemap import Sitemap

    try:
        sitemap = Sitemap(data)
        entries = list(sitemap)
    except (XMLSyntaxError, StopIteration) as error:
        raise SeedError(f"seed file {path}: not a readable sitemap: {error}") from None
    if sitemap.type == "sitemapindex":
        raise SeedError(f"seed file {path}: a sitemap index; give the sitemaps it lists instead")
    if sitemap.type != "urlset":
        raise SeedError(f"seed file {path}: not a sitemap (root element <{sitemap.type}>)")
    # A site's sitemap lists speeches and the rest too: only releases are wanted.
    urls = (production_release_url(entry.get("loc", "")) for entry in entries)
    return [url for url in urls if url]


def _index_urls(path: Path, data: bytes) -> list[str]:
    try:
        index = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as error:
        raise SeedError(f"seed file {path}: not valid JSON: {error}") from None
    releases = index.get("releases") if isinstance(index, dict) else None
    if not isinstance(releases, dict):
        raise SeedError(f'seed file {path}: JSON without a "releases" object by month '
                        '(the discovery-index format)')
    urls = []
    for month, entries in releases.items():
        if not isinstance(entries, list):
            raise SeedError(f'seed file {path}: "releases"."{month}" is not a list')
        for entry in entries:
            href = entry.get("url") if isinstance(entry, dict) else None
            url = production_release_url(href) if isinstance(href, str) else None
            if url is None:
                raise SeedError(f'seed file {path}: "releases"."{month}": not a release URL: '
                                f"{json.dumps(entry)[:120]}")
            urls.append(url)
    return urls


def _text_urls(path: Path, data: bytes) -> list[str]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SeedError(f"seed file {path}: not UTF-8 text, JSON or a sitemap") from None
    urls = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        url = production_release_url(line)
        if url is None:
            raise SeedError(f"seed file {path} line {number}: not a www.beehive.govt.nz "
                            f"release URL: {line[:120]}")
        urls.append(url)
    return urls
