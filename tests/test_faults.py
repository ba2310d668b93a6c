"""Unattended runs: what the site or the machine does wrong, proved end to end through
``beehive crawl`` against the replica with faults injected per URL."""

from __future__ import annotations

import hashlib
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import frontmatter
import pytest

from tests.replica import CORPUS_DIR
from tests.run import FAST_REACTOR, beehive, crawl, rows, summary

EXPECTED = CORPUS_DIR / "expected"
PRODUCTION = "https://www.beehive.govt.nz"


def failures(out: Path) -> dict[str, dict]:
    return {r["url"]: r for r in rows(out / "ledger.db", "select * from failures")}


def expected_file(replica, slug: str) -> bytes:
    (path,) = EXPECTED.rglob(f"????-??-??-{slug}.md")
    return path.read_bytes()


def archived_file(out: Path, slug: str) -> Path:
    (path,) = (out / "releases").rglob(f"????-??-??-{slug}.md")
    return path


def page_with(region: str, canonical: str | None = None, title: str | None = None) -> str:
    head = f'<link rel="canonical" href="{canonical}">' if canonical else ""
    if title is not None:
        start = region.index('<h1 class="article__title">')
        end = region.index("</h1>", start)
        region = region[:start] + f'<h1 class="article__title">{title}' + region[end:]
    return f"<!DOCTYPE html><html><head>{head}</head><body>{region}</body></html>"


def check_consistent(out: Path) -> list[dict]:
    """What `beehive verify` checks: every row's file with its hash, no stray or temp file."""
    ledger = rows(out / "ledger.db", "select url, path, sha256 from releases")
    for row in ledger:
        data = (out / row["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row["sha256"], row["path"]
    on_disk = {p.relative_to(out).as_posix() for p in (out / "releases").rglob("*")
               if p.is_file()}
    assert on_disk == {row["path"] for row in ledger}
    assert len({row["url"] for row in ledger}) == len(ledger)
    return ledger


# -- 1. server faults ------------------------------------------------------------------------

@pytest.mark.parametrize("fault", [
    {"kind": "status", "status": 500},
    {"kind": "status", "status": 503},
    {"kind": "cut"},
    {"kind": "timeout", "seconds": 5},
])
def test_transient_faults_are_retried_and_the_release_captured_whole(replica, tmp_path, fault):
    slug = replica.slugs[3]
    replica.fault(f"/release/{slug}", times=2, **fault)
    out = tmp_path / "archive"
    result = crawl(replica, out, "-s", "DOWNLOAD_TIMEOUT=1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert replica.paths.count(f"/release/{slug}") == 3
    assert archived_file(out, slug).read_bytes() == expected_file(replica, slug)
    assert failures(out) == {}


def test_429_waits_as_long_as_retry_after_says(replica, tmp_path):
    slug = replica.slugs[0]
    replica.fault(f"/release/{slug}", times=1, kind="status", status=429, retry_after=2)
    result = crawl(replica, tmp_path / "a", "-s", "BEEHIVE_RETRY_BACKOFF=0.05")
    assert result.returncode == 0
    assert replica.paths.count(f"/release/{slug}") == 2
    assert float(summary(result)["elapsed"].rstrip("s")) >= 2.0


def test_backoff_grows_between_retries(replica, tmp_path):
    slug = replica.slugs[0]
    replica.fault(f"/release/{slug}", times=3, kind="status", status=503)
    result = crawl(replica, tmp_path / "a", "-s", "BEEHIVE_RETRY_BACKOFF=0.3")
    assert result.returncode == 0
    assert float(summary(result)["elapsed"].rstrip("s")) >= 0.3 + 0.6 + 1.2


def test_a_release_that_keeps_failing_is_recorded_and_tried_again_next_run(replica, tmp_path):
    slug = replica.slugs[7]
    url = f"{PRODUCTION}/release/{slug}"
    replica.fault(f"/release/{slug}", times=4, kind="status", status=500)  # 1 try + 3 retries
    out = tmp_path / "archive"
    first = crawl(replica, out)
    assert first.returncode == 1
    figures = summary(first)
    assert (figures["outcome"], figures["new"], figures["failed"]) == ("failed", "50", "1")
    failure = failures(out)[url]
    assert failure["kind"] == "failed" and failure["status"] == 500
    assert "500" in failure["reason"]
    assert not list((out / "releases").rglob(f"*-{slug}.md"))

    replica.clear_requests()
    second = crawl(replica, out)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"/release/{slug}" in replica.paths
    assert summary(second)["new"] == "1"
    assert failures(out) == {}
    assert archived_file(out, slug).read_bytes() == expected_file(replica, slug)


def test_a_failing_listing_page_fails_the_run_and_the_next_run_walks_on(replica, tmp_path):
    replica.fault("/releases?page=2", times=4, kind="status", status=503)
    out = tmp_path / "archive"
    first = crawl(replica, out)
    assert first.returncode == 1
    assert summary(first)["outcome"] == "failed"
    # The search walks of every government still found the releases beyond page 2.
    assert int(summary(first)["new"]) == 51
    replica.clear_requests()
    second = crawl(replica, out)
    assert second.returncode == 0
    # The listing walk resumes where it stopped (page 2) and goes on to its end.
    assert [p for p in replica.paths if p.startswith("/releases")] == \
        ["/releases?page=0", "/releases?page=2", "/releases?page=3", "/releases?page=4",
         "/releases?page=5"]
    assert len(check_consistent(out)) == 51


# -- 2. bot protection -------------------------------------------------------------------------

@pytest.mark.parametrize("status", [200, 403])
def test_a_block_page_is_never_a_release(replica, tmp_path, status):
    slug = replica.slugs[4]
    replica.fault(f"/release/{slug}", kind="blocked", status=status)
    out = tmp_path / "archive"
    result = crawl(replica, out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert replica.paths.count(f"/release/{slug}") == 2  # backed off, then fetched again
    assert archived_file(out, slug).read_bytes() == expected_file(replica, slug)
    assert not list((out / "releases").rglob("0001-01-01-*"))


def test_the_reference_archive_stored_block_pages_and_we_refuse_them():
    """marcus-crane/beehive-markdown holds these two responses as releases dated 0001-01-01."""
    from archive.parse import BlockedPage, parse_release

    for page in sorted((CORPUS_DIR / "blocked").glob("*.html")):
        with pytest.raises(BlockedPage):
            parse_release(page.read_bytes(), f"{PRODUCTION}/release/{page.stem[11:]}")


def test_a_block_never_overwrites_a_good_capture(replica, tmp_path):
    out = tmp_path / "archive"
    assert crawl(replica, out).returncode == 0
    slug = replica.slugs[1]
    before = archived_file(out, slug).read_bytes()
    replica.fault(f"/release/{slug}", times=10, kind="blocked")
    replica.clear_requests()
    result = crawl(replica, out, "--full", "-s", "BEEHIVE_MAX_BLOCKS=2")
    assert result.returncode == 1  # one release stays blocked: recorded, and the run goes on
    assert replica.paths.count(f"/release/{slug}") == 2
    assert archived_file(out, slug).read_bytes() == before
    assert failures(out)[f"{PRODUCTION}/release/{slug}"]["kind"] == "blocked"
    check_consistent(out)


def test_a_site_wide_block_stops_the_run_early_and_says_so(replica, tmp_path):
    replica.block_all()
    out = tmp_path / "archive"
    result = crawl(replica, out)
    assert result.returncode == 3
    figures = summary(result)
    assert figures["outcome"] == "blocked" and figures["new"] == "0"
    assert int(figures["requested"]) <= 1 + 2  # robots.txt, the first listing page twice
    assert "blocked by the site's bot protection" in result.stderr
    assert not (out / "releases").exists() or not list((out / "releases").rglob("*.md"))
    (run,) = rows(out / "ledger.db", "select outcome, walk_finished, reason from runs")
    assert run["outcome"] == "blocked" and run["walk_finished"] == 0
    assert "listing page 0 stays blocked" in run["reason"]


@pytest.mark.parametrize("max_blocks", [3, 5])
def test_how_many_blocked_urls_end_a_run_is_a_setting(replica, tmp_path, max_blocks):
    for slug in replica.slugs[:10]:  # the first listing page's releases, all blocked
        replica.fault(f"/release/{slug}", times=10, kind="blocked", status=403)
    result = crawl(replica, tmp_path / "a", "-s", f"BEEHIVE_MAX_BLOCKS={max_blocks}")
    assert result.returncode == 3
    blocked = [p for p in replica.paths if p.startswith("/release/")]
    # Each URL but the last is tried twice (once more after its back-off); the last one's
    # first block makes max_blocks different URLs in a row, and the run stops there.
    assert len(blocked) == 2 * (max_blocks - 1) + 1
    assert len(set(blocked)) == max_blocks
    assert "/releases?page=1" not in replica.paths


def test_after_a_block_the_next_run_catches_up(replica, tmp_path):
    out = tmp_path / "archive"
    replica.fault("/releases?page=3", times=10, kind="blocked")
    assert crawl(replica, out).returncode == 3
    replica.clear_faults()
    result = crawl(replica, out)
    assert result.returncode == 0
    assert len(check_consistent(out)) == 51


# -- 3. gone and moved --------------------------------------------------------------------------

def test_a_404_marks_a_listed_release_gone_and_keeps_its_file(replica, tmp_path):
    out = tmp_path / "archive"
    assert crawl(replica, out).returncode == 0
    slug = replica.slugs[2]
    replica.fault(f"/release/{slug}", times=1, kind="status", status=404)
    result = crawl(replica, out, "--full")
    assert result.returncode == 0
    assert summary(result)["gone"] == "1"
    url = f"{PRODUCTION}/release/{slug}"
    assert failures(out)[url]["kind"] == "gone"
    (row,) = rows(out / "ledger.db", "select gone from releases where url = ?", [url])
    assert row["gone"]
    assert archived_file(out, slug).read_bytes() == expected_file(replica, slug)


def test_a_renamed_release_is_keyed_by_its_new_url_and_archived_once(replica, tmp_path):
    out = tmp_path / "archive"
    assert crawl(replica, out).returncode == 0
    old = replica.slugs[0]
    replica.rename(old, f"{old}-renamed")
    result = crawl(replica, out, "--full")
    assert result.returncode == 0, result.stderr[-3000:]
    urls = {r["url"] for r in check_consistent(out)}
    assert f"{PRODUCTION}/release/{old}-renamed" in urls
    assert f"{PRODUCTION}/release/{old}" not in urls
    assert len(urls) == 51
    aliases = rows(out / "ledger.db", "select * from aliases")
    assert {"url": f"{PRODUCTION}/release/{old}",
            "canonical": f"{PRODUCTION}/release/{old}-renamed"} in aliases


# -- 4. pages that are not releases --------------------------------------------------------------

@pytest.mark.parametrize("breakage", ["not a release", "no date", "no title", "no body"])
def test_a_page_that_is_not_a_release_is_a_recorded_parse_error(replica, tmp_path, breakage):
    slug = replica.slugs[6]
    region = replica.region(slug)
    html = {
        "not a release": "<html><body><h1>Search</h1><p>No results.</p></body></html>",
        "no date": page_with(region.replace('<time datetime="', '<time data-x="')),
        "no title": page_with(region.replace("<h1", "<div").replace("</h1>", "</div>")),
        "no body": page_with(region.replace("field--name-body", "field--name-other")),
    }[breakage]
    reason = "not a release page"
    replica.set_release_html(slug, html)
    out = tmp_path / "archive"
    result = crawl(replica, out)
    assert result.returncode == 1
    failure = failures(out)[f"{PRODUCTION}/release/{slug}"]
    assert reason in failure["reason"]
    assert not list((out / "releases").rglob(f"*-{slug}.md"))
    assert len(check_consistent(out)) == 50


# -- 5. crash safety -------------------------------------------------------------------------------

def test_sigkill_at_random_points_loses_and_duplicates_nothing(replica, tmp_path):
    replica.synthesize(250)
    out = tmp_path / "archive"
    command = [sys.executable, "-m", "archive", "crawl", "--base-url", replica.base_url,
               "--out", str(out), "--delay", "0", "-s", FAST_REACTOR]
    chance = random.Random(20261127)
    for _ in range(5):
        # Kill mid-crawl: after a random number of this run's requests, so between a file
        # write and its ledger commit as often as anywhere else.
        replica.clear_requests()
        target = chance.randint(3, 90)
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while len(replica.paths) < target and process.poll() is None:
            time.sleep(0.002)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert process.returncode == -signal.SIGKILL
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ledger = check_consistent(out)
    assert len(ledger) == 301
    assert not list(out.rglob(".tmp-*"))
    verified = beehive("verify", "--out", out)
    assert verified.returncode == 0, verified.stdout


# -- 6. one run at a time ----------------------------------------------------------------------------

def test_a_second_run_exits_at_once_and_a_killed_runs_lock_is_not_stale(replica, tmp_path):
    out = tmp_path / "archive"
    command = [sys.executable, "-m", "archive", "crawl", "--base-url", replica.base_url,
               "--out", str(out), "--delay", "0.5", "-s", FAST_REACTOR]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not replica.paths and time.monotonic() < deadline:
            time.sleep(0.05)
        started = time.monotonic()
        second = crawl(replica, out)
        assert time.monotonic() - started < 10
        assert second.returncode == 4
        assert "another beehive run is using" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    third = crawl(replica, out)
    assert third.returncode == 0, third.stderr[-3000:]
    assert len(check_consistent(out)) == 51


# -- 7. hostile input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("slug", [
    "..%2F..%2F..%2Fescaped",
    "%2E%2E%2F%2E%2E%2Fescaped",
    "a%00b",
    "x" * 5000,
    "..",
])
def test_a_hostile_canonical_url_cannot_write_outside_releases(replica, tmp_path, slug):
    target = replica.slugs[0]
    replica.set_release_html(target, page_with(replica.region(target),
                                               canonical=f"{PRODUCTION}/release/{slug}"))
    out = tmp_path / "work" / "archive"
    result = crawl(replica, out)
    assert "Traceback" not in result.stderr
    written = [p for p in (tmp_path / "work").rglob("*") if p.is_file()]
    for path in written:
        assert path.parent == out or (out / "releases") in path.parents, path
    for path in (out / "releases").rglob("*.md"):
        assert len(path.name) < 255
    check_consistent(out)


def test_hostile_listing_links_stay_on_the_site(replica, tmp_path):
    for href in ("/release/..%2F..%2Fetc", "/release/%2e%2e/%2e%2e/passwd",
                 "//evil.example/release/x", "javascript:alert(1)"):
        replica.add_listing_link(href)
    out = tmp_path / "archive"
    result = crawl(replica, out)
    assert "Traceback" not in result.stderr
    assert not any("evil" in p for p in replica.paths)
    check_consistent(out)


@pytest.mark.parametrize("title", [
    'He said "no": #1 ranked',
    "Line one\nline two\tand a tab",
    "Emoji 🐝 and ✓ marks",
    "Lone surrogate &#xD800; here",
    "yes",
    "- a dash: then a colon",
])
def test_any_title_gives_front_matter_that_parses_back(replica, tmp_path, title):
    from archive.parse import parse_release

    slug = replica.slugs[0]
    page = page_with(replica.region(slug), title=title)
    replica.set_release_html(slug, page)
    out = tmp_path / "archive"
    result = crawl(replica, out)
    assert result.returncode == 0, result.stderr[-3000:]
    parsed = parse_release(page.encode(), f"{PRODUCTION}/release/{slug}")
    document = frontmatter.load(archived_file(out, slug))
    assert document["title"] == parsed.title
    assert document["title"].strip()


@pytest.mark.parametrize("kind, reason", [("huge", "Cancel"), ("binary", "not an HTML page")])
def test_huge_and_binary_responses_are_refused(replica, tmp_path, kind, reason):
    slug = replica.slugs[0]
    replica.fault(f"/release/{slug}", times=5, kind=kind)
    out = tmp_path / "archive"
    result = crawl(replica, out)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert reason in failures(out)[f"{PRODUCTION}/release/{slug}"]["reason"]
    assert len(check_consistent(out)) == 50


def test_a_file_that_cannot_be_written_is_a_recorded_failure(replica, tmp_path):
    """The disk, not the site: a release whose folder cannot be made is failed, not lost."""
    out = tmp_path / "archive"
    (out / "releases" / "2026").mkdir(parents=True)
    (out / "releases" / "2026" / "01").write_text("a file where a folder should be")
    result = crawl(replica, out)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    slug = "accommodation-support-recent-severe-weather-events"
    assert "could not write" in failures(out)[f"{PRODUCTION}/release/{slug}"]["reason"]
    assert summary(result)["new"] == "50"
