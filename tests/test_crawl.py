"""End to end: ``beehive crawl`` in a subprocess against the local replica of the site."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from tests.replica import CORPUS_DIR
from tests.run import FAST_REACTOR, beehive, crawl, rows, summary

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = CORPUS_DIR / "expected"


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*.md"))}


def mtimes(folder: Path) -> dict[str, int]:
    return {p.as_posix(): p.stat().st_mtime_ns for p in folder.rglob("*.md")}


@pytest.fixture
def archived(replica, tmp_path):
    """An archive after a first full crawl of the replica."""
    out = tmp_path / "archive"
    result = crawl(replica, out)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


def test_first_run_captures_every_release_as_the_reference_has_it(archived, replica):
    out, result = archived
    figures = summary(result)
    assert figures["outcome"] == "ok"
    assert int(figures["new"]) == len(replica.slugs) == 51
    assert figures["failed"] == "0"
    files = tree(out / "releases")
    assert sorted(files) == sorted(tree(EXPECTED))
    # Byte-for-byte fidelity is measured by the conformance tests; here: the crawl path
    # produces what the converter produces for the same page, for every release.
    ledger = rows(out / "ledger.db", "select url, path, date, nz_date, published from releases")
    assert len(ledger) == 51
    for row in ledger:
        assert (out / row["path"]).is_file()
        assert row["published"].startswith(row["date"]) and row["published"].endswith("Z")
    japan = "2006/11/2006-11-13-japan-and-new-zealand-seek-reinvigorate-trade-and-economic-relations.md"
    assert files[japan] == (EXPECTED / japan).read_bytes()
    row = rows(out / "ledger.db", "select date, nz_date from releases where path = ?",
               ["releases/" + japan])[0]
    assert (row["date"], row["nz_date"]) == ("2006-11-13", "2006-11-14")


def test_run_row_records_the_figures(archived):
    out, _ = archived
    (run,) = rows(out / "ledger.db", "select * from runs")
    assert run["command"] == "crawl" and run["outcome"] == "ok"
    assert run["new"] == 51 and run["failed"] == 0 and run["walk_finished"] == 1
    assert run["requested"] >= 51 + 6 + 1  # releases, listing pages, robots.txt
    assert run["started"] <= run["ended"]


def test_second_run_costs_robots_and_the_feed_and_writes_nothing(archived, replica):
    out, _ = archived
    before = mtimes(out)
    replica.clear_requests()
    result = crawl(replica, out)
    assert result.returncode == 0, result.stderr[-3000:]
    # The feed's oldest release is archived: nothing older can be new, no listing page.
    assert replica.paths == ["/robots.txt", "/rss.xml"]
    assert summary(result)["new"] == "0" and summary(result)["requested"] == "2"
    assert mtimes(out) == before


def test_where_rss_xml_cannot_be_read_the_releases_feed_stands_in(archived, replica):
    out, _ = archived
    newest = replica.published(replica.slugs[0])
    replica.publish("fresh-release", newest + timedelta(hours=1))
    replica.fault("/rss.xml", "status", 10, status=404)
    replica.clear_requests()
    result = crawl(replica, out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert replica.paths == ["/robots.txt", "/rss.xml", "/releases/feed", "/release/fresh-release"]
    assert summary(result)["new"] == "1"


def test_run_after_publishing_fetches_exactly_the_new_releases(archived, replica):
    out, _ = archived
    newest = replica.published(replica.slugs[0])
    fresh = [f"fresh-release-{i}" for i in range(3)]
    for i, slug in enumerate(fresh):
        replica.publish(slug, newest + timedelta(hours=i + 1))
    replica.clear_requests()
    result = crawl(replica, out)
    assert result.returncode == 0, result.stderr[-3000:]
    fetched = [p for p in replica.paths if p.startswith("/release/")]
    assert sorted(fetched) == sorted(f"/release/{s}" for s in fresh)
    # The feed (newest 10) holds the 3 and reaches back to archived releases: no listing.
    assert [p for p in replica.paths if p.startswith(("/releases", "/rss"))] == ["/rss.xml"]
    assert summary(result)["new"] == "3"
    paths = {r["path"] for r in rows(out / "ledger.db", "select path from releases")}
    assert len(paths) == 54
    assert all((out / p).is_file() for p in paths)


def test_new_releases_spanning_several_listing_pages(archived, replica):
    out, _ = archived
    replica.synthesize(23)  # above the newest: pages 0, 1 and part of 2
    replica.clear_requests()
    result = crawl(replica, out)
    assert summary(result)["new"] == "23"
    listing = [p for p in replica.paths if p.startswith(("/releases", "/rss"))]
    # The feed's 10 are all new: it may not hold everything new, so the listing is walked
    # (page 0 has nothing the feed did not give, but was new to the archive: on to page 3).
    assert listing == ["/rss.xml", "/releases?page=0", "/releases?page=1",
                       "/releases?page=2", "/releases?page=3"]


def test_full_walks_everything_and_rewrites_only_what_changed(archived, replica):
    out, _ = archived
    replica.edit(replica.slugs[5], "<p>Correction: the figure is 12, not 21.</p>")
    before = mtimes(out)
    replica.clear_requests()
    result = crawl(replica, out, "--full")
    assert result.returncode == 0, result.stderr[-3000:]
    figures = summary(result)
    assert (figures["new"], figures["updated"], figures["unchanged"]) == ("0", "1", "50")
    assert len([p for p in replica.paths if p.startswith("/releases")]) == 6
    after = mtimes(out)
    changed = [path for path in after if after[path] != before[path]]
    assert len(changed) == 1
    assert "Correction: the figure is 12, not 21." in Path(changed[0]).read_text()


def test_an_interrupted_walk_is_finished_by_the_next_run(archived, replica, tmp_path):
    """A walk that did not reach its natural end leaves older releases unknown: the next
    run walks from page 0 until a page with nothing new, then on from where it stopped."""
    out, _ = archived
    db = out / "ledger.db"
    with sqlite3.connect(db) as conn:
        conn.execute("update walks set finished = 0, page = 3, outcome = null where name = 'listing'")
        conn.execute("delete from releases where url like '%fines-payments'")
    replica.clear_requests()
    result = crawl(replica, out)
    assert summary(result)["new"] == "1"
    assert [p for p in replica.paths if p.startswith("/releases")] == \
        ["/releases?page=0", "/releases?page=3", "/releases?page=4", "/releases?page=5"]
    assert not [p for p in replica.paths if p.startswith("/search")]


def test_a_ledger_without_walk_records_goes_by_its_last_run(archived, replica, tmp_path):
    """A ledger from the previous release has runs.walk_finished only."""
    out, _ = archived
    db = out / "ledger.db"
    with sqlite3.connect(db) as conn:
        conn.execute("update runs set walk_finished = 0")
        conn.execute("delete from walks where name = 'listing'")
        conn.execute("delete from releases where url like '%fines-payments'")
    replica.clear_requests()
    result = crawl(replica, out)
    assert summary(result)["new"] == "1"
    assert len([p for p in replica.paths if p.startswith("/releases?")]) == 6


def test_node_links_and_redirects_are_keyed_by_the_canonical_url(replica, tmp_path):
    slug = replica.slugs[0]
    replica.add_listing_link(f"/node/{replica.node_id(slug)}", page=3)
    out = tmp_path / "archive"
    result = crawl(replica, out)
    assert summary(result)["new"] == "51"
    urls = [r["url"] for r in rows(out / "ledger.db", "select url from releases")]
    assert len(urls) == len(set(urls)) == 51
    aliases = rows(out / "ledger.db", "select * from aliases")
    assert {"url": f"https://www.beehive.govt.nz/node/{replica.node_id(slug)}",
            "canonical": f"https://www.beehive.govt.nz/release/{slug}"} in aliases
    # The search links releases before 2014 by node: each is known by its alias too.
    assert {a["canonical"] for a in aliases} <= set(urls)


def test_politeness_robots_txt_and_user_agent(replica, tmp_path):
    banned = replica.slugs[2]
    replica.disallow(f"/release/{banned}")
    result = crawl(replica, tmp_path / "archive")
    assert f"/release/{banned}" not in replica.paths
    assert replica.paths[0] == "/robots.txt"
    agents = {headers.get("User-Agent") for _, _, headers in replica.requests}
    assert agents == {"beehive-archive/0.1 (+https://github.com/beehive-archive/beehive-archive)"}
    # robots.txt forbade it: not a failure of the run, just not archived.
    assert summary(result)["new"] == "50"


def test_links_to_other_hosts_are_never_followed(replica, tmp_path):
    replica.add_listing_link("https://evil.example/release/fake-release")
    replica.add_listing_link("http://127.0.0.2:1/release/another-host")
    result = crawl(replica, tmp_path / "archive")
    assert result.returncode == 0
    assert summary(result)["new"] == "51"
    assert not any("fake-release" in p or "another-host" in p for p in replica.paths)


def test_db_option_puts_the_ledger_elsewhere(replica, tmp_path):
    db = tmp_path / "elsewhere" / "my-ledger.db"
    result = crawl(replica, tmp_path / "archive", "--db", db)
    assert result.returncode == 0
    assert db.is_file() and not (tmp_path / "archive" / "ledger.db").exists()
    assert rows(db, "select count(*) as n from releases") == [{"n": 51}]


def test_environment_variables_name_the_archive(replica, tmp_path):
    out = tmp_path / "from-env"
    result = beehive("crawl", "--base-url", replica.base_url, "--delay", "0", "-s", FAST_REACTOR,
                     env={"BEEHIVE_OUT": str(out)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(list((out / "releases").rglob("*.md"))) == 51


def test_settings_pass_through_to_scrapy(replica, tmp_path):
    result = crawl(replica, tmp_path / "archive", "-s", "LOG_LEVEL=INFO")
    assert "INFO: Spider opened" in result.stderr  # beehive crawl alone shows warnings only
    assert result.returncode == 0
    assert len(list((tmp_path / "archive" / "releases").rglob("*.md"))) == 51


def test_delay_is_the_pause_between_requests(replica, tmp_path):
    out = tmp_path / "archive"
    crawl(replica, out)
    quick = crawl(replica, out)
    slow = beehive("crawl", "--base-url", replica.base_url, "--out", out, "--delay", "0.6",
                   "-s", FAST_REACTOR)
    assert slow.returncode == 0
    # robots.txt, then the pause, then listing page 0
    assert float(summary(slow)["elapsed"].rstrip("s")) >= 0.6
    assert float(summary(quick)["elapsed"].rstrip("s")) < 0.6


@pytest.mark.parametrize("args, message", [
    (["--base-url", "ftp://example.org"], "not an http(s) URL"),
    (["--base-url", "nonsense"], "not an http(s) URL"),
    (["--delay", "-1"], "--delay"),
    (["--delay", "soon"], "--delay"),
    (["-s", "NOEQUALS"], "expected NAME=VALUE"),
    (["--bogus"], "No such option"),
])
def test_usage_errors_exit_2_with_one_line_and_no_traceback(tmp_path, args, message):
    result = beehive("crawl", "--out", tmp_path / "a", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "a").exists()


def test_scrapy_crawl_runs_the_same_spider_and_pipelines(replica, tmp_path):
    out = tmp_path / "archive"
    result = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "releases",
         "-s", f"BEEHIVE_BASE_URL={replica.base_url}", "-s", f"BEEHIVE_OUT={out}",
         "-s", "DOWNLOAD_DELAY=0", "-s", FAST_REACTOR],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert summary(result)["new"] == "51"
    assert sorted(tree(out / "releases")) == sorted(tree(EXPECTED))
    # and the command line sees that archive as its own: nothing new
    again = crawl(replica, out)
    assert summary(again)["new"] == "0"


def test_help_documents_every_command_and_exit_status():
    result = beehive("--help")
    assert result.returncode == 0 and "crawl" in result.stdout and "convert" in result.stdout
    crawl_help = beehive("crawl", "--help").stdout
    for option in ("--base-url", "--out", "--db", "--delay", "--full", "--set"):
        assert option in crawl_help
    for status in ("0  every", "1  some", "2  usage", "3  the site", "4  another"):
        assert status in crawl_help


@pytest.mark.parametrize("command", [["crawl", "--base-url", "http://127.0.0.1:9"], ["status"],
                                     ["verify"], ["rebuild"], ["export"], ["search", "x"]])
def test_a_ledger_that_is_not_sqlite_is_one_line_and_left_alone(tmp_path, command):
    db = tmp_path / "ledger.db"
    db.write_bytes(b"these are somebody's notes, not a database\n")
    result = beehive(*command, "--out", tmp_path, "--db", db)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "beehive: error:" in result.stderr and "not a database" in result.stderr
    assert db.read_bytes() == b"these are somebody's notes, not a database\n"
