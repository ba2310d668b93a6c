"""Revisions, scheduled conditional rechecks, --url, and reading history, end to end:
``beehive`` in a subprocess against a small replica of the site (issue 9)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.run import FAST_REACTOR, beehive, crawl, execute, rows, summary

ROOT = Path(__file__).resolve().parent.parent
PAST = "2000-01-01T00:00:00Z"


@pytest.fixture
def archive(site, tmp_path):
    out = tmp_path / "archive"
    result = crawl(site, out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert summary(result)["new"] == "6"
    site.clear_requests()
    return out


def release_row(out: Path, url: str) -> dict:
    return rows(out / "ledger.db", "select * from releases where url = ?", [url])[0]


def make_due(out: Path, *urls: str, at: str = PAST) -> None:
    """The documented way to force a recheck: next_check in the past, with plain SQL."""
    for url in urls:
        execute(out / "ledger.db", "update releases set next_check = ? where url = ?", [at, url])


def release_paths(site) -> list[str]:
    return [p for p in site.paths if p.startswith("/release/")]


def show(out, *args) -> bytes:
    """``beehive show`` output as bytes, exactly as written."""
    result = subprocess.run([sys.executable, "-m", "archive", "show", "--out", str(out), *args],
                            capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


# -- 1, 2: every version kept; only the release's record makes a revision ----------------

def test_an_edit_is_revision_2_and_show_gives_back_revision_1_byte_for_byte(site, archive):
    out, slug = archive, site.slugs[1]
    url = site.url(slug)
    path = out / release_row(out, url)["path"]
    before = path.read_bytes()
    site.edit(slug, "<p>Correction: the figure is 12, not 21.</p>")
    make_due(out, url)
    result = crawl(site, out)
    figures = summary(result)
    assert (figures["rechecked"], figures["changed"], figures["updated"]) == ("1", "1", "1")
    assert release_paths(site) == [f"/release/{slug}"]
    after = path.read_bytes()
    assert after != before and after.endswith("Correction: the figure is 12, not 21.".encode())
    revisions = rows(out / "ledger.db", "select revision, sha256, run_id from revisions "
                     "where url = ? order by revision", [url])
    assert [r["revision"] for r in revisions] == [1, 2]
    assert revisions[1]["run_id"] == 2
    # the latest version's page is stored once, in releases; the one it replaced, here
    assert [r["shared"] for r in rows(out / "ledger.db", "select region is null as shared "
                                      "from revisions where url = ? order by revision",
                                      [url])] == [0, 1]

    assert show(out, slug, "--revision", "1") == before
    assert show(out, url, "--revision", "2") == after == show(out, slug)
    (first,) = rows(out / "ledger.db", "select captured from revisions where url = ? "
                    "and revision = 1", [url])
    assert show(out, str(path), "--at", first["captured"]) == before

    history = beehive("history", "--out", out, slug)
    lines = history.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("1\t") and lines[1].startswith("2\t")
    assert lines[1].split("\t")[2] == revisions[1]["sha256"][:12]
    assert lines[1].endswith("+2 -0")  # a blank line and the correction
    entries = [json.loads(line) for line in
               beehive("history", "--out", out, slug, "--json").stdout.splitlines()]
    assert [(e["revision"], e["added"], e["removed"]) for e in entries][1] == (2, 2, 0)

    diff = beehive("diff", "--out", out, slug).stdout
    assert "+Correction: the figure is 12, not 21." in diff
    assert [line for line in diff.splitlines() if line.startswith(("+", "-"))
            and not line.startswith(("+++", "---"))] == \
        ["+", "+Correction: the figure is 12, not 21."]
    assert beehive("diff", "--out", out, slug, "2", "1").stdout.count(
        "-Correction: the figure is 12, not 21.") == 1

    # export --revisions: every version, as it was
    records = [json.loads(line) for line in
               beehive("export", "--out", out, "--revisions").stdout.splitlines()]
    assert len(records) == 7
    mine = [r for r in records if r["url"] == url]
    assert [r["revision"] for r in mine] == [1, 2]
    assert [r["sha256"] for r in mine] == [r["sha256"] for r in revisions]
    assert mine[1]["body"].endswith("Correction: the figure is 12, not 21.")
    assert not mine[0]["body"].endswith("Correction: the figure is 12, not 21.")
    csv = beehive("export", "--out", out, "--revisions", "--format", "csv").stdout
    assert csv.splitlines()[0].endswith(",revision,captured")

    # rebuild renders the latest revision; verify agrees
    assert beehive("rebuild", "--out", out).returncode == 0
    assert path.read_bytes() == after
    assert beehive("verify", "--out", out).returncode == 0


def test_a_side_column_change_makes_no_revision_and_leaves_the_file_alone(site, archive):
    out, slug = archive, site.slugs[2]
    url = site.url(slug)
    path = out / release_row(out, url)["path"]
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns
    old_etag = release_row(out, url)["etag"]
    site.edit_side_column(slug, '<div class="related"><h2>Related</h2>'
                          '<a href="/release/another-one">Another release</a></div>')
    make_due(out, url)
    figures = summary(crawl(site, out))
    assert (figures["rechecked"], figures["unchanged"], figures["changed"],
            figures["not_modified"]) == ("1", "1", "0", "0")  # a new ETag: a full answer
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime
    assert rows(out / "ledger.db", "select count(*) as n from revisions where url = ?",
                [url]) == [{"n": 1}]
    row = release_row(out, url)
    assert row["etag"] != old_etag and row["next_check"] > PAST
    # the page's new validators were kept: the next recheck is a 304, on the date alone too
    execute(out / "ledger.db", "update releases set etag = null where url = ?", [url])
    make_due(out, url)
    site.clear_requests()
    assert summary(crawl(site, out))["not_modified"] == "1"
    (_, _, headers), = [r for r in site.requests if r[1].startswith("/release/")]
    assert "If-None-Match" not in headers and headers["If-Modified-Since"] == row["last_modified"]


def test_a_file_from_an_older_converter_is_rewritten_but_is_no_new_revision(site, archive):
    """A recheck that renders differently only because the converter changed since the
    capture (no rebuild yet) brings the file up to date, as a rebuild would: no revision."""
    out, slug = archive, site.slugs[3]
    url = site.url(slug)
    row = release_row(out, url)
    path = out / row["path"]
    current = path.read_bytes()
    older = current + b"\n\nAs an older converter wrote it."
    path.write_bytes(older)
    execute(out / "ledger.db", "update releases set sha256 = ? where url = ?",
            [hashlib.sha256(older).hexdigest(), url])
    execute(out / "ledger.db", "update revisions set sha256 = ? where url = ?",
            [hashlib.sha256(older).hexdigest(), url])
    site.edit_side_column(slug, "<p>Related.</p>")  # a full answer, not a 304
    make_due(out, url)
    figures = summary(crawl(site, out))
    assert (figures["rechecked"], figures["updated"], figures["changed"]) == ("1", "1", "0")
    assert path.read_bytes() == current
    assert [r["revision"] for r in rows(out / "ledger.db", "select revision from revisions "
                                        "where url = ?", [url])] == [1]
    (last,) = rows(out / "ledger.db", "select kind, revision, sha256 from changes "
                   "order by id desc limit 1")
    assert last == {"kind": "updated", "revision": 1,
                    "sha256": hashlib.sha256(current).hexdigest()}
    assert beehive("verify", "--out", out).returncode == 0


# -- 3, 4: scheduled, conditional rechecks -------------------------------------------------

def test_due_rechecks_are_conditional_most_overdue_first_and_capped(site, archive):
    out = archive
    urls = [site.url(slug) for slug in site.slugs]
    overdue = ["2001-01-01T00:00:00Z", "2000-01-01T00:00:00Z", "2003-01-01T00:00:00Z",
               "2002-01-01T00:00:00Z"]
    for url, at in zip(urls, overdue):
        make_due(out, url, at=at)
    validators = {url: (release_row(out, url)["etag"], release_row(out, url)["last_modified"])
                  for url in urls}

    result = crawl(site, out, "--recheck-max", "3")
    figures = summary(result)
    assert (figures["rechecked"], figures["not_modified"], figures["unchanged"],
            figures["requested"]) == ("3", "3", "3", "5")
    assert site.paths[:2] == ["/robots.txt", "/rss.xml"]  # nothing new: the feed says so
    asked = release_paths(site)
    assert asked == [f"/release/{site.slugs[i]}" for i in (1, 0, 3)]  # most overdue first
    for _, path, headers in site.requests[2:]:
        etag, modified = validators[site.url(path.rsplit("/", 1)[1])]
        assert headers["If-None-Match"] == etag and headers["If-Modified-Since"] == modified
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert all(release_row(out, site.url(p.rsplit("/", 1)[1]))["next_check"] > now
               for p in asked)

    site.clear_requests()
    assert summary(crawl(site, out, "--recheck-max", "0"))["requested"] == "2"
    assert release_paths(site) == []
    site.clear_requests()
    assert summary(crawl(site, out))["rechecked"] == "1"  # the one left
    assert release_paths(site) == [f"/release/{site.slugs[2]}"]
    site.clear_requests()
    result = crawl(site, out)  # nothing new, nothing due
    assert site.paths == ["/robots.txt", "/rss.xml"]
    assert summary(result)["requested"] == "2"
    status = beehive("status", "--out", out, "--json")
    report = json.loads(status.stdout)
    assert report["due"] == 0 and report["revisions"] == 6
    make_due(out, urls[0], urls[1])
    assert beehive("status", "--out", out).stdout.startswith(
        "releases archived: 6, revisions 6, due for a recheck 2, gone from the site 0  (ledger ")


# -- 5: on demand ---------------------------------------------------------------------------

def test_url_fetches_exactly_what_it_names(site, archive):
    out, slugs = archive, site.slugs
    edited, fresh = slugs[3], "a-release-published-just-now"
    site.fault(f"/release/{slugs[4]}", "status", 4, status=500)  # and its 3 retries
    make_due(out, site.url(slugs[4]))
    crawl(site, out)  # a failure, which a normal run would try again...
    assert rows(out / "ledger.db", "select url from failures") == [{"url": site.url(slugs[4])}]
    make_due(out, site.url(slugs[0]))  # ...and a due recheck: --url asks neither
    site.edit(edited, "<p>Added later.</p>")
    site.publish(fresh, datetime.now(timezone.utc))
    site.clear_requests()
    result = crawl(site, out, "--url", site.url(edited), "--url",
                   f"{site.base_url}/release/{fresh}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert site.paths == ["/robots.txt", f"/release/{edited}", f"/release/{fresh}"]
    figures = summary(result)
    assert (figures["new"], figures["updated"], figures["rechecked"]) == ("1", "1", "0")
    revisions = rows(out / "ledger.db", "select url, max(revision) as n from revisions "
                     "group by url")
    assert {r["url"]: r["n"] for r in revisions}[site.url(edited)] == 2
    assert json.loads(beehive("status", "--out", out, "--json").stdout)["last_run"][
        "command"] == "crawl --url"

    # the setting is the same thing through Scrapy's own command
    site.clear_requests()
    scrapy = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "releases", "-s", f"BEEHIVE_OUT={out}",
         "-s", f"BEEHIVE_BASE_URL={site.base_url}", "-s", "DOWNLOAD_DELAY=0",
         "-s", FAST_REACTOR, "-s", f"BEEHIVE_URLS={site.url(fresh)}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert scrapy.returncode == 0, scrapy.stderr[-2000:]
    assert site.paths == ["/robots.txt", f"/release/{fresh}"]
    # a --url run walks no listing, yet the next run does not take it for a walk cut short
    execute(out / "ledger.db", "update releases set next_check = '2999-01-01T00:00:00Z'")
    execute(out / "ledger.db", "delete from failures")
    site.clear_requests()
    crawl(site, out)
    assert site.paths == ["/robots.txt", "/rss.xml"]  # the feed: the walk was not cut short


def test_crawl_help_documents_the_new_options():
    text = beehive("crawl", "--help").stdout
    assert "--url URL" in text and "--recheck-max" in text and "conditional" in text
    overview = beehive("--help").stdout
    assert all(command in overview for command in ("history", "show", "diff", "changes"))


@pytest.mark.parametrize("args, message", [
    (["--url", "ftp://www.beehive.govt.nz/release/x"], "not a release URL"),
    (["--url", "https://www.beehive.govt.nz/speech/x"], "not a release URL"),
    (["--url", "https://evil.example/release/x"], "not on"),
    (["--recheck-max", "-1"], "--recheck-max"),
    (["-s", "BEEHIVE_RECHECK_INTERVALS=2d:3h"], "the last tier"),
])
def test_crawl_usage_errors(tmp_path, args, message):
    result = beehive("crawl", "--out", tmp_path / "a", "--base-url", "http://127.0.0.1:9", *args)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "a").exists()


# -- 8: gone is not for ever ------------------------------------------------------------------

def test_a_gone_release_is_rechecked_and_comes_back(site, archive):
    out, slug = archive, site.slugs[1]
    url = site.url(slug)
    site.fault(f"/release/{slug}", "status", 2, status=404)
    make_due(out, url)
    assert summary(crawl(site, out))["gone"] == "1"
    row = release_row(out, url)
    assert row["gone"] and row["next_check"] > PAST and (out / row["path"]).is_file()
    make_due(out, url)
    assert summary(crawl(site, out))["gone"] == "1"  # still gone: logged once only
    kinds = [r["kind"] for r in rows(out / "ledger.db", "select kind from changes where url = ? "
                                     "order by id", [url])]
    assert kinds == ["new", "gone"]

    site.edit(slug, "<p>Restored, with a correction.</p>")
    make_due(out, url)
    figures = summary(crawl(site, out))
    assert (figures["rechecked"], figures["updated"], figures["gone"]) == ("1", "1", "0")
    row = release_row(out, url)
    assert row["gone"] is None
    assert rows(out / "ledger.db", "select * from failures where url = ?", [url]) == []
    assert [r["revision"] for r in rows(out / "ledger.db", "select revision from revisions "
                                        "where url = ?", [url])] == [1, 2]
    assert [r["kind"] for r in rows(out / "ledger.db", "select kind from changes where url = ? "
                                    "order by id", [url])] == ["new", "gone", "updated"]


# -- 6: reading history: errors ---------------------------------------------------------------

HISTORY_ERRORS = [
    (["show", "no-such-release"], 1, "no release 'no-such-release'"),
    (["show", "SLUG", "--revision", "9"], 1, "no revision 9"),
    (["show", "SLUG", "--at", "1990-01-01"], 1, "not yet captured"),
    (["show", "SLUG", "--at", "soon"], 2, "not a timestamp"),
    (["show", "SLUG", "--revision", "1", "--at", "2020-01-01"], 2, "not both"),
    (["history", "no-such-release"], 1, "no release"),
    (["diff", "SLUG", "0"], 2, "0"),
    (["changes", "--since", "yesterday"], 2, "not a timestamp"),
]


def test_history_commands_say_what_is_wrong_in_one_line(site, archive):
    for args, status, message in HISTORY_ERRORS:
        args = [site.slugs[0] if a == "SLUG" else a for a in args]
        result = beehive(*args, "--out", archive)
        assert result.returncode == status, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, args
        assert len([line for line in result.stderr.splitlines() if line.strip()]) <= 3, args


# -- the replica answers conditional requests as a web server does --------------------------

def test_the_replica_sends_validators_and_answers_conditionals(site):
    from archive.parse import parse_release
    from tests.test_replica import fetch

    slug = site.slugs[0]
    address = f"{site.base_url}/release/{slug}"
    status, headers, body = fetch(address)
    etag, modified = headers["ETag"], headers["Last-Modified"]
    assert status == 200 and etag and modified
    assert fetch(address, {"If-Modified-Since": modified})[0] == 304
    status, headers304, body304 = fetch(address, {"If-None-Match": etag,
                                                  "If-Modified-Since": modified})
    assert (status, body304, headers304["ETag"]) == (304, b"", etag)
    # If-None-Match decides when sent, even with a matching date
    assert fetch(address, {"If-None-Match": '"other"', "If-Modified-Since": modified})[0] == 200

    site.edit_side_column(slug, '<div class="related"><a href="/release/x">Related</a></div>')
    status, headers, changed = fetch(address, {"If-None-Match": etag})
    assert status == 200 and headers["ETag"] != etag and headers["Last-Modified"] != modified
    assert fetch(address, {"If-Modified-Since": modified})[0] == 200
    assert b"Related</a>" in changed
    # a side column is no part of the release's record
    record = dataclasses.replace(parse_release(body), region_html="")
    assert dataclasses.replace(parse_release(changed), region_html="") == record
    assert parse_release(changed).region_html != parse_release(body).region_html
