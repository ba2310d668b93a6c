"""The whole history, end to end through ``beehive crawl`` against the replica: the search
walk of every government, the feed first for what is new, seeds when the search cannot
serve, coverage in ``beehive status``, and walks that resume after a crash."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from archive.archiver import Archiver
from scraper.discovery import search_url
from tests.replica import CORPUS_DIR, GOVERNMENTS, Replica
from tests.run import FAST_REACTOR, beehive, crawl, rows, summary

EXPECTED = CORPUS_DIR / "expected"
JAPAN = "2006/11/2006-11-13-japan-and-new-zealand-seek-reinvigorate-trade-and-economic-relations.md"
CURRENT = GOVERNMENTS[0][0]


def files(out: Path) -> set[str]:
    return {p.relative_to(out / "releases").as_posix() for p in (out / "releases").rglob("*.md")}


def searched(paths: list[str]) -> list[tuple[int, int]]:
    """(government facet, page) of every search request, in order."""
    found = []
    for path in paths:
        parts = urlsplit(path)
        if parts.path == "/search":
            query = parse_qs(parts.query)
            found.append((int(query["f[0]"][0].split(":")[1]), int(query["page"][0])))
    return found


def listing_pages(paths: list[str]) -> list[str]:
    return [p for p in paths if p.startswith("/releases?")]


def status_json(out: Path) -> dict:
    result = beehive("status", "--json", "--out", out)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def live_like():
    """The live site's shape: the listing covers the current government only."""
    with Replica(listing="current") as site:
        yield site


@pytest.fixture
def needs_javascript():
    """...and the search's results need JavaScript: the result pages carry none."""
    with Replica(listing="current", search="javascript") as site:
        yield site


# -- 1, 2. history through the search; an incremental run never touches it ---------------------

def test_first_crawl_archives_every_government_and_a_no_op_costs_two_requests(live_like, tmp_path):
    site, out = live_like, tmp_path / "archive"
    assert len(site.listed()) == 8 < len(site.slugs) == 51
    result = crawl(site, out)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = summary(result)
    assert (figures["outcome"], figures["new"], figures["failed"]) == ("ok", "51", "0")
    assert files(out) == {p.relative_to(EXPECTED).as_posix() for p in EXPECTED.rglob("*.md")}
    assert (out / "releases" / JAPAN).read_bytes() == (EXPECTED / JAPAN).read_bytes()
    # Every government searched once, newest first; older results came as /node/ links.
    assert sorted({facet for facet, _ in searched(site.paths)}) == sorted(f for f, _ in GOVERNMENTS)
    assert [facet for facet, page in searched(site.paths) if page == 0] == [f for f, _ in GOVERNMENTS]
    assert any(p.startswith("/node/") for p in site.paths)
    walks = {r["name"]: r for r in rows(out / "ledger.db", "select * from walks")}
    assert all(walks[f"search:{facet}"]["finished"] == 1 for facet, _ in GOVERNMENTS)

    site.clear_requests()
    again = crawl(site, out)
    assert again.returncode == 0, again.stderr[-3000:]
    assert site.paths == ["/robots.txt", "/rss.xml"]
    assert summary(again)["requested"] == "2"

    # Something new: the feed has it and reaches back to archived releases. Still no search.
    newest = site.published(site.slugs[0])
    site.publish("fresh-release", newest + timedelta(hours=1))
    site.clear_requests()
    fresh = crawl(site, out)
    assert summary(fresh)["new"] == "1"
    assert site.paths == ["/robots.txt", "/rss.xml", "/release/fresh-release"]

    # --full walks every search again; each release is fetched once, though the listing,
    # the search and node links all lead to it.
    site.clear_requests()
    full = crawl(site, out, "--full")
    assert full.returncode == 0, full.stderr[-3000:]
    assert summary(full)["unchanged"] == "52"
    assert sorted({facet for facet, _ in searched(site.paths)}) == sorted(f for f, _ in GOVERNMENTS)
    releases = [p for p in site.paths if p.startswith("/release/")]
    assert len(releases) == len(set(releases)) == 52


# -- 4. coverage you can see -------------------------------------------------------------------

def test_status_shows_per_government_what_search_reported_and_what_is_archived(tmp_path):
    with Replica(listing="current", search_page_size=5) as site:
        # 30 more releases of 2005-2008: six pages of its search.
        site.synthesize(30, start=datetime(2008, 6, 1, tzinfo=timezone.utc), step=timedelta(days=3))
        site.remove(site.slugs[-1])  # gone from search and listing alike (a 1996 release)
        out = tmp_path / "archive"
        result = crawl(site, out)
        assert result.returncode == 0, result.stderr[-3000:]
        expected = {facet: len(site.search_results(facet)) for facet, _ in GOVERNMENTS}
    assert expected[4637] == 35 and expected[4194] == 0
    history = {row["facet"]: row for row in status_json(out)["history"]}
    for facet, count in expected.items():
        row = history[facet]
        if count:
            assert (row["reported"], row["archived"], row["walk_finished"]) == (count, count, True)
    # A search that answers "0 results" is believed (one that needs JavaScript says nothing).
    assert (history[4194]["reported"], history[4194]["walk"]) == (0, "finished")
    text = beehive("status", "--out", out).stdout
    assert "  2005-2008 Labour                              35        35  finished" in text
    assert "history discovery: complete" in text


# -- 3. seeds, for when the search cannot serve --------------------------------------------------

def write_seeds(kind: str, urls: list[str], folder: Path) -> Path:
    if kind == "text":
        path = folder / "seeds.txt"
        path.write_text("# releases of past governments\n" + "\n".join(urls) + "\n")
    elif kind == "discovery-index":
        # The reference exporter's format (discovery-index/<years>-<party>.json in
        # marcus-crane/beehive-extracts), with the replica's releases.
        path = folder / "1993-2023-all.json"
        by_month: dict[str, list] = {}
        for url, date in urls:
            by_month.setdefault(date[:7], []).append({"url": url, "date": date})
        path.write_text(json.dumps({"government": "All (1993-2023)", "slug": "all-1993",
                                    "last_indexed_at": "2026-01-17T18:18:03+13:00",
                                    "total_releases": len(urls), "releases": by_month}, indent=2))
    else:
        path = folder / "sitemap.xml"
        path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n'
                        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
                        + "".join(f"  <url><loc>{u}</loc></url>\n" for u in urls)
                        + '  <url><loc>https://www.beehive.govt.nz/speech/not-a-release</loc></url>\n'
                        "</urlset>\n")
    return path


def test_search_needing_javascript_says_history_is_incomplete_and_seeds_complete_it(
        needs_javascript, tmp_path):
    site, out = needs_javascript, tmp_path / "archive"
    first = crawl(site, out)
    assert first.returncode == 1, first.stderr[-3000:]
    assert summary(first)["outcome"] == "incomplete"
    assert "history discovery is incomplete" in first.stderr
    assert "--seed FILE" in first.stderr and "Traceback" not in first.stderr
    assert len(files(out)) == 8  # what the listing covers
    assert {row["walk"] for row in status_json(out)["history"]} == {"unavailable"}

    # An hourly run does not walk the unavailable search again.
    site.clear_requests()
    hourly = crawl(site, out)
    assert hourly.returncode == 0 and not searched(site.paths)

    # Seeds in each format, a third each (one file of every release would do as well);
    # archived ones are skipped.
    archived = {r["url"] for r in rows(out / "ledger.db", "select url from releases")}
    everything = [(site.url(s), site.published(s).strftime("%Y-%m-%dT%H:%M:%SZ")) for s in site.slugs]
    thirds = [everything[i::3] for i in range(3)]
    for folder in ("text", "json", "xml"):
        (tmp_path / folder).mkdir()
    seeds = [write_seeds("text", [u for u, _ in thirds[0]], tmp_path / "text"),
             write_seeds("discovery-index", thirds[1], tmp_path / "json"),
             write_seeds("sitemap", [u for u, _ in thirds[2]], tmp_path / "xml")]
    site.clear_requests()
    seeded = crawl(site, out, *[arg for seed in seeds for arg in ("--seed", seed)])
    assert seeded.returncode == 0, seeded.stderr[-3000:]
    assert summary(seeded)["new"] == str(51 - len(archived))
    assert files(out) == {p.relative_to(EXPECTED).as_posix() for p in EXPECTED.rglob("*.md")}
    fetched = {f"https://www.beehive.govt.nz{p}" for p in site.paths if p.startswith("/release/")}
    assert fetched and not fetched & archived
    assert not searched(site.paths)
    assert {row["archived"] for row in status_json(out)["history"]} != {0}

    # The search works again: --full tries it, and history discovery is complete.
    site.search = "html"
    full = crawl(site, out, "--full")
    assert full.returncode == 0, full.stderr[-3000:]
    assert all(row["walk_finished"] for row in status_json(out)["history"])
    assert "history discovery: complete" in beehive("status", "--out", out).stdout


@pytest.mark.parametrize("content, how", [
    (b'{"releases": [', "--seed"),
    (b"https://www.beehive.govt.nz/release/fine\nhttps://example.com/release/evil\n", "--seed"),
    (b"<html><body>not a sitemap</body></html>", "-s"),  # BEEHIVE_SEEDS, as scrapy crawl -s
])
def test_a_bad_seed_file_is_one_line_exit_2_and_nothing_fetched(replica, tmp_path, content, how):
    bad = tmp_path / "bad-seeds"
    bad.write_bytes(content)
    out = tmp_path / "archive"
    args = ["--seed", bad] if how == "--seed" else ["-s", f"BEEHIVE_SEEDS={bad}"]
    result = crawl(replica, out, *args)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("beehive: error:")]
    assert len(errors) == 1 and str(bad) in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert replica.paths == [] and not out.exists()


def test_a_missing_seed_file_is_a_usage_error(replica, tmp_path):
    result = crawl(replica, tmp_path / "archive", "--seed", tmp_path / "nope.txt")
    assert result.returncode == 2 and "does not exist" in result.stderr
    assert replica.paths == []


def test_robots_forbidding_the_search_is_said_plainly(live_like, tmp_path):
    site, out = live_like, tmp_path / "archive"
    site.disallow("/search")
    result = crawl(site, out)
    assert result.returncode == 1
    assert summary(result)["outcome"] == "incomplete"
    assert "robots.txt forbids the site's search" in result.stderr
    assert result.stderr.count("robots.txt forbids") == 1
    assert not searched(site.paths)
    assert {row["walk"] for row in status_json(out)["history"]} == {"forbidden"}
    site.clear_requests()
    again = crawl(site, out)
    assert again.returncode == 0 and "robots.txt forbids" not in again.stderr


# -- 5. the cheap path first ---------------------------------------------------------------------

def test_the_feed_survives_a_blocked_listing(live_like, tmp_path):
    site, out = live_like, tmp_path / "archive"
    assert crawl(site, out).returncode == 0
    # Everything but the feeds blocked, as reported of the site: a run with nothing new
    # never meets the block.
    site.block_all(except_feeds=True)
    site.clear_requests()
    quiet = crawl(site, out)
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert site.paths == ["/robots.txt", "/rss.xml"]
    assert summary(quiet)["blocked"] == "0"
    # Only the listing blocked: new releases still arrive through the feed.
    site.unblock_all()
    site.fault("/releases", "blocked", times=100)
    newest = site.published(site.slugs[0])
    fresh = [site.publish(f"fresh-{i}", newest + timedelta(hours=i + 1)) for i in range(2)]
    site.clear_requests()
    result = crawl(site, out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert summary(result)["new"] == "2" and not listing_pages(site.paths)
    assert {r["url"] for r in rows(out / "ledger.db", "select url from releases")} >= set(fresh)


# -- resumable walks -----------------------------------------------------------------------------

def kill_when(command: list[str], site: Replica, seen) -> None:
    """Run the crawl and SIGKILL it as soon as the replica has served what ``seen`` waits for."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not seen(site.paths) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the crawl ended before it could be killed"
    # Its writer process may still be saving the release under way; what the test counts
    # next is what the archive holds once it has ended (the next run waits for it too).
    Archiver(command[command.index("--out") + 1]).lock().close()


def walk_page(out: Path, name: str) -> int:
    """Where the walk would resume, as the crawl's ledger says now (-1 before it says)."""
    if not (out / "ledger.db").exists():
        return -1
    try:
        found = rows(out / "ledger.db", "select page from walks where name = ?", [name])
    except sqlite3.Error:  # not made yet
        return -1
    return found[0]["page"] if found else -1


def crawl_command(site: Replica, out: Path) -> list[str]:
    return [sys.executable, "-m", "archive", "crawl", "--base-url", site.base_url,
            "--out", str(out), "--delay", "0", "-s", FAST_REACTOR]


def test_a_run_killed_in_the_1999_2002_walk_does_not_walk_the_newer_governments_again(tmp_path):
    with Replica(listing="current", search_page_size=5) as site:
        site.synthesize(40, start=datetime(2002, 6, 1, tzinfo=timezone.utc), step=timedelta(days=10))
        assert len(site.search_results(4376)) == 47  # ten pages
        out = tmp_path / "archive"
        # Page 6 of 1999-2002 stalls; the run is killed once the walk's progress shows that
        # the releases of its pages 0-5 are in (they go through the pipeline's own processes,
        # so they can be in later than the pages are read).
        site.fault(search_url("", 4376, 6), "timeout", seconds=60)

        kill_when(crawl_command(site, out), site, lambda paths: (
            (4376, 6) in searched(paths) and walk_page(out, "search:4376") >= 6))
        walks = {r["name"]: r for r in rows(out / "ledger.db", "select * from walks")}
        newer = [facet for facet, _ in GOVERNMENTS[:GOVERNMENTS.index((4376, "1999-11-27"))]]
        assert all(walks[f"search:{facet}"]["finished"] for facet in newer)
        stopped = walks["search:4376"]
        assert not stopped["finished"] and stopped["page"] >= 4

        site.clear_requests()
        result = crawl(site, out)
        assert result.returncode == 0, result.stderr[-3000:]
        pages = [page for facet, page in searched(site.paths) if facet == 4376]
        assert not [facet for facet, _ in searched(site.paths) if facet in newer]
        # From page 0 (nothing new there) straight to where the walk stopped, then on.
        assert pages[:2] == [0, stopped["page"]] and pages[-1] == 9
        assert len(files(out)) == len(site.slugs) == 91
        verified = beehive("verify", "--out", out)
        assert verified.returncode == 0, verified.stdout


def test_a_killed_backfill_resumes_its_listing_walk_instead_of_starting_over(replica, tmp_path):
    """Issue 10: SIGKILL in the middle of a 300-release first crawl."""
    replica.synthesize(250)
    out = tmp_path / "archive"
    full_walk = len(replica.slugs) // replica.page_size + 1
    assert full_walk == 31
    # Page 21 stalls; the run is killed once it is asked for and the walk's progress shows
    # that the releases of pages 0-19 are in.
    replica.fault("/releases?page=21", "timeout", seconds=60)
    kill_when(crawl_command(replica, out), replica, lambda paths: (
        "/releases?page=21" in paths and walk_page(out, "listing") >= 20))
    (listing,) = rows(out / "ledger.db", "select * from walks where name = 'listing'")
    assert not listing["finished"] and listing["page"] >= 19
    before = rows(out / "ledger.db", "select count(*) as n from releases")[0]["n"]

    replica.clear_requests()
    result = crawl(replica, out)
    assert result.returncode == 0, result.stderr[-3000:]
    pages = listing_pages(replica.paths)
    assert pages[:2] == ["/releases?page=0", f"/releases?page={listing['page']}"]
    assert len(pages) == full_walk - listing["page"] + 1 <= full_walk // 2
    assert int(summary(result)["new"]) == 301 - before
    assert len(files(out)) == 301
    verified = beehive("verify", "--out", out)
    assert verified.returncode == 0, verified.stdout


def test_when_the_feed_is_not_enough_and_the_listing_fails_the_next_run_walks_the_listing(
        replica, tmp_path):
    out = tmp_path / "archive"
    assert crawl(replica, out).returncode == 0
    fresh = replica.synthesize(15)  # more than the feed's ten
    replica.fault("/releases?page=0", "status", times=4, status=503)
    first = crawl(replica, out)
    assert first.returncode == 1 and summary(first)["new"] == "10"  # the feed's ten
    replica.clear_requests()
    second = crawl(replica, out)
    assert second.returncode == 0, second.stderr[-3000:]
    # The feed's oldest is archived now, but the five older new ones are not: the listing.
    assert "/releases?page=0" in replica.paths and summary(second)["new"] == "5"
    assert {r["url"] for r in rows(out / "ledger.db", "select url from releases")} >= \
        {replica.url(s) for s in fresh}


def test_without_a_pager_a_search_walk_ends_after_three_empty_pages(tmp_path):
    with Replica(listing="current", search_pager=False) as site:
        site.synthesize(19, start=datetime(2008, 6, 1, tzinfo=timezone.utc), step=timedelta(days=3))
        assert len(site.search_results(4637)) == 24  # one full page
        out = tmp_path / "archive"
        result = crawl(site, out)
        assert result.returncode == 0, result.stderr[-3000:]
        # A full page may have more after it; then three empty pages in a row end the walk.
        assert [page for facet, page in searched(site.paths) if facet == 4637] == [0, 1, 2, 3]
        # A short page is the last.
        assert [page for facet, page in searched(site.paths) if facet == 4376] == [0]
        assert len(files(out)) == len(site.slugs)
