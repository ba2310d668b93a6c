"""The change feed (``beehive changes``, issue 12) and the upgrade of an archive made by the
previous release (issue 9, requirement 7), end to end through the command line."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path


from archive.ledger import SCHEMA_VERSION
from tests.run import beehive, crawl, execute, rows, summary

FIXTURES = Path(__file__).resolve().parent / "fixtures"


class Reader:
    """A downstream program: keeps the last 'at' it saw, asks for what came after."""

    def __init__(self, out: Path):
        self.out, self.last, self.seen = out, None, []

    def sync(self) -> list[dict]:
        args = ["changes", "--out", self.out, "--json"]
        if self.last:
            args += ["--since", self.last]
        result = beehive(*args)
        assert result.returncode == 0, result.stderr
        got = [json.loads(line) for line in result.stdout.splitlines()]
        if got:
            self.last = got[-1]["at"]
        self.seen += got
        return got


def test_a_reader_that_syncs_between_runs_gets_every_change_once_in_order(site, tmp_path):
    out = tmp_path / "archive"
    reader = Reader(out)
    slugs = site.slugs

    assert summary(crawl(site, out))["new"] == "6"
    first = reader.sync()
    assert [c["kind"] for c in first] == ["new"] * 6
    assert {c["url"] for c in first} == {site.url(s) for s in slugs}
    assert all(c["revision"] == 1 and c["sha256"] and c["path"].startswith("releases/")
               for c in first)
    assert reader.sync() == []  # nothing since: nothing twice

    # run 2: two new releases, an edit (a due recheck), one gone
    site.publish("fresh-one", datetime.now(timezone.utc))
    site.publish("fresh-two", datetime.now(timezone.utc))
    site.edit(slugs[0], "<p>Corrected.</p>")
    site.fault(f"/release/{slugs[1]}", "status", 1, status=410)
    execute(out / "ledger.db", "update releases set next_check = '2000-01-01T00:00:00Z' "
            "where url in (?, ?)", [site.url(slugs[0]), site.url(slugs[1])])
    crawl(site, out)
    second = reader.sync()
    assert sorted((c["kind"], c["url"].rsplit("/", 1)[1], c["revision"]) for c in second) == [
        ("gone", slugs[1], 1), ("new", "fresh-one", 1), ("new", "fresh-two", 1),
        ("updated", slugs[0], 2)]
    # "since run 1": the changes made by later runs, here run 2; a timestamp is exclusive
    since_run = beehive("changes", "--out", out, "--since", "1").stdout.splitlines()
    assert [line.split("\t")[0] for line in since_run] == [c["at"] for c in second]
    at, kind, revision, path, sha256, url = since_run[-1].split("\t")
    assert (at, kind, revision, path, sha256, url) == (
        second[-1]["at"], second[-1]["kind"], f"r{second[-1]['revision']}", second[-1]["path"],
        second[-1]["sha256"], second[-1]["url"])
    assert beehive("changes", "--out", out, "--since", "2").stdout == ""
    assert beehive("changes", "--out", out, "--since", at).stdout == ""
    assert len(beehive("changes", "--out", out, "--since", "0").stdout.splitlines()) == 10
    assert len(beehive("changes", "--out", out, "--since", first[-1]["at"][:10]).stdout
               .splitlines()) == 10  # a date: from its midnight (UTC)

    # run 3 and 4: a renamed slug, archived anew by the listing, merged by --full: moved
    old_path = rows(out / "ledger.db", "select path from releases where url = ?",
                    [site.url(slugs[2])])[0]["path"]
    old_file = (out / old_path).read_bytes()
    site.rename(slugs[2], slugs[2] + "-renamed")
    crawl(site, out)
    crawl(site, out, "--full")
    third = reader.sync()
    moved = [c for c in third if c["kind"] == "moved"]
    assert len(moved) == 1 and moved[0]["old_path"] == old_path
    assert moved[0]["path"].endswith(slugs[2] + "-renamed.md")
    assert moved[0]["url"] == site.url(slugs[2] + "-renamed")
    assert not (out / old_path).exists() and (out / moved[0]["path"]).is_file()
    # the history came along: revision 1 is the old URL's capture
    history = [json.loads(line) for line in beehive(
        "history", "--out", out, slugs[2] + "-renamed", "--json").stdout.splitlines()]
    assert [h["url"] for h in history][0] == site.url(slugs[2])
    assert len(history) >= 2
    shown = subprocess.run([sys.executable, "-m", "archive", "show", "--out", str(out),
                            slugs[2] + "-renamed", "--revision", "1"], capture_output=True)
    assert shown.stdout == old_file

    # the whole log, read at once, is what the reader got bit by bit: nothing missed, twice
    everything = [json.loads(line) for line in
                  beehive("changes", "--out", out, "--json").stdout.splitlines()]
    assert everything == reader.seen
    ats = [c["at"] for c in everything]
    assert ats == sorted(ats) and len(set(ats)) == len(ats)
    assert beehive("verify", "--out", out).returncode == 0


def test_changes_ends_quietly_when_its_reader_goes_away(tmp_path):
    out = tmp_path / "archive"
    shutil.copytree(FIXTURES / "v0-archive", out)
    assert beehive("status", "--out", out).returncode == 0  # migrated
    with sqlite3.connect(out / "ledger.db") as conn:  # a long log: more than a pipe holds
        conn.execute("""
            with recursive n(i) as (select 1 union all select i + 1 from n where i < 20000)
            insert into changes (at, kind, url, path, sha256, revision)
            select printf('2030-01-01T00:00:00.%06dZ', i), 'updated',
                   'https://www.beehive.govt.nz/release/x', 'releases/x.md', 'ab', 1 from n""")
    pipe = subprocess.Popen([sys.executable, "-m", "archive", "changes", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = pipe.stdout.readline()
    pipe.stdout.close()
    error = pipe.stderr.read().decode()
    assert pipe.wait(timeout=60) == -signal.SIGPIPE  # as Unix tools end: quietly
    assert first.count(b"\t") == 5 and error == ""


# -- an archive made by the previous release --------------------------------------------------

V0_TABLES = {
    "releases": "url", "failures": "url", "aliases": "url", "runs": "id",
}


V1_TABLES = {
    **V0_TABLES, "revisions": "url, revision", "changes": "id", "walks": "name",
}


def snapshot(db: Path, tables: dict = V0_TABLES) -> dict:
    """Every row of these tables, as the version that made the ledger had them (its
    columns only)."""
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return {table: [dict(r) for r in conn.execute(f"select * from {table} order by {key}")]
                for table, key in tables.items()}


def assert_kept(before: dict, after: dict) -> None:
    """Every row and every value the old ledger held is still there, unchanged."""
    for table, old_rows in before.items():
        assert [{name: row[name] for name in old} for row, old in zip(after[table], old_rows)] \
            == old_rows, table
        assert len(after[table]) == len(old_rows), table


def test_an_archive_made_by_the_previous_release_migrates_with_nothing_lost(tmp_path):
    out = tmp_path / "archive"
    shutil.copytree(FIXTURES / "v0-archive", out)
    before = snapshot(out / "ledger.db")
    files = {p: p.read_bytes() for p in (out / "releases").rglob("*.md")}
    assert before["releases"] and before["failures"] and before["aliases"] and before["runs"]

    verify = beehive("verify", "--out", out)  # the first use migrates
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert_kept(before, snapshot(out / "ledger.db"))
    assert {p: p.read_bytes() for p in (out / "releases").rglob("*.md")} == files

    db = out / "ledger.db"
    assert rows(db, "pragma user_version") == [{"user_version": SCHEMA_VERSION}]
    releases = rows(db, "select url, sha256, path, next_check, first_seen from releases")
    revisions = rows(db, "select url, revision, sha256 from revisions order by url")
    assert sorted((r["url"], 1, r["sha256"]) for r in releases) == \
        [(r["url"], r["revision"], r["sha256"]) for r in revisions]
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert all(r["next_check"] and r["next_check"] > now for r in releases)
    assert len({r["next_check"] for r in releases}) == len(releases)  # spread, not one moment
    log = rows(db, "select at, kind, url, path, run_id from changes order by id")
    assert sorted(c["url"] for c in log) == sorted(r["url"] for r in releases)
    assert {c["kind"] for c in log} == {"new"}
    ats = [c["at"] for c in log]
    assert ats == sorted(ats) and len(set(ats)) == len(ats)
    assert all(c["run_id"] in (1, 2) for c in log)

    # revision 1 of every release is its file, byte for byte
    for release in releases:
        shown = subprocess.run([sys.executable, "-m", "archive", "show", "--out", str(out),
                                release["url"], "--revision", "1"], capture_output=True)
        assert shown.stdout == (out / release["path"]).read_bytes(), release["url"]
    status = json.loads(beehive("status", "--out", out, "--json").stdout)
    assert status["revisions"] == len(releases) and status["due"] == 0
    assert status["gone"] == 1


def test_an_archive_made_by_schema_version_1_migrates_with_nothing_lost(tmp_path):
    """tests/fixtures/v1-archive: made by the code of schema version 1 (see its README)."""
    out = tmp_path / "archive"
    shutil.copytree(FIXTURES / "v1-archive", out)
    db = out / "ledger.db"
    assert rows(db, "pragma user_version") == [{"user_version": 1}]
    before = snapshot(db, V1_TABLES)
    files = {p: p.read_bytes() for p in (out / "releases").rglob("*.md")}
    assert all(before.values()), {table: len(r) for table, r in before.items()}

    verify = beehive("verify", "--out", out)  # the first use migrates
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert rows(db, "pragma user_version") == [{"user_version": SCHEMA_VERSION}]
    assert_kept(before, snapshot(db, V1_TABLES))
    assert {p: p.read_bytes() for p in (out / "releases").rglob("*.md")} == files
    status = json.loads(beehive("status", "--out", out, "--json").stdout)
    assert status["releases"] == len(before["releases"]) == 9
    assert status["revisions"] == len(before["revisions"]) == 10
