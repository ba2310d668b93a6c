"""Tests of the local site replica itself (tests/replica.py), with plain urllib."""

import email.utils
import http.client
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.replica import CORPUS_PAGES, PRODUCTION, Replica

TEASER_RE = re.compile(r'<a href="/release/([^"]+)"')
TIME_RE = re.compile(r'<time datetime="(....-..-..T..:..:..Z)">')
NEXT_RE = re.compile(r'<li class="pager__item pager__item--next"><a href="\?page=(\d+)"[^>]*rel="next"')


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # let 3xx surface as HTTPError so tests can see them


_opener = urllib.request.build_opener(_NoRedirect)


def fetch(url, headers=None, timeout=5):
    """(status, headers, body) without following redirects or raising on 4xx/5xx."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with _opener.open(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.headers, err.read()


def listing(replica, page=None):
    path = "/releases" if page is None else f"/releases?page={page}"
    status, _, body = fetch(replica.base_url + path)
    assert status == 200
    return body.decode()


def corpus_file(slug):
    return next(CORPUS_PAGES.rglob(f"????-??-??-{slug}.html"))


# ---------------------------------------------------------------- listing


def test_listing_is_newest_first_and_paged(replica):
    slugs = replica.slugs
    assert len(slugs) == 51
    seen, page = [], 0
    while True:
        html = listing(replica, page)
        teasers = TEASER_RE.findall(html)
        assert len(teasers) <= replica.page_size
        seen += teasers
        nxt = NEXT_RE.search(html)
        if not nxt:
            break
        assert int(nxt.group(1)) == page + 1
        page += 1
    assert seen == slugs
    assert page == 5  # 51 releases, 10 a page: pages 0..5, the last with one teaser
    times = TIME_RE.findall("".join(listing(replica, p) for p in range(6)))
    assert times == sorted(times, reverse=True) and len(times) == 51


def test_listing_defaults_to_page_zero_and_ends_empty(replica):
    assert TEASER_RE.findall(listing(replica)) == replica.slugs[:10]
    beyond = listing(replica, 6)
    assert TEASER_RE.findall(beyond) == [] and not NEXT_RE.search(beyond)
    assert TEASER_RE.findall(listing(replica, "junk")) == replica.slugs[:10]


def test_listing_holds_non_release_links(replica):
    html = listing(replica)
    assert 'href="/speech/' in html and 'href="/minister/' in html
    assert 'href="https://www.govt.nz/"' in html


def test_page_size_is_configurable():
    with Replica(page_size=24) as site:
        assert len(TEASER_RE.findall(listing(site, 0))) == 24
        assert len(TEASER_RE.findall(listing(site, 2))) == 3


# ---------------------------------------------------------------- pages


def test_release_page_wraps_region_in_shell(replica):
    slug = "japan-and-new-zealand-seek-reinvigorate-trade-and-economic-relations"
    status, headers, body = fetch(f"{replica.base_url}/release/{slug}")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert corpus_file(slug).read_bytes() in body  # region served byte for byte
    text = body.decode()
    assert text.startswith("<!DOCTYPE html>")
    assert f'<link rel="canonical" href="{PRODUCTION}/release/{slug}" />' in text
    assert "<title>Japan and New Zealand seek to reinvigorate trade" in text
    assert len(body) > 30_000 and "<script" in text and "<style" in text


def test_numeric_slug_and_node_redirect(replica):
    status, _, body = fetch(replica.base_url + "/release/10404")
    assert status == 200 and b"He Korowai Oranga" in body
    status, headers, _ = fetch(replica.base_url + "/node/10404")
    assert status == 301 and headers["Location"] == replica.base_url + "/release/10404"


def test_unknown_paths_are_404(replica):
    for path in ("/release/no-such-release", "/speech/anything", "/node/1", "/nope"):
        status, headers, body = fetch(replica.base_url + path)
        assert status == 404 and b"Page not found" in body, path


def test_etag_revalidation(replica):
    url = f"{replica.base_url}/release/{replica.slugs[0]}"
    _, headers, _ = fetch(url)
    status, _, body = fetch(url, {"If-None-Match": headers["ETag"]})
    assert status == 304 and body == b""
    replica.edit(replica.slugs[0], "<p>Corrected.</p>")
    assert fetch(url, {"If-None-Match": headers["ETag"]})[0] == 200


# ---------------------------------------------------------------- feeds and robots


@pytest.mark.parametrize("path", ["/rss.xml", "/releases/feed"])
def test_feed(replica, path):
    status, headers, body = fetch(replica.base_url + path)
    assert status == 200 and "rss" in headers["Content-Type"]
    items = ET.fromstring(body).findall("./channel/item")
    links = [i.findtext("link") for i in items]
    # /rss.xml is the site-wide feed: speeches among the releases
    speeches = [link for link in links if link.startswith(f"{PRODUCTION}/speech/")]
    assert bool(speeches) == (path == "/rss.xml")
    items = [i for i in items if i.findtext("link") not in speeches]
    assert len(items) == 10
    assert [i.findtext("link") for i in items] == [f"{PRODUCTION}/release/{s}" for s in replica.slugs[:10]]
    first = items[0]
    assert email.utils.parsedate_to_datetime(first.findtext("pubDate")) == replica.published(replica.slugs[0])
    assert first.findtext("guid") == f"{replica.node_id(replica.slugs[0])} at https://www.beehive.govt.nz"
    assert first.findtext("title") == "Accommodation support for recent severe weather events"


def test_robots(replica):
    replica.disallow("/release/never-fetch-")
    status, headers, body = fetch(replica.base_url + "/robots.txt")
    lines = body.decode().splitlines()
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert "User-agent: *" in lines
    for rule in ("Disallow: /search/", "Disallow: /user/", "Disallow: /release/never-fetch-"):
        assert rule in lines


# ---------------------------------------------------------------- changing the site


def test_publish_newest(replica):
    when = datetime(2026, 2, 3, 22, 15, tzinfo=timezone.utc)  # 4 February in New Zealand
    url = replica.publish("brand-new-release", when, title='A "new" release')
    assert url == f"{PRODUCTION}/release/brand-new-release"
    assert replica.slugs[0] == "brand-new-release" and len(replica.slugs) == 52
    assert TEASER_RE.findall(listing(replica))[0] == "brand-new-release"
    status, _, body = fetch(replica.base_url + "/release/brand-new-release")
    text = body.decode()
    assert status == 200
    assert '<time datetime="2026-02-03T22:15:00Z">4 February 2026</time>' in text
    assert "A &quot;new&quot; release" in text
    assert f"{PRODUCTION}/release/brand-new-release" in text
    assert "accommodation-support-recent-severe-weather-events" not in text  # share links rewritten
    feed = fetch(replica.base_url + "/rss.xml")[2].decode()
    assert f"<link>{url}</link>" in feed and 'A "new" release' in feed


def test_publish_in_the_middle_from_chosen_source(replica):
    replica.publish("mid-2010", datetime(2010, 6, 1), source_slug="10404")
    slugs = replica.slugs
    i = slugs.index("mid-2010")
    assert replica.published(slugs[i - 1]) > replica.published("mid-2010") > replica.published(slugs[i + 1])
    body = fetch(replica.base_url + "/release/mid-2010")[2].decode()
    assert "He Korowai Oranga" in body and f"{PRODUCTION}/release/mid-2010" in body
    assert "/node/10404" not in body.split("<main", 1)[1].split("field--name-body")[0]
    with pytest.raises(ValueError):
        replica.publish("mid-2010", datetime(2010, 6, 1))


def test_edit(replica):
    slug = "fines-payments"
    replica.edit(slug, "<p>Correction: the figure was $33 million.</p>")
    body = fetch(f"{replica.base_url}/release/{slug}")[2].decode()
    assert "<p>Correction: the figure was $33 million.</p></div>" in body  # inside the body div
    assert replica.slugs.count(slug) == 1


def test_remove(replica):
    slug = replica.slugs[0]
    replica.remove(slug)
    assert fetch(f"{replica.base_url}/release/{slug}")[0] == 404
    assert slug not in TEASER_RE.findall(listing(replica))
    assert slug.encode() not in fetch(replica.base_url + "/rss.xml")[2]


def test_rename(replica):
    old, new = "fines-payments", "fines-payments-update"
    nid = replica.node_id(old)
    replica.rename(old, new)
    status, headers, _ = fetch(f"{replica.base_url}/release/{old}")
    assert status == 301 and headers["Location"] == f"{replica.base_url}/release/{new}"
    status, _, body = fetch(f"{replica.base_url}/release/{new}")
    assert status == 200 and f'href="{PRODUCTION}/release/{new}"'.encode() in body
    assert f"{PRODUCTION}/release/{old}&".encode() not in body
    assert new in replica.slugs and old not in replica.slugs
    assert fetch(f"{replica.base_url}/node/{nid}")[1]["Location"].endswith(f"/release/{new}")


def test_alias(replica):
    replica.alias(123, "fines-payments")
    status, headers, _ = fetch(replica.base_url + "/node/123")
    assert status == 301 and headers["Location"] == replica.base_url + "/release/fines-payments"
    replica.remove("fines-payments")
    assert fetch(replica.base_url + "/node/123")[0] == 404


def test_add_listing_link(replica):
    replica.add_listing_link("/node/123")
    replica.add_listing_link("https://evil.example/release/x", page=1)
    assert 'href="/node/123"' in listing(replica, 0)
    assert 'href="https://evil.example/release/x"' in listing(replica, 1)


def test_set_release_html(replica):
    replica.set_release_html("fines-payments", b"\xff\xfe<html>garbage", "text/html")
    status, headers, body = fetch(replica.base_url + "/release/fines-payments")
    assert status == 200 and body == b"\xff\xfe<html>garbage" and headers["Content-Type"] == "text/html"
    assert "fines-payments" in replica.slugs
    replica.set_release_html("brand-new-hostile", "<html><body>no article</body></html>")
    assert replica.slugs[0] == "brand-new-hostile"


def test_synthesize():
    with Replica(page_size=50) as site:
        made = site.synthesize(120)
        assert len(made) == len(set(made)) == 120
        assert made[0].endswith("-s0") and made[1].endswith("-s1")
        assert site.slugs[:120] == made  # a block above the corpus, in order
        times = [site.published(s) for s in made]
        assert all(a > b for a, b in zip(times, times[1:]))
        assert len(site.slugs) == 171
        assert set(site.synthesize(3)).isdisjoint(made)
        status, _, body = fetch(f"{site.base_url}/release/{made[5]}")
        assert status == 200 and f"{PRODUCTION}/release/{made[5]}".encode() in body


# ---------------------------------------------------------------- faults


def test_fault_status_then_normal(replica):
    url = replica.base_url + "/releases?page=0"
    replica.fault("/releases?page=0", "status", times=2, status=503)
    assert [fetch(url)[0] for _ in range(3)] == [503, 503, 200]
    assert fetch(replica.base_url + "/releases?page=1")[0] == 200  # exact query only


def test_fault_without_query_matches_any_query(replica):
    replica.fault("/releases", "status", status=500)
    assert fetch(replica.base_url + "/releases?page=3")[0] == 500
    assert fetch(replica.base_url + "/releases?page=3")[0] == 200


def test_fault_429_retry_after(replica):
    replica.fault("/rss.xml", "status", status=429, retry_after=7)
    status, headers, _ = fetch(replica.base_url + "/rss.xml")
    assert status == 429 and headers["Retry-After"] == "7"


def test_faults_queue_in_order(replica):
    path = "/release/fines-payments"
    replica.fault(path, "status", status=404)
    replica.fault(path, "blocked")
    assert fetch(replica.base_url + path)[0] == 404
    assert b"Incapsula" in fetch(replica.base_url + path)[2]
    assert b"Fines Payments Up" in fetch(replica.base_url + path)[2]


def test_fault_cut(replica):
    path = "/release/fines-payments"
    full = fetch(replica.base_url + path)[2]
    replica.fault(path, "cut")
    with pytest.raises(http.client.IncompleteRead) as err:
        urllib.request.urlopen(replica.base_url + path, timeout=5).read()
    assert 0 < len(err.value.partial) < len(full)
    assert fetch(replica.base_url + path)[2] == full


@pytest.mark.parametrize("status", [200, 403])
def test_fault_blocked(replica, corpus_dir, status):
    replica.fault("/release/fines-payments", "blocked", status=status)
    got, _, body = fetch(replica.base_url + "/release/fines-payments")
    assert got == status
    assert body in [p.read_bytes() for p in (corpus_dir / "blocked").glob("*.html")]
    assert b'id="main-iframe"' in body and b"Incapsula incident ID" in body


def test_fault_huge(replica):
    replica.fault("/release/fines-payments", "huge")
    status, headers, body = fetch(replica.base_url + "/release/fines-payments", timeout=20)
    assert status == 200 and len(body) >= 10_000_000 and body.startswith(b"<!DOCTYPE html>")
    assert int(headers["Content-Length"]) == len(body)


def test_fault_binary(replica):
    replica.fault("/release/fines-payments", "binary")
    status, headers, body = fetch(replica.base_url + "/release/fines-payments")
    assert status == 200 and headers["Content-Type"] == "application/octet-stream"
    assert len(body) > 1000 and b"<html" not in body[:100]


def test_fault_timeout_stalls_only_that_request(replica):
    replica.fault("/release/fines-payments", "timeout", seconds=0.6)
    result = {}

    def slow():
        t = time.monotonic()
        result["status"] = fetch(replica.base_url + "/release/fines-payments")[0]
        result["took"] = time.monotonic() - t

    worker = threading.Thread(target=slow)
    worker.start()
    time.sleep(0.1)
    t = time.monotonic()
    assert fetch(replica.base_url + "/releases")[0] == 200  # not held up
    assert time.monotonic() - t < 0.4
    worker.join(5)
    assert result["status"] == 200 and result["took"] >= 0.55


def test_fault_timeout_client_gives_up_and_stop_is_prompt():
    site = Replica().start()
    site.fault("/rss.xml", "timeout")  # 30 s
    with pytest.raises(OSError):  # socket timeout, surfaced as URLError or TimeoutError
        urllib.request.urlopen(site.base_url + "/rss.xml", timeout=0.3).read()
    t = time.monotonic()
    site.stop()
    assert time.monotonic() - t < 1.5


def test_unknown_fault_kind(replica):
    with pytest.raises(ValueError):
        replica.fault("/releases", "explode")


def test_block_all(replica):
    replica.block_all()
    for path in ("/releases", "/release/fines-payments", "/rss.xml", "/nope"):
        status, _, body = fetch(replica.base_url + path)
        assert status == 200 and b"Incapsula incident ID" in body, path
    assert b"User-agent: *" in fetch(replica.base_url + "/robots.txt")[2]
    replica.block_all(status=403, except_feeds=True)
    assert fetch(replica.base_url + "/releases")[0] == 403
    assert b"<rss" in fetch(replica.base_url + "/rss.xml")[2]
    replica.unblock_all()
    assert b"Fines Payments Up" in fetch(replica.base_url + "/release/fines-payments")[2]


# ---------------------------------------------------------------- request log and lifecycle


def test_request_log(replica):
    fetch(replica.base_url + "/releases?page=1", {"User-Agent": "beehive-archive/test (+https://example.org)"})
    fetch(replica.base_url + "/robots.txt")
    method, path, headers = replica.requests[0]
    assert (method, path) == ("GET", "/releases?page=1")
    assert headers["User-Agent"] == headers["user-agent"] == "beehive-archive/test (+https://example.org)"
    assert replica.paths == ["/releases?page=1", "/robots.txt"]
    replica.clear_requests()
    assert replica.requests == []


def test_concurrent_requests_are_all_logged(replica):
    threads = [threading.Thread(target=fetch, args=(f"{replica.base_url}/releases?page={i % 6}",))
               for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert len(replica.requests) == 20


def test_context_manager_and_restartable_port():
    with Replica() as site:
        url = site.base_url
        assert fetch(url + "/robots.txt")[0] == 200
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "/robots.txt", timeout=1)


def test_standalone_module():
    proc = subprocess.Popen([sys.executable, "-m", "tests.replica", "--port", "0", "--synthesize", "5", "--quiet"],
                            cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        base = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base)
        assert len(TEASER_RE.findall(fetch(base + "/releases")[2].decode())) == 10
        assert TEASER_RE.findall(fetch(base + "/releases?page=5")[2].decode())  # 56 releases
    finally:
        proc.terminate()
        proc.wait(5)
