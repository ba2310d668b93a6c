"""Discovery as pure functions (scraper/discovery.py): search result pages, the feed and
seed files in, release URLs out. No crawl: pages come from the replica's own renderers
and from hand-written variants of the unverified search markup."""

from __future__ import annotations

import gzip
import json

import pytest

from archive.governments import GOVERNMENTS, government_of
from scraper.discovery import (SeedError, parse_feed, parse_search_page, read_seeds,
                               search_url)
from tests.replica import GOVERNMENTS as REPLICA_GOVERNMENTS, Replica

SITE = "https://www.beehive.govt.nz"
BASE = "http://127.0.0.1:8000"


def test_search_url_has_the_sites_facets():
    assert search_url(BASE, 4376, 3) == (
        f"{BASE}/search?f%5B0%5D=government_facet%3A4376"
        "&f%5B1%5D=content_type_facet%3Aarticle&page=3")


def test_the_project_and_the_replica_agree_on_the_governments():
    assert [(g.facet, g.elected) for g in GOVERNMENTS] == list(REPLICA_GOVERNMENTS)
    assert government_of("2006-11-13T18:00:00Z").facet == 4637
    assert government_of("2023-10-14").facet == 6700
    assert government_of("2023-10-13").facet == 6455
    assert government_of("1990-01-01") is None


@pytest.fixture(scope="module")
def site():
    with Replica(search_page_size=5) as replica:
        yield replica


def fetch(site, path: str) -> bytes:
    import urllib.request

    with urllib.request.urlopen(site.base_url + path) as response:
        return response.read()


def test_a_replica_search_page_gives_links_dates_count_and_pager(site):
    url = search_url(site.base_url, 4637, 0)
    page = parse_search_page(fetch(site, url[len(site.base_url):]), url, site.base_url)
    expected = site.search_results(4637)
    assert page.reported == len(expected) == 5
    # Before 2014 the search links nodes; each result's date comes from its own <time>.
    assert page.results == [(f"{SITE}/node/{r.node_id}", r.published.strftime("%Y-%m-%dT%H:%M:%SZ"))
                            for r in expected]
    assert not page.has_pager  # one page


def test_a_later_page_has_a_next_link_until_the_last(site):
    assert len(site.search_results(6700)) == 8  # two pages of five
    first = search_url(site.base_url, 6700, 0)
    last = search_url(site.base_url, 6700, 1)
    page0 = parse_search_page(fetch(site, first[len(site.base_url):]), first, site.base_url)
    page1 = parse_search_page(fetch(site, last[len(site.base_url):]), last, site.base_url)
    assert page0.has_pager and page0.has_next and len(page0.results) == 5
    assert page1.has_pager and not page1.has_next and len(page1.results) == 3
    assert all(url.startswith(f"{SITE}/release/") for url, _ in page0.results + page1.results)


def test_links_are_found_by_path_whatever_the_markup():
    html = """<html><body>
      <p>Showing 1 - 3 of 3,412 results</p>
      <div class="views-row"><a href="/release/one">One</a><time datetime="2024-01-02T03:04:05Z">x</time></div>
      <article><h2><a href="https://www.beehive.govt.nz/node/123">Two</a></h2>
        <span><time datetime="2001-05-01T00:00:00Z">1 May</time></span></article>
      <div class="search-result"><a href="/release/three?utm=x">Three</a></div>
      <a href="/release/one">One again</a>
      <a href="/speech/a-speech">A speech</a><a href="https://evil.example/release/x">x</a>
      <a href="/release/">empty</a><a href="/release/a/b">deeper</a>
    </body></html>"""
    page = parse_search_page(html, f"{BASE}/search?page=0", BASE)
    assert page.results == [(f"{SITE}/release/one", "2024-01-02T03:04:05Z"),
                            (f"{SITE}/node/123", "2001-05-01T00:00:00Z"),
                            (f"{SITE}/release/three", None)]
    assert page.reported == 3412
    assert not page.has_pager and not page.has_next


def test_a_page_that_needs_javascript_gives_nothing():
    with Replica(search="javascript") as replica:
        url = search_url(replica.base_url, 6700, 0)
        page = parse_search_page(fetch(replica, url[len(replica.base_url):]), url, replica.base_url)
    assert page.results == [] and page.reported is None and not page.has_pager


def test_the_feed_gives_its_releases_newest_first(site):
    assert parse_feed(fetch(site, "/releases/feed")) == [site.url(s) for s in site.slugs[:10]]
    # the site-wide feed: its speeches are no releases
    assert b"/speech/" in fetch(site, "/rss.xml")
    assert parse_feed(fetch(site, "/rss.xml")) == [site.url(s) for s in site.slugs[:10]]
    assert parse_feed(b"not xml at all") == []


# -- seed files ----------------------------------------------------------------------------

URLS = [f"{SITE}/release/japan-and-new-zealand-seek-reinvigorate-trade-and-economic-relations",
        f"{SITE}/release/fines-payments", f"{SITE}/node/10404"]


def test_plain_text_seeds_with_comments_blank_lines_and_repeats(tmp_path):
    path = tmp_path / "seeds.txt"
    path.write_text(f"# releases the search missed\n\n{URLS[0]}\n  {URLS[1]}  # trailing\n"
                    f"{URLS[0]}\nhttp://beehive.govt.nz/node/10404\n")
    assert read_seeds(path) == URLS


def test_discovery_index_json(tmp_path):
    path = tmp_path / "2005-2008-labour.json"
    path.write_text(json.dumps({
        "government": "Labour (2005-2008)", "slug": "labour-2005", "total_releases": 3,
        "releases": {"2006-11": [{"url": URLS[0], "date": "2006-11-13T18:00:00Z"}],
                     "1997-11": [{"url": URLS[1], "date": "1997-11-05T00:00:00Z"},
                                 {"url": URLS[2], "date": "2001-05-01T00:00:00Z"}]}}))
    assert read_seeds(path) == URLS


@pytest.mark.parametrize("compressed", [False, True])
def test_sitemap_keeps_only_releases(tmp_path, compressed):
    xml = ('<?xml version="1.0" encoding="UTF-8"?>\n'
           '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
           + "".join(f"<url><loc>{u}</loc><lastmod>2026-01-01</lastmod></url>\n"
                     for u in URLS + [f"{SITE}/speech/a-speech", f"{SITE}/"])
           + "</urlset>\n").encode()
    path = tmp_path / ("sitemap.xml.gz" if compressed else "sitemap.xml")
    path.write_bytes(gzip.compress(xml) if compressed else xml)
    assert read_seeds(path) == URLS


@pytest.mark.parametrize("content, says", [
    (b"", "no release URLs"),
    (b"# only a comment\n", "no release URLs"),
    (b"https://example.com/release/x\n", "line 1: not a www.beehive.govt.nz release URL"),
    (b"https://www.beehive.govt.nz/speech/x\n", "line 1: not a www.beehive.govt.nz release URL"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
    (b'{"releases": ', "not valid JSON"),
    (b'{"government": "x"}', 'without a "releases" object'),
    (b'{"releases": {"2006-11": [{"date": "x"}]}}', "not a release URL"),
    (b'{"releases": {"2006-11": "nope"}}', "is not a list"),
    (b'<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
     b"<sitemap><loc>https://www.beehive.govt.nz/sitemap.xml?page=1</loc></sitemap></sitemapindex>",
     "a sitemap index"),
    (b"<html><body>not a sitemap</body></html>", "not a sitemap"),
    (b"\x1f\x8bnot really gzip", "not a readable gzip file"),
])
def test_a_bad_seed_file_is_one_clear_line(tmp_path, content, says):
    path = tmp_path / "seeds"
    path.write_bytes(content)
    with pytest.raises(SeedError) as error:
        read_seeds(path)
    message = str(error.value)
    assert says in message and str(path) in message and "\n" not in message


def test_a_missing_seed_file(tmp_path):
    with pytest.raises(SeedError, match="No such file"):
        read_seeds(tmp_path / "nope.txt")


def test_the_replica_modes_are_reachable_from_its_command_line():
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "tests.replica", "--port", "0", "--quiet",
         "--listing", "current", "--search", "javascript"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        base = process.stdout.readline().strip()
        import urllib.request

        listing = urllib.request.urlopen(base + "/releases").read().decode()
        search = urllib.request.urlopen(search_url(base, 4637, 0)).read()
    finally:
        process.terminate()
        process.wait(10)
    assert listing.count('class="views-row"') == 8  # the current government's releases
    assert parse_search_page(search, base + "/search", base).results == []


def test_a_release_page_names_its_node(site):
    from scraper.discovery import node_shortlink

    slug = site.slugs[3]
    page = fetch(site, f"/release/{slug}")
    assert node_shortlink(page) == f"{SITE}/node/{site.node_id(slug)}"
    assert node_shortlink(b'<link rel="shortlink" href="/node/42" />') == f"{SITE}/node/42"
    assert node_shortlink(b'<link rel="shortlink" href="https://evil.example/node/1">') is None
    assert node_shortlink(b"<html></html>") is None
