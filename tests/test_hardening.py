"""Bad input never costs data, never lies, never hangs (issue 18): every refusal is one line,
``beehive: error: …``, with a documented exit status, and leaves the archive as it was."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.offline_archive import copy_archive, run
from tests.run import FAST_REACTOR, beehive, crawl, rows

READ_COMMANDS = [["status"], ["status", "--json"], ["status", "--check"], ["export"],
                 ["search", "housing"], ["changes"], ["history", "x"], ["show", "x"],
                 ["diff", "x"], ["verify"]]
ALL_COMMANDS = READ_COMMANDS + [["rebuild"], ["rebuild", "--prune"]]


def refused(result, status: int, *words: str) -> str:
    """The command said one line, ``beehive: error: …``, and exited ``status``."""
    lines = result.stderr.splitlines()
    assert result.returncode == status, result.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("beehive: error: "), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]
    return lines[0]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under the folder, by relative path, with its hash."""
    return {path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture
def archive(tmp_path_factory, tmp_path) -> Path:
    return copy_archive(tmp_path_factory, tmp_path)


# -- a file that is not a beehive ledger -------------------------------------------------------

def other_database(path: Path) -> Path:
    with sqlite3.connect(path) as db:
        db.execute("create table notes (id integer primary key, text text)")
        db.execute("insert into notes (text) values ('mine')")
    db.close()
    return path


@pytest.mark.parametrize("args", ALL_COMMANDS)
@pytest.mark.parametrize("kind", ["other database", "empty file"])
def test_a_file_that_is_not_a_ledger_is_refused_by_every_command_and_left_untouched(
        archive, args, kind):
    ledger = archive / "other.db"
    if kind == "empty file":
        ledger.write_bytes(b"")
    else:
        other_database(ledger)
    before = snapshot(archive)
    result = run(*args, "--out", archive, "--db", ledger)
    refused(result, 2, "is not a beehive ledger", str(ledger))
    assert snapshot(archive) == before  # the archive's files too: --prune deleted none
    assert not Path(f"{ledger}-wal").exists() and not Path(f"{ledger}.lock").exists()


def test_a_missing_ledger_is_made_whole_or_not_at_all(tmp_path):
    from archive.ledger import Ledger, check_ledger_file

    path = tmp_path / "new" / "ledger.db"
    Ledger(path).close()
    check_ledger_file(path)  # beehive's, complete
    assert not [p.name for p in path.parent.iterdir() if ".new-" in p.name]  # no temporary left


def test_a_half_made_ledger_left_by_a_killed_run_is_cleared_and_never_used(tmp_path):
    from archive.ledger import Ledger

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = tmp_path / "ledger.db"
    leftovers = [tmp_path / f".ledger.db.new-{dead.pid}", tmp_path / f".ledger.db.new-{dead.pid}-wal"]
    for leftover in leftovers:
        leftover.write_bytes(b"half")
    Ledger(path).close()
    assert not any(leftover.exists() for leftover in leftovers)
    assert run("status", "--db", path).returncode == 0


# -- a read-only archive -----------------------------------------------------------------------

# Runs a command as 'nobody', for whom root's files are read-only (root itself ignores
# permissions, so a test as root could not fail). The interpreter lives under /root, which
# only root may enter: what the commands use is imported first, then the process becomes
# 'nobody', then the command runs.
AS_NOBODY = """
import sys, os, csv, difflib, json, zlib, hashlib, sqlite3, datetime, urllib.parse
import importlib.metadata, tempfile, shutil, subprocess, io, textwrap, errno, fcntl, locale
import frontmatter, sqlite_utils, yaml
sqlite_utils.Database(memory=True)  # loads its plugins
import archive.cli, archive.archiver, archive.report, archive.history, archive.rebuild
import archive.ledger, archive.differences, archive.parse, archive.render, archive.markdown
os.setgid(65534)
os.setuid(65534)
sys.argv = ["beehive", *sys.argv[1:]]
archive.cli.cli()
"""


def as_nobody(*args):
    import subprocess
    import sys

    environment = {key: value for key, value in os.environ.items()
                   if key not in ("BEEHIVE_OUT", "BEEHIVE_DB")}
    return subprocess.run([sys.executable, "-c", AS_NOBODY, *map(str, args)], text=True,
                          capture_output=True, timeout=120, env=environment, cwd="/")


@pytest.fixture
def readonly_archive(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("needs root, to run the commands as another user ('nobody')")
    # Outside pytest's own folders, which only root may enter.
    folder = Path(tempfile.mkdtemp(prefix="beehive-ro-"))
    out = copy_archive(tmp_path_factory, folder)
    for path in [folder, *folder.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode) & ~0o222 | 0o444
        path.chmod(mode | 0o111 if path.is_dir() else mode)
    yield out
    shutil.rmtree(folder)


@pytest.mark.parametrize("args", [
    ["status"], ["status", "--json"], ["status", "--check"], ["export"], ["search", "housing"],
    ["changes"], ["history", "FILE"], ["show", "FILE"], ["diff", "FILE"], ["verify"]])
def test_read_commands_work_on_an_archive_this_account_cannot_write(readonly_archive, args):
    before = snapshot(readonly_archive)
    first = min((readonly_archive / "releases").rglob("*.md"))
    args = [str(first) if arg == "FILE" else arg for arg in args]
    result = as_nobody(*args, "--out", readonly_archive)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(readonly_archive) == before


def test_search_export_and_show_read_a_readonly_archive_in_full(readonly_archive):
    export = as_nobody("export", "--out", readonly_archive)
    assert export.returncode == 0, export.stderr
    assert len(export.stdout.splitlines()) == len(list((readonly_archive / "releases").rglob("*.md")))


def test_writing_commands_name_the_permission_problem_not_damage(readonly_archive):
    for args in (["rebuild"], ["convert", "--out", readonly_archive,
                               str(next(Path(__file__).parent.joinpath("corpus/pages/2025").rglob("*.html")))]):
        result = as_nobody(*args, "--out", readonly_archive) \
            if args[0] == "rebuild" else as_nobody(*args)
        assert result.returncode == 1, result.stderr
        assert "ermission denied" in result.stderr and "damaged" not in result.stderr
        assert "Traceback" not in result.stderr


def test_an_unreadable_ledger_is_a_permission_problem(archive):
    if os.geteuid() != 0:
        pytest.skip("needs root, to run the commands as another user ('nobody')")
    folder = Path(tempfile.mkdtemp(prefix="beehive-unreadable-"))
    try:
        out = folder / "archive"
        shutil.copytree(archive, out)
        folder.chmod(0o755)
        out.chmod(0o755)
        (out / "ledger.db").chmod(0o600)
        result = as_nobody("status", "--out", out)
        line = refused(result, 1, "permission denied")
        assert "damaged" not in line
    finally:
        shutil.rmtree(folder)


# -- outputs never land on the archive ---------------------------------------------------------

def archive_targets(out: Path) -> dict[str, Path]:
    """Files an output must never overwrite, by what they are."""
    link = out.parent / "link-to-ledger.db"
    link.symlink_to(out / "ledger.db")
    hard = out.parent / "hard-link-to-ledger.db"
    os.link(out / "ledger.db", hard)
    return {"ledger": out / "ledger.db", "wal": out / "ledger.db-wal",
            "shm": out / "ledger.db-shm", "journal": out / "ledger.db-journal",
            "lock": out / "ledger.db.lock",
            "release file": min((out / "releases").rglob("*.md")),
            "new file under releases": out / "releases" / "notes.jsonl",
            "warc": out / "warc" / "x.jsonl", "symlink": link, "hard link": hard}


def test_export_never_writes_over_the_archive(archive):
    for what, target in archive_targets(archive).items():
        before = snapshot(archive)
        refused(run("export", "--out", archive, "-o", target), 2, "part of the archive")
        assert snapshot(archive) == before, what
    assert run("status", "--out", archive).returncode == 0


def test_export_writes_its_file_whole(archive, tmp_path):
    target = tmp_path / "all.jsonl"
    target.write_text("an older export\n")
    result = run("export", "--out", archive, "-o", target)
    assert result.returncode == 0, result.stderr
    assert len(target.read_text().splitlines()) == len(list((archive / "releases").rglob("*.md")))
    assert not list(tmp_path.glob(".tmp-*"))


def test_a_crawls_feed_never_writes_over_the_archive(archive):
    targets = archive_targets(archive)
    for what in ("ledger", "wal", "release file", "new file under releases", "symlink",
                 "hard link"):
        before = snapshot(archive)
        for option, uri in (("-O", f"{targets[what]}:jsonl"),
                            ("-o", f"file://{targets[what]}:jsonl")):
            result = run("crawl", "--out", archive, "--base-url", "http://127.0.0.1:9",
                         option, uri)
            refused(result, 2, "part of the archive")
        assert snapshot(archive) == before, what
    result = run("crawl", "--out", archive, "--base-url", "http://127.0.0.1:9",
                 "-s", 'FEEDS={"%s": {"format": "jsonl"}}' % (archive / "ledger.db"))
    refused(result, 2, "part of the archive")


@pytest.mark.parametrize("target", ["/nonexistent-folder/new.jsonl", "/", "/etc/hostname/x"])
def test_an_unusable_feed_or_export_path_is_a_usage_error(archive, target):
    before = snapshot(archive)
    refused(run("crawl", "--out", archive, "--base-url", "http://127.0.0.1:9",
                "-O", f"{target}:jsonl"), 2)
    if target != "/":  # click refuses a folder for export -o itself
        refused(run("export", "--out", archive, "-o", target), 2)
    assert snapshot(archive) == before


def test_convert_never_overwrites_a_different_file(archive, tmp_path, corpus_dir):
    page = min((corpus_dir / "pages" / "2025").rglob("*.html"))
    fresh = tmp_path / "fresh"
    assert run("convert", page, "--out", fresh).returncode == 0
    (converted,) = (fresh / "releases").rglob("*.md")
    target = archive / converted.relative_to(fresh)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("the archive's own capture\n")
    before = snapshot(archive)
    result = run("convert", page, "--out", archive)
    refused(result, 1, "exists and differs")
    assert snapshot(archive) == before
    # Absent or identical: written, or left alone (its modification time kept).
    target.write_bytes(converted.read_bytes())
    mtime = target.stat().st_mtime_ns
    assert run("convert", page, "--out", archive).returncode == 0
    assert target.stat().st_mtime_ns == mtime


@pytest.mark.parametrize("args", [["status", "--bogus"], ["export", "--format", "xml"],
                                  ["search"], ["crawl", "--delay", "-1"], ["nonsense"]])
def test_a_usage_error_is_one_line_and_exit_2(archive, args):
    refused(run(*args, "--out", archive), 2)


# -- a crawl stopped by a signal ends `interrupted` --------------------------------------------

def started_crawl(replica, out: Path, *args: str) -> subprocess.Popen:
    """A crawl in its own process group (as a shell's job is), once it has fetched a few
    pages."""
    process = subprocess.Popen(
        [sys.executable, "-m", "archive", "crawl", "--base-url", replica.base_url, "--out",
         str(out), "-s", FAST_REACTOR, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while len(replica.paths) < 6 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    assert process.poll() is None, process.communicate()[1][-2000:]
    return process


@pytest.mark.parametrize("number, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_crawl_is_interrupted_exits_128_plus_the_signal_and_check_sees_it(
        replica, tmp_path, number, status):
    replica.synthesize(100)
    out = tmp_path / "archive"
    process = started_crawl(replica, out, "--delay", "0.02")
    os.killpg(process.pid, number)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == status, stderr[-2000:]
    assert "Traceback" not in stderr
    assert "outcome=interrupted" in stderr
    (run,) = rows(out / "ledger.db", "select outcome, reason, ended from runs")
    assert run["outcome"] == "interrupted" and run["ended"]
    assert signal.Signals(number).name in run["reason"]
    check = beehive("status", "--check", "--out", out)
    assert check.returncode == 1 and check.stdout.startswith("PROBLEM:"), check.stdout
    assert "interrupted" in check.stdout
    assert "interrupted" in beehive("status", "--out", out).stdout


def test_ctrl_c_is_honoured_at_once_whatever_the_delay(replica, tmp_path):
    out = tmp_path / "archive"
    process = subprocess.Popen(
        [sys.executable, "-m", "archive", "crawl", "--base-url", replica.base_url, "--out",
         str(out), "-s", FAST_REACTOR, "--delay", "600"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while not replica.paths and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(1)  # the next request now waits for its delay
    stopped = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert time.monotonic() - stopped < 5, "the stop waited for the delay"
    assert process.returncode == 130, stderr[-2000:]
    assert len(replica.paths) <= 3  # no burst of requests on the way out


# -- a body nested deep ------------------------------------------------------------------------

def nested(levels: int) -> str:
    return ("<ul>" + "<li>level<ul>" * levels + "<li>the deepest item</li>"
            + "</ul></li>" * levels + "</ul>")


def deep_page(replica, slug: str, levels: int) -> str:
    region = replica.region(slug)
    start = region.index("field--name-body")
    start = region.index(">", start) + 1
    return ("<!DOCTYPE html><html><head></head><body>" + region[:start] + nested(levels)
            + region[start:] + "</body></html>")


def test_a_body_nested_250_levels_deep_is_archived_whole(site, tmp_path):
    slug = site.slugs[1]
    site.set_release_html(slug, deep_page(site, slug, 250))
    out = tmp_path / "archive"
    result = crawl(site, out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    (path,) = (out / "releases").rglob(f"*-{slug}.md")
    text = path.read_text()
    assert "the deepest item" in text and text.count("level") >= 250


def test_a_page_the_converter_cannot_handle_is_a_recorded_failure_tried_again(site, tmp_path):
    slug = site.slugs[1]
    site.set_release_html(slug, deep_page(site, slug, 2000))
    out = tmp_path / "archive"
    result = crawl(site, out)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "outcome=failed" in result.stderr
    (failure,) = rows(out / "ledger.db", "select url, reason from failures")
    assert failure["url"].endswith(slug) and "nests elements" in failure["reason"]
    assert slug in beehive("status", "--out", out).stdout
    site.clear_requests()
    again = crawl(site, out)
    assert f"/release/{slug}" in site.paths  # tried again
    assert again.returncode == 1


def test_convert_refuses_a_body_nested_too_deep_in_one_line(site, tmp_path):
    page = tmp_path / "deep.html"
    slug = site.slugs[1]
    page.write_text(deep_page(site, slug, 2000).replace(
        "<head>", f'<head><link rel="canonical" href="https://www.beehive.govt.nz/release/{slug}">'))
    refused(run("convert", page), 1, "nests elements")


# -- crawl settings: a usage error, before anything is touched ---------------------------------

@pytest.mark.parametrize("args", [
    ["--base-url", "http://127.0.0.1:99999"], ["--base-url", "http://[::1"],
    ["--base-url", "http://127.0.0.1\x01:8000"], ["--base-url", "http://exa mple.org"],
    ["--base-url", "ftp://example.org"], ["--recheck-max", "9" * 30],
    ["--delay", "nan"], ["--delay", "inf"], ["--out", ""], ["--db", " "],
    ["-s", "DOWNLOAD_DELAY=abc"], ["-s", "DOWNLOAD_DELAY=-1"], ["-s", "LOG_LEVEL=NOPE"],
    ["-s", "BEEHIVE_RECHECK_MAX=" + "9" * 30], ["-s", "RETRY_TIMES=many"],
    ["-s", "BEEHIVE_FULL=perhaps"], ["-s", "DOWNLOAD_TIMEOUT=0"],
    ["-s", "BEEHIVE_BASE_URL=http://h:0x1"], ["-s", "BEEHIVE_RECHECK_INTERVALS=soon"],
    ["-O", "/nonexistent-folder/x.jsonl"]])
def test_a_crawl_setting_it_cannot_use_is_one_line_exit_2_and_touches_nothing(tmp_path, args):
    out = tmp_path / "archive"
    result = run("crawl", "--out", out, "--base-url", "http://127.0.0.1:9", *args)
    refused(result, 2)
    assert not out.exists()


def test_a_seed_file_that_unpacks_too_large_is_refused_without_unpacking_it(tmp_path):
    import gzip

    from scraper.discovery import MAX_SEED_BYTES

    seed = tmp_path / "bomb.txt.gz"
    with gzip.open(seed, "wb") as handle:
        for _ in range(MAX_SEED_BYTES // 2**20 + 2):
            handle.write(b"\n" * 2**20)
    assert seed.stat().st_size < 2**20
    out = tmp_path / "archive"
    result = run("crawl", "--out", out, "--base-url", "http://127.0.0.1:9", "--seed", seed)
    refused(result, 2, "larger than 50 MB unpacked")
    assert not out.exists()


# -- every other command: bounds, numbers, bytes ---------------------------------------------

@pytest.mark.parametrize("args", [
    ["show", "\udcff"], ["history", "x\udcfe"], ["diff", "\udcff"], ["search", "\udcff"],
    ["changes", "--since", "\udcff"],
    ["status", "--check", "--max-age", "9" * 30 + "d"], ["changes", "--since", "9" * 30],
    ["search", "housing", "--limit", "9" * 30], ["show", "x", "--revision", "9" * 30],
    ["diff", "x", "1", "9" * 30], ["search", "a" * 1001], ["rebuild", "-j", "100000"],
    ["export", "--since", "99999-01-01"], ["status", "--max-age", "soon"]])
def test_bad_arguments_are_one_line_exit_2_and_change_nothing(archive, args):
    before = snapshot(archive)
    # (subprocess passes a lone surrogate on as the byte it stands for: \udcff -> 0xff)
    refused(run(*args, "--out", archive), 2)
    assert snapshot(archive) == before


def test_a_long_query_is_refused_at_once_and_one_just_within_the_limit_runs(archive):
    started = time.monotonic()
    assert run("search", "housing " * 100 + "x" * 200, "--out", archive).returncode == 0
    assert time.monotonic() - started < 20


@pytest.mark.parametrize("source", ["/dev/zero", "huge"])
def test_convert_reads_at_most_5_mib(tmp_path, source):
    if source == "huge":
        source = tmp_path / "huge.html"
        source.write_bytes(b"<html>" + b" " * (5 * 2**20))
    started = time.monotonic()
    result = run("convert", source)
    refused(result, 1, "larger than 5 MiB")
    assert time.monotonic() - started < 15


def test_serve_refuses_an_empty_host_and_a_port_in_use_in_one_line(archive):
    import socket

    pytest.importorskip("datasette")
    refused(run("serve", "--host", "", "--out", archive), 2, "--host")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused(run("serve", "--port", port, "--out", archive), 1,
                f"port {port}")


# -- a release that redirects to another archived release ---------------------------------------

PRODUCTION = "https://www.beehive.govt.nz"


def test_a_release_redirecting_to_another_archived_one_is_kept_not_merged(site, tmp_path):
    out = tmp_path / "archive"
    assert crawl(site, out).returncode == 0
    source, target = site.slugs[1], site.slugs[2]
    db = out / "ledger.db"
    revisions_before = rows(db, "select url, revision, sha256 from revisions order by url, revision")
    (source_file,) = (out / "releases").rglob(f"*-{source}.md")
    kept = source_file.read_bytes()
    site.redirect_anywhere(source, f"{site.base_url}/release/{target}")
    for _ in range(2):  # the second run finds it marked already: one change entry
        # (as a recheck asks for it: alone; a --full walk asks for the target itself first)
        result = crawl(site, out, "--url", f"{PRODUCTION}/release/{source}")
        assert result.returncode == 0, result.stderr[-3000:]
    assert source_file.read_bytes() == kept
    releases = {r["url"]: r for r in rows(db, "select url, moved_to from releases")}
    assert len(releases) == 6
    assert releases[f"{PRODUCTION}/release/{source}"]["moved_to"] == \
        f"{PRODUCTION}/release/{target}"
    assert releases[f"{PRODUCTION}/release/{target}"]["moved_to"] is None
    assert rows(db, "select url, revision, sha256 from revisions order by url, revision") \
        == revisions_before  # no history appended to the other's, none lost
    redirected = rows(db, "select url, path from changes where kind = 'redirected'")
    assert redirected == [{"url": f"{PRODUCTION}/release/{source}",
                           "path": source_file.relative_to(out).as_posix()}]
    verified = beehive("verify", "--out", out)
    assert verified.returncode == 0, verified.stdout
    # Answering under its own URL again: no longer moved.
    site.redirect_anywhere(source, None)
    assert crawl(site, out, "--url", f"{PRODUCTION}/release/{source}").returncode == 0
    assert rows(db, "select moved_to from releases where url = ?",
                [f"{PRODUCTION}/release/{source}"]) == [{"moved_to": None}]


def test_ctrl_c_is_honoured_at_once_during_a_retry_back_off(site, tmp_path):
    slug = site.slugs[0]
    site.fault(f"/release/{slug}", "status", times=1000, status=503)
    out = tmp_path / "archive"
    process = subprocess.Popen(
        [sys.executable, "-m", "archive", "crawl", "--base-url", site.base_url, "--out",
         str(out), "-s", FAST_REACTOR, "--delay", "0", "-s", "BEEHIVE_RETRY_BACKOFF=600"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while f"/release/{slug}" not in site.paths and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(1)  # now waiting 600 s before the retry
    stopped = time.monotonic()
    os.killpg(process.pid, signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert time.monotonic() - stopped < 5, "the stop waited for the back-off"
    assert process.returncode == 143, stderr[-2000:]


def test_scrapy_crawl_never_writes_a_feed_over_the_ledger(archive):
    before = snapshot(archive)
    result = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "releases", "-s", f"BEEHIVE_OUT={archive}",
         "-s", "BEEHIVE_BASE_URL=http://127.0.0.1:9", "-O", f"{archive / 'ledger.db'}:jsonl"],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent.parent)
    assert "part of the archive" in result.stderr, result.stderr[-2000:]
    assert snapshot(archive) == before


def test_export_to_a_device_or_a_link_writes_through_it(archive, tmp_path):
    result = run("export", "--out", archive, "-o", "/dev/stdout")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == len(list((archive / "releases").rglob("*.md")))
    assert Path("/dev/stdout").is_symlink() or not Path("/dev/stdout").is_file()
    target = tmp_path / "real.jsonl"
    target.write_text("")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    assert run("export", "--out", archive, "-o", link).returncode == 0
    assert link.is_symlink() and target.read_text()


def test_prune_by_a_ledger_that_knows_no_release_deletes_nothing(archive, tmp_path):
    from archive.ledger import Ledger

    Ledger(tmp_path / "fresh.db").close()  # a beehive ledger, but another (empty) archive's
    before = snapshot(archive / "releases")
    refused(run("rebuild", "--prune", "--out", archive, "--db", tmp_path / "fresh.db"), 2,
            "nothing was deleted")
    assert snapshot(archive / "releases") == before
