"""Releases that answered 404 or 410 before they were ever captured (issue 17): asked again by
the next run, then ever less often, and given up after 90 days of 404s. End to end through the
command line against the replica; time passes by moving the ledger's timestamps back with
plain SQL, never by sleeping."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

from archive.schedule import GONE_GIVE_UP_AFTER, gone_next_try, gone_retry_delay, parse_iso
from tests.fixtures.make_v1_archive import site_pages
from tests.replica import CORPUS_PAGES, Replica, copy_pages
from tests.run import beehive, crawl, execute, rows, summary

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SLUG = "embargoed-release-not-yet-published"  # the v1 fixture's release answering 404
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


def failure(out: Path, url: str) -> dict | None:
    found = rows(out / "ledger.db", "select * from failures where url = ?", [url])
    return found[0] if found else None


def pass_time(out: Path, span: timedelta) -> None:
    """``span`` goes by: every moment the failures table holds moves that far back."""
    shift = f"-{int(span.total_seconds())} seconds"
    execute(out / "ledger.db", "update failures set "
            + ", ".join(f"{column} = strftime('%Y-%m-%dT%H:%M:%SZ', {column}, :shift)"
                        for column in ("at", "first_failed", "next_try", "given_up")),
            {"shift": shift})


def asked(site, url_path: str) -> int:
    """How many times this run asked the site for the page (and clears the count)."""
    count = site.paths.count(url_path)
    site.clear_requests()
    return count


# -- the growing intervals: a pure function ----------------------------------------------------

def test_the_delays_grow_from_the_next_run_to_a_month():
    assert [gone_retry_delay(n) for n in range(1, 9)] == [
        timedelta(0), timedelta(hours=1), timedelta(hours=6), timedelta(days=1),
        timedelta(weeks=1), timedelta(days=30), timedelta(days=30), timedelta(days=30)]


def test_the_next_try_is_none_after_ninety_days_of_404s():
    first = NOW - timedelta(days=3)
    assert gone_next_try(first, 4, NOW) == NOW + timedelta(days=1)
    assert gone_next_try(NOW, 1, NOW) == NOW  # the next run asks again
    assert gone_next_try(NOW - GONE_GIVE_UP_AFTER + timedelta(seconds=1), 9, NOW) == \
        NOW + timedelta(days=30)
    assert gone_next_try(NOW - GONE_GIVE_UP_AFTER, 9, NOW) is None
    assert GONE_GIVE_UP_AFTER == timedelta(days=90)


def test_a_release_that_stays_gone_costs_a_handful_of_requests_a_month():
    """Asked on every hourly run that finds it due, over simulated months."""
    first, moment, attempts, asks = NOW, NOW, 1, [NOW]
    next_try = gone_next_try(first, attempts, moment)
    while next_try is not None:
        moment += timedelta(hours=1)
        if moment >= next_try:
            attempts += 1
            asks.append(moment)
            next_try = gone_next_try(first, attempts, moment)
    in_first_month = [at for at in asks if at < first + timedelta(days=30)]
    assert len(in_first_month) == 6  # not 720
    assert len(asks) <= 10
    assert timedelta(days=90) <= asks[-1] - first <= timedelta(days=121)


# -- on the replica ----------------------------------------------------------------------------

def test_a_release_that_404s_on_first_sight_is_captured_by_the_next_run(replica, tmp_path):
    """The issue's case: listed on a later listing page, 404 during the first crawl; by the
    next run it is served, but it is neither in the feed nor before the walk's stop."""
    out, url = tmp_path / "archive", replica.url(SLUG)
    replica.add_listing_link(f"/release/{SLUG}", page=3)
    first = crawl(replica, out)
    assert summary(first)["gone"] == "1", first.stderr[-3000:]
    found = failure(out, url)
    assert (found["kind"], found["status"], found["attempts"]) == ("gone", 404, 1)
    assert found["first_failed"] == found["at"] == found["next_try"]  # due at once
    assert found["given_up"] is None
    report = json.loads(beehive("status", "--out", out, "--json").stdout)
    assert [(f["url"], f["due"]) for f in report["never_captured"]] == [(url, True)]
    assert f"next try: the next run (due since {found['next_try']})" in \
        beehive("status", "--out", out).stdout

    replica.publish(SLUG, datetime(2012, 6, 1, tzinfo=timezone.utc))
    replica.clear_requests()
    second = crawl(replica, out, env={"PYTHONWARNINGS": "always"})
    assert second.returncode == 0, second.stderr[-3000:]
    assert summary(second)["new"] == "1"
    assert "Warning" not in second.stderr and len(second.stderr.splitlines()) == 2
    # the feed reaches back to archived releases: no walk; then the release, after it
    assert replica.paths == ["/robots.txt", "/rss.xml", f"/release/{SLUG}"]
    assert failure(out, url) is None
    (release,) = rows(out / "ledger.db", "select path from releases where url = ?", [url])
    assert (out / release["path"]).is_file()
    assert [c["kind"] for c in rows(out / "ledger.db", "select kind from changes "
                                    "where url = ?", [url])] == ["new"]
    assert beehive("verify", "--out", out).returncode == 0


def test_a_release_that_stays_gone_is_asked_on_the_schedule_then_given_up(site, tmp_path):
    out, url, path = tmp_path / "archive", site.url(SLUG), f"/release/{SLUG}"
    site.add_listing_link(path, page=0)
    first = crawl(site, out)
    assert summary(first)["gone"] == "1"
    assert asked(site, path) == 1

    # (time since the last run, asked in this run?) for an hourly job, sampled: just
    # before and just after each due time; the ask at 0 was the first crawl's
    runs = [
        (timedelta(0), True),  # the next run asks again, after its walks
        (timedelta(minutes=1), False),
        (timedelta(minutes=50), False),
        (timedelta(minutes=11), True),  # 1 hour after
        (timedelta(hours=5), False),
        (timedelta(hours=1, minutes=1), True),  # 6 hours after
        (timedelta(hours=23), False),
        (timedelta(hours=1, minutes=1), True),  # 1 day after
        (timedelta(days=6), False),
        (timedelta(days=1, minutes=1), True),  # 1 week after
        (timedelta(days=29), False),
        (timedelta(days=1, minutes=1), True),  # 30 days after: day 38
        (timedelta(days=30, minutes=1), True),  # day 68
    ]
    for number, (span, expected) in enumerate(runs, 2):
        pass_time(out, span)
        result = crawl(site, out)
        assert result.returncode == 0, result.stderr[-3000:]
        assert asked(site, path) == int(expected), (number, span)
        # a run asking nothing else costs robots.txt and the feed, with the ask
        assert summary(result)["requested"] == str(2 + expected)
    row = failure(out, url)
    assert row["attempts"] == 8 and row["given_up"] is None
    assert parse_iso(row["at"]) - parse_iso(row["first_failed"]) > timedelta(days=68)

    report = json.loads(beehive("status", "--out", out, "--json").stdout)
    assert report["failures"] == []  # none that the next run asks for at once
    (waiting,) = report["never_captured"]
    assert (waiting["url"], waiting["next_try"], waiting["given_up"], waiting["due"]) == (
        url, row["next_try"], None, False)
    text = beehive("status", "--out", out).stdout
    assert f"{url}  gone (HTTP 404)" in text and f"next try {row['next_try']}" in text

    # day 98: 90 days of 404s: given up, and asked no more
    pass_time(out, timedelta(days=30, minutes=1))
    assert crawl(site, out).returncode == 0
    assert asked(site, path) == 1
    row = failure(out, url)
    assert row["given_up"] == row["at"] and row["next_try"] is None
    for span in (timedelta(days=30), timedelta(days=365)):
        pass_time(out, span)
        assert crawl(site, out).returncode == 0
        assert asked(site, path) == 0
    row = failure(out, url)
    report = json.loads(beehive("status", "--out", out, "--json").stdout)
    (given_up,) = report["never_captured"]
    assert given_up["given_up"] == row["given_up"] and given_up["next_try"] is None
    assert given_up["due"] is False
    text = beehive("status", "--out", out).stdout
    line = next(line for line in text.splitlines() if url in line)
    assert f"first {given_up['first_failed']}" in line and f"last {given_up['at']}" in line
    assert "given up" in line

    # ...but a seed file, --url and --full still ask for it
    seeds = tmp_path / "urls.txt"
    seeds.write_text(url + "\n")
    for args in (["--seed", seeds], ["--url", url], ["--full"]):
        crawl(site, out, *args)
        assert asked(site, path) == 1, args
    assert failure(out, url)["given_up"] == row["given_up"]  # still 404: still given up
    site.publish(SLUG, datetime(2025, 1, 1, tzinfo=timezone.utc))
    assert summary(crawl(site, out, "--url", url))["new"] == "1"
    assert failure(out, url) is None


def test_a_release_a_seed_file_named_is_asked_again_without_it(site, tmp_path):
    out, url = tmp_path / "archive", site.url(SLUG)
    seeds = tmp_path / "urls.txt"
    seeds.write_text(url + "\n")
    assert summary(crawl(site, out, "--seed", seeds))["gone"] == "1"
    site.publish(SLUG, datetime(2025, 1, 1, tzinfo=timezone.utc))
    site.clear_requests()
    result = crawl(site, out)  # without the seed file
    assert summary(result)["new"] == "1"
    assert site.paths[-1] == f"/release/{SLUG}"
    assert failure(out, url) is None


def test_a_full_run_asks_for_one_given_up_that_no_walk_lists(site, tmp_path):
    out, url, path = tmp_path / "archive", site.url(SLUG), f"/release/{SLUG}"
    seeds = tmp_path / "urls.txt"
    seeds.write_text(url + "\n")
    assert summary(crawl(site, out, "--seed", seeds))["gone"] == "1"
    pass_time(out, GONE_GIVE_UP_AFTER)
    site.clear_requests()
    assert summary(crawl(site, out))["gone"] == "1"  # due, and 90 days of 404s
    assert failure(out, url)["given_up"] and asked(site, path) == 1
    crawl(site, out)
    assert asked(site, path) == 0
    crawl(site, out, "--full")
    assert asked(site, path) == 1


def test_a_release_the_search_named_is_asked_again(tmp_path):
    """A listing of the current government only: the search alone names a 2020 release."""
    older = "2020/02/2020-02-22-submission-period-whitebait-consultation-extended.html"
    pages = copy_pages([CORPUS_PAGES / older, *sorted(CORPUS_PAGES.glob("2025/*/*.html"))[:4]],
                       tmp_path / "pages")
    slug = older.rsplit("/", 1)[1][len("2020-02-22-"):-len(".html")]
    out = tmp_path / "archive"
    with Replica(pages, page_size=4, listing="current") as site:
        site.fault(f"/release/{slug}", "status", 1, status=404)
        assert summary(crawl(site, out))["gone"] == "1"
        assert failure(out, site.url(slug))["next_try"]
        site.clear_requests()
        result = crawl(site, out)
        assert result.returncode == 0, result.stderr[-3000:]
        assert summary(result)["new"] == "1"
        assert not [p for p in site.paths if p.startswith("/search")]  # walked no more
        assert site.paths[-1] == f"/release/{slug}"  # after the walks
        assert failure(out, site.url(slug)) is None


def test_an_archived_release_that_goes_404_stays_on_its_recheck_schedule(site, tmp_path):
    """Not a release never captured: the recheck schedule asks for it, not the failures'."""
    out = tmp_path / "archive"
    assert crawl(site, out).returncode == 0
    slug = site.slugs[1]
    site.fault(f"/release/{slug}", "status", 1, status=404)
    execute(out / "ledger.db", "update releases set next_check = '2000-01-01T00:00:00Z' "
            "where url = ?", [site.url(slug)])
    assert summary(crawl(site, out))["gone"] == "1"
    row = failure(out, site.url(slug))
    assert row["next_try"] is None and row["given_up"] is None
    site.clear_requests()
    assert summary(crawl(site, out))["requested"] == "2"  # its recheck is not due
    report = json.loads(beehive("status", "--out", out, "--json").stdout)
    assert [f["url"] for f in report["failures"]] == [site.url(slug)]
    assert report["never_captured"] == []


# -- an archive made by schema version 1 -----------------------------------------------------------

def test_a_v1_archive_asks_again_for_the_release_that_answered_404(tmp_path):
    """tests/fixtures/v1-archive holds a release listed and answering 404, never captured,
    which version 1 never asked for again; and a release failing with HTTP 500."""
    out = tmp_path / "archive"
    shutil.copytree(FIXTURES / "v1-archive", out)
    db = out / "ledger.db"
    old = {row["url"]: row for row in rows(db, "select * from failures")}
    url = "https://www.beehive.govt.nz/release/" + SLUG
    assert old[url]["kind"] == "gone" and "first_failed" not in old[url]
    (failed,) = [u for u, row in old.items() if row["kind"] == "failed"]

    # the site the archive was made from, where the release is now published (in 1995:
    # not in the feed, whose ten newest hold a release published since)
    with Replica(site_pages(tmp_path / "pages"), page_size=4) as site:
        site.publish(SLUG, datetime(1995, 3, 1, tzinfo=timezone.utc))
        site.publish("published-since", datetime.now(timezone.utc))
        result = crawl(site, out)
        assert result.returncode == 0, result.stderr[-3000:]
        assert summary(result)["new"] == "2"
        assert f"/release/{SLUG}" in site.paths
        assert not [p for p in site.paths if p.startswith(("/releases?", "/search"))]
        # the 500 failure is asked again too, as every run does
        assert f"/release/{failed.rsplit('/', 1)[1]}" in site.paths
    assert rows(db, "select * from failures") == []
    assert rows(db, "select count(*) as n from releases where url = ?", [url]) == [{"n": 1}]


def test_the_migration_gives_old_failures_their_schedule_and_keeps_every_value(tmp_path):
    out = tmp_path / "archive"
    shutil.copytree(FIXTURES / "v1-archive", out)
    db = out / "ledger.db"
    before = rows(db, "select * from failures order by url")
    assert beehive("verify", "--out", out).returncode == 0  # the first use migrates
    after = rows(db, "select * from failures order by url")
    assert [{name: row[name] for name in old} for row, old in zip(after, before)] == before
    by_url = {row["url"]: row for row in after}
    gone = by_url["https://www.beehive.govt.nz/release/" + SLUG]
    assert gone["first_failed"] == gone["at"] == gone["next_try"] and not gone["given_up"]
    (failed,) = [row for row in after if row["kind"] == "failed"]
    assert failed["first_failed"] == failed["at"] and failed["next_try"] is None
    report = json.loads(beehive("status", "--out", out, "--json").stdout)
    assert [row["url"] for row in report["never_captured"]] == [gone["url"]]
    assert [row["url"] for row in report["failures"]] == [failed["url"]]
    # idempotent: opening it again changes nothing
    assert beehive("status", "--out", out).returncode == 0
    assert rows(db, "select * from failures order by url") == after


def test_a_ledger_of_this_version_without_the_schedule_columns_gains_them(tmp_path):
    """A ledger made by a build of schema version 2 before this one (no failure schedule)."""
    out = tmp_path / "archive"
    shutil.copytree(FIXTURES / "v1-archive", out)
    execute(out / "ledger.db", "pragma user_version = 2")
    assert beehive("status", "--out", out).returncode == 0
    (gone,) = rows(out / "ledger.db", "select * from failures where kind = 'gone'")
    assert gone["next_try"] == gone["at"]
