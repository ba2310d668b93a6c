"""Scrapy's feed exports: a crawl's -o/-O write one record per release the run archived or
updated, and nothing else; `beehive crawl` and `scrapy crawl releases` alike."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.offline_archive import run
from tests.run import FAST_REACTOR, crawl, summary

ROOT = Path(__file__).resolve().parent.parent
FIELDS = {"url", "title", "date", "published", "nz_date", "ministers", "portfolios",
          "attachments", "body", "path", "sha256", "outcome"}


def exported(out: Path) -> dict[str, dict]:
    """`beehive export`'s records, by path: what the feed's records must agree with."""
    result = run("export", "--out", out)
    assert result.returncode == 0, result.stderr
    return {record["path"]: record for record in map(json.loads, result.stdout.splitlines())}


def test_first_crawl_exports_every_release_it_archived(replica, tmp_path):
    out = tmp_path / "a"
    result = crawl(replica, out, "-O", tmp_path / "new.jsonl")
    assert result.returncode == 0, result.stderr[-2000:]
    text = (tmp_path / "new.jsonl").read_text(encoding="utf-8")
    assert "whānau" in text  # UTF-8, not \u escapes
    records = [json.loads(line) for line in text.splitlines()]
    assert len(records) == len(replica.slugs) == int(summary(result)["new"])
    assert all(set(record) == FIELDS for record in records)
    assert {record["outcome"] for record in records} == {"new"}
    archive = exported(out)
    for record in records:
        assert {**record, "outcome": None} == {**archive[record["path"]], "outcome": None}
        assert isinstance(record["ministers"], list)
    assert "Dropped" not in result.stderr
    assert not (out / "warc").exists()  # WARC captures are off unless asked for

    # -o appends: the next run adds its one new release to the same file.
    replica.publish("one-more-release", replica.published(replica.slugs[0]).replace(year=2031))
    again = crawl(replica, out, "-o", tmp_path / "new.jsonl")
    assert again.returncode == 0, again.stderr[-2000:]
    lines = (tmp_path / "new.jsonl").read_text().splitlines()
    assert len(lines) == len(records) + 1
    assert json.loads(lines[-1])["url"] == replica.url("one-more-release")


def test_later_crawl_exports_only_new_and_updated(replica, tmp_path):
    out = tmp_path / "a"
    assert crawl(replica, out, "-s", "LOG_LEVEL=WARNING").returncode == 0
    edited, failing = replica.slugs[3], replica.slugs[7]
    replica.edit(edited, "<p>A correction was made to this release.</p>")
    new_url = replica.publish("a-brand-new-release", replica.published(replica.slugs[0]).replace(year=2030))
    replica.fault(f"/release/{failing}", "status", times=10, status=500)
    # The same export through Scrapy's own command, into CSV (appending with -o).
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "releases", "-o", str(tmp_path / "run.csv"),
         "-s", f"BEEHIVE_BASE_URL={replica.base_url}", "-s", f"BEEHIVE_OUT={out}",
         "-s", "BEEHIVE_FULL=True", "-s", "DOWNLOAD_DELAY=0", "-s", "RETRY_TIMES=1",
         "-s", "BEEHIVE_RETRY_BACKOFF=0.01", "-s", FAST_REACTOR],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    figures = summary(result)
    assert (figures["new"], figures["updated"], figures["failed"]) == ("1", "1", "1")
    assert int(figures["unchanged"]) == len(replica.slugs) - 3
    with open(tmp_path / "run.csv", newline="", encoding="utf-8") as stream:
        records = {row["url"]: row for row in csv.DictReader(stream)}
    assert set(records) == {new_url, replica.url(edited)}
    assert records[new_url]["outcome"] == "new"
    assert records[replica.url(edited)]["outcome"] == "updated"
    assert "A correction was made" in records[replica.url(edited)]["body"]
    assert records[replica.url(edited)]["sha256"] == exported(out)[records[replica.url(edited)]["path"]]["sha256"]
    assert "Dropped" not in result.stderr


def test_bad_feed_format_is_a_usage_error(replica, tmp_path):
    result = crawl(replica, tmp_path / "a", "-o", tmp_path / "new.nope")
    assert result.returncode == 2
    assert "Unrecognized output format 'nope'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "a").exists() and replica.requests == []
