"""``beehive rebuild``, end to end through the command line, on an archive crawled from the
replica."""

from __future__ import annotations

import os
import pty
import re
import shutil
import sqlite3
import zlib

import pytest

from archive.archiver import Archiver, Rendered
from archive.ledger import Ledger
from tests.offline_archive import copy_archive, mtimes, pristine, run, sha256, tree

SUMMARY = re.compile(r"beehive summary: (.*)")


def figures(result) -> dict:
    match = SUMMARY.search(result.stderr)
    assert match, result.stderr[-3000:]
    return dict(pair.split("=", 1) for pair in match.group(1).split())


@pytest.fixture
def archive(tmp_path_factory, tmp_path):
    return copy_archive(tmp_path_factory, tmp_path)


def ledger_rows(out):
    with sqlite3.connect(out / "ledger.db") as db:
        return db.execute("select url, path, sha256, body, title from releases "
                          "order by url").fetchall()


def test_rebuild_right_after_a_crawl_changes_nothing(archive):
    before, times, rows = tree(archive), mtimes(archive), ledger_rows(archive)
    result = run("rebuild", "--out", archive)
    assert result.returncode == 0, result.stderr
    assert figures(result) | {"elapsed": ""} == {
        "command": "rebuild", "releases": "51", "written": "0", "changed": "0",
        "unchanged": "51", "failed": "0", "strays": "0", "pruned": "0", "elapsed": ""}
    assert tree(archive) == before
    assert mtimes(archive) == times
    assert ledger_rows(archive) == rows
    with sqlite3.connect(archive / "ledger.db") as db:
        run_row = db.execute("select command, outcome, updated, unchanged, failed, ended "
                             "from runs order by id desc limit 1").fetchone()
    assert run_row[:5] == ("rebuild", "ok", 0, 51, 0) and run_row[5]


@pytest.mark.parametrize("jobs", [None, "2"], ids=["in-process", "two-processes"])
def test_rebuild_after_deleting_releases_gives_back_identical_files(archive, tmp_path_factory,
                                                                    jobs):
    expected = tree(pristine(tmp_path_factory))
    rows = ledger_rows(archive)
    shutil.rmtree(archive / "releases")
    result = run("rebuild", "--out", archive, *(["--jobs", jobs] if jobs else []))
    assert result.returncode == 0, result.stderr
    assert figures(result)["written"] == "51"
    assert tree(archive) == expected
    assert ledger_rows(archive) == rows
    assert run("verify", "--out", archive).returncode == 0


def test_two_rebuilds_give_identical_trees(archive):
    shutil.rmtree(archive / "releases")
    assert run("rebuild", "--out", archive, "-j", "2").returncode == 0
    first, rows = tree(archive), ledger_rows(archive)
    shutil.rmtree(archive / "releases")
    assert run("rebuild", "--out", archive, "-j", "1").returncode == 0
    assert tree(archive) == first
    assert ledger_rows(archive) == rows


def test_rebuild_rewrites_only_what_differs(archive):
    files = sorted(tree(archive))
    edited, deleted = archive / files[0], archive / files[1]
    original_edited, original_deleted = edited.read_bytes(), deleted.read_bytes()
    edited.write_bytes(original_edited + b"\nhand edit\n")
    deleted.unlink()
    times = mtimes(archive)
    result = run("rebuild", "--out", archive)
    assert result.returncode == 0, result.stderr
    assert figures(result)["written"] == "2" and figures(result)["unchanged"] == "49"
    assert edited.read_bytes() == original_edited
    assert deleted.read_bytes() == original_deleted
    after = mtimes(archive)
    assert {path for path in after if after[path] != times.get(path)} == {files[0], files[1]}
    assert not [p for p in (archive / "releases").rglob(".tmp-*")]


@pytest.mark.parametrize("jobs", ["1", "2"], ids=["in-process", "two-processes"])
def test_rebuild_rewrites_a_hand_edited_file_of_the_same_size_and_time(archive, jobs):
    """Files are compared by content, never by size or modification time."""
    path = sorted(tree(archive))[5]
    edited = archive / path
    original, stat = edited.read_bytes(), edited.stat()
    position = original.rindex(b"e")
    edited.write_bytes(original[:position] + b"E" + original[position + 1:])
    os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert edited.stat().st_size == stat.st_size and mtimes(archive)[path] == stat.st_mtime_ns
    result = run("rebuild", "--out", archive, "--jobs", jobs)
    assert result.returncode == 0, result.stderr
    assert figures(result)["written"] == "1" and figures(result)["unchanged"] == "50"
    assert edited.read_bytes() == original
    assert run("verify", "--out", archive).returncode == 0


@pytest.mark.parametrize("jobs", ["1", "2"], ids=["in-process", "two-processes"])
def test_rebuild_moves_a_file_to_the_path_rendering_gives(archive, jobs):
    """A row whose recorded path is not the one rendering gives now (a changed naming rule,
    say): the file is written at the new path, the row follows, the old file goes."""
    url, path, *_ = ledger_rows(archive)[2]
    old_path = "releases/1999/12/1999-12-31-old-name.md"
    (archive / old_path).parent.mkdir(parents=True)
    os.rename(archive / path, archive / old_path)
    with sqlite3.connect(archive / "ledger.db") as db:
        db.execute("update releases set path = ? where url = ?", [old_path, url])
    result = run("rebuild", "--out", archive, "--jobs", jobs)
    assert result.returncode == 0, result.stderr
    assert figures(result)["written"] == "1" and figures(result)["unchanged"] == "50"
    assert (archive / path).is_file() and not (archive / old_path).exists()
    assert [row[1] for row in ledger_rows(archive) if row[0] == url] == [path]
    assert run("verify", "--out", archive).returncode == 0


def test_a_ledger_batch_is_one_transaction(tmp_path):
    """save_rendered commits all its rows or none (sqlite-utils commits each statement on
    its own unless a transaction is open)."""
    ledger = Ledger(tmp_path / "ledger.db")
    fields = {"slug": "a", "title": "A", "published": "2020-01-01T00:00:00Z",
              "date": "2020-01-01", "nz_date": "2020-01-01", "ministers": "[]",
              "portfolios": "[]", "attachments": "[]"}

    def item(url, path):
        return Rendered(url=url, path=path, document="---\ntitle: A\n---\n\nbody\n",
                        sha256="0" * 64, fields=fields, region=b"")

    same_path = "releases/2020/01/2020-01-01-a.md"
    with pytest.raises(sqlite3.IntegrityError):
        ledger.save_rendered([(item("https://x/release/a", same_path), None, None, False),
                              (item("https://x/release/b", same_path), None, None, False)],
                             seen=True)
    assert ledger.count() == 0
    ledger.close()


def test_rebuild_brings_stale_ledger_rows_up_to_date(archive):
    """As after a converter change: a row whose hash and body are not what rendering gives
    now is updated, its file written, and the search index follows."""
    url, path, digest, body, title = ledger_rows(archive)[0]
    with sqlite3.connect(archive / "ledger.db") as db:
        db.execute("update releases set sha256 = 'stale', body = 'zzyzx' where url = ?", [url])
    assert path in run("search", "--out", archive, "zzyzx").stdout
    times = mtimes(archive)
    result = run("rebuild", "--out", archive)
    assert result.returncode == 0, result.stderr
    assert figures(result)["changed"] == "1"
    assert ledger_rows(archive)[0] == (url, path, digest, body, title)
    assert mtimes(archive) == times  # the file was right: only the row is written
    assert sha256((archive / path).read_bytes()) == digest
    assert run("search", "--out", archive, "zzyzx").stdout == ""
    with sqlite3.connect(archive / "ledger.db") as db:
        last_changed = db.execute("select last_changed, first_seen from releases where url = ?",
                                  [url]).fetchone()
        assert last_changed[0] >= last_changed[1]
        db.execute("insert into releases_fts(releases_fts) values('integrity-check')")


def test_rebuild_reports_strays_and_prunes_them_only_with_prune(archive):
    stray = archive / "releases" / "2019" / "stray.md"
    stray.write_text("not in the ledger")
    lonely = archive / "releases" / "1990" / "01"
    lonely.mkdir(parents=True)
    (lonely / "old.md").write_text("nor this")
    temporary = archive / "releases" / "2019" / ".tmp-interrupted"
    temporary.write_text("half")

    result = run("rebuild", "--out", archive)
    assert result.returncode == 0, result.stderr
    assert "stray: releases/2019/stray.md" in result.stderr
    assert "stray: releases/1990/01/old.md" in result.stderr
    assert figures(result)["strays"] == "2" and figures(result)["pruned"] == "0"
    assert stray.exists() and (lonely / "old.md").exists()
    assert not temporary.exists()  # an interrupted write's leftovers go, as in a crawl

    result = run("rebuild", "--out", archive, "--prune")
    assert result.returncode == 0, result.stderr
    assert "pruned: releases/2019/stray.md" in result.stderr
    assert figures(result)["pruned"] == "2"
    assert not stray.exists() and not (archive / "releases" / "1990").exists()
    assert tree(archive) == tree(archive)  # still readable
    assert run("verify", "--out", archive).returncode == 0


def test_rebuild_reports_a_stored_page_that_no_longer_parses(archive):
    url = ledger_rows(archive)[3][0]
    with sqlite3.connect(archive / "ledger.db") as db:
        db.execute("update releases set region = ? where url = ?",
                   [zlib.compress(b"<p>no title, no date</p>"), url])
    result = run("rebuild", "--out", archive)
    assert result.returncode == 1
    assert f"failed: {url}: ParseError" in result.stderr
    assert figures(result)["failed"] == "1" and figures(result)["unchanged"] == "50"
    with sqlite3.connect(archive / "ledger.db") as db:
        assert db.execute("select outcome, failed from runs order by id desc limit 1"
                          ).fetchone() == ("failed", 1)


def test_rebuild_with_the_ledger_elsewhere_through_environment_variables(archive, tmp_path):
    db = tmp_path / "elsewhere" / "ledger.db"
    db.parent.mkdir()
    shutil.move(archive / "ledger.db", db)
    shutil.rmtree(archive / "releases")
    result = run("rebuild", env={"BEEHIVE_OUT": str(archive), "BEEHIVE_DB": str(db)})
    assert result.returncode == 0, result.stderr
    assert figures(result)["written"] == "51"
    assert not (archive / "ledger.db").exists()
    result = run("rebuild", "--out", archive, "--db", db)
    assert figures(result)["unchanged"] == "51"


def test_rebuild_and_verify_wait_for_no_one_when_the_archive_is_busy(archive):
    holder = Archiver(archive).lock()
    try:
        for command in ("rebuild", "verify"):
            result = run(command, "--out", archive)
            assert result.returncode == 4, result.stderr
            assert "another beehive run is using" in result.stderr
    finally:
        holder.close()


def test_rebuild_without_a_ledger_is_an_error(tmp_path):
    result = run("rebuild", "--out", tmp_path / "nothing")
    assert result.returncode == 1
    assert "no ledger at" in result.stderr
    assert not (tmp_path / "nothing").exists()


def test_rebuild_shows_a_progress_bar_on_a_terminal(archive):
    shutil.rmtree(archive / "releases")
    leader, follower = pty.openpty()
    try:
        result = run("rebuild", "--out", archive, stderr=follower, stdout=follower,
                     capture_output=False)
        os.close(follower)
        output = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(leader)
    assert result.returncode == 0
    text = output.decode()
    assert "rebuilding" in text and "51/51" in text
    assert "beehive summary:" in text


def test_rebuild_help():
    result = run("rebuild", "--help")
    assert result.returncode == 0
    for option in ("--out", "--db", "--prune", "--jobs", "BEEHIVE_OUT", "BEEHIVE_DB"):
        assert option in result.stdout
