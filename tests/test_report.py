"""``beehive status``, ``export`` and ``search``, end to end through the command line."""

from __future__ import annotations

import csv
import io
import json
import sqlite3

import frontmatter
import pytest

from tests.offline_archive import pristine, run, sha256


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """The crawled archive, read-only (these commands write nothing)."""
    return pristine(tmp_path_factory)


@pytest.fixture
def writable(tmp_path_factory, tmp_path):
    from tests.offline_archive import copy_archive
    return copy_archive(tmp_path_factory, tmp_path)


def releases(out):
    with sqlite3.connect(out / "ledger.db") as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("select * from releases order by published")]


# -- status -------------------------------------------------------------------------------

def test_status_text(writable):
    with sqlite3.connect(writable / "ledger.db") as db:
        db.execute("insert into failures (url, kind, reason, status, run_id, at, attempts) "
                   "values ('https://www.beehive.govt.nz/release/broken', 'failed', "
                   "'HTTP 503 after 3 retries', 503, 1, '2026-01-01T00:00:00Z', 2)")
    rows = releases(writable)
    result = run("status", "--out", writable)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("releases archived: 51")
    assert lines[1] == f"oldest: {rows[0]['date']}  {rows[0]['title']}  ({rows[0]['path']})"
    assert lines[2] == f"newest: {rows[-1]['date']}  {rows[-1]['title']}  ({rows[-1]['path']})"
    assert lines[3].startswith("last run: #1 crawl started ")
    assert "outcome ok: requested " in lines[3] and "new 51" in lines[3]
    assert lines[4] == "failed on their last attempt: 1"
    assert "https://www.beehive.govt.nz/release/broken  failed (HTTP 503): " \
           "HTTP 503 after 3 retries" in lines[5]


def test_status_json(archive):
    result = run("status", "--out", archive, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    rows = releases(archive)
    assert report["releases"] == 51
    assert report["oldest"]["title"] == rows[0]["title"]
    assert report["newest"]["published"] == rows[-1]["published"]
    assert report["last_run"]["command"] == "crawl"
    assert report["last_run"]["new"] == 51 and report["last_run"]["outcome"] == "ok"
    assert report["failures"] == []


def test_status_through_environment_variables_and_without_a_ledger(archive, tmp_path):
    result = run("status", "--json", env={"BEEHIVE_OUT": str(tmp_path),
                                          "BEEHIVE_DB": str(archive / "ledger.db")})
    assert json.loads(result.stdout)["releases"] == 51
    result = run("status", env={"BEEHIVE_OUT": str(tmp_path / "none")})
    assert result.returncode == 1 and "no ledger at" in result.stderr


# -- export -------------------------------------------------------------------------------

FIELDS = ["title", "date", "url", "ministers", "portfolios", "attachments", "published",
          "nz_date", "body", "path", "sha256"]


def test_export_jsonl_matches_the_files(archive):
    result = run("export", "--out", archive)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 51
    assert [r["published"] for r in records] == sorted(r["published"] for r in records)
    for record in records:
        assert list(record) == FIELDS
        data = (archive / record["path"]).read_bytes()
        assert sha256(data) == record["sha256"]
        post = frontmatter.loads(data.decode())
        assert post.content == record["body"]
        for key in ("title", "url", "ministers", "portfolios", "attachments"):
            assert record[key] == post.metadata.get(key, []), key
        assert record["date"] == str(post.metadata["date"])
        assert record["published"].endswith("Z") and record["published"][:10] == record["date"]


def test_export_csv(archive):
    result = run("export", "--out", archive, "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 51 and list(rows[0]) == FIELDS
    jsonl = [json.loads(line) for line in run("export", "--out", archive).stdout.splitlines()]
    for row, record in zip(rows, jsonl):
        assert json.loads(row["ministers"]) == record["ministers"]
        assert row["body"] == record["body"] and row["sha256"] == record["sha256"]


def test_export_since_and_output_file(archive, tmp_path):
    dates = sorted(row["date"] for row in releases(archive))
    since = dates[30]
    target = tmp_path / "since.jsonl"
    result = run("export", "--out", archive, "--since", since, "-o", target)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    records = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(records) == sum(1 for date in dates if date >= since)
    assert min(record["date"] for record in records) == since
    assert run("export", "--out", archive, "-o", "-", "--since", since).stdout == \
        target.read_text()
    bad = run("export", "--out", archive, "--since", "last tuesday")
    assert bad.returncode == 2 and "--since" in bad.stderr


def test_export_through_environment_variables(archive):
    result = run("export", "--format", "csv", env={"BEEHIVE_OUT": str(archive)})
    assert result.returncode == 0 and len(result.stdout.splitlines()) > 51


# -- search -------------------------------------------------------------------------------

def test_search_hits_best_first_with_limit(archive):
    row = next(row for row in releases(archive) if "Climate" in row["title"])
    result = run("search", "--out", archive, "climate legislation")
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0].split("\t")
    assert first == [row["date"], row["title"], row["path"]]

    many = run("search", "--out", archive, "minister").stdout.splitlines()
    assert len(many) > 3
    assert all(len(line.split("\t")) == 3 for line in many)
    limited = run("search", "--out", archive, "minister", "--limit", "2").stdout.splitlines()
    assert limited == many[:2]
    assert run("search", "--out", archive, "-n", "1", "minister").stdout.splitlines() == many[:1]
    assert run("search", "--out", archive, "xyzzyplugh").stdout == ""


def test_search_bad_query_is_a_usage_error(archive):
    result = run("search", "--out", archive, 'climate AND ("')
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("beehive: error: bad search query")
    assert run("search", "--out", archive, "x", "--limit", "0").returncode == 2


def test_search_through_environment_variables(archive, tmp_path):
    result = run("search", "climate", env={"BEEHIVE_OUT": str(tmp_path),
                                           "BEEHIVE_DB": str(archive / "ledger.db")})
    assert result.returncode == 0 and result.stdout.strip()
