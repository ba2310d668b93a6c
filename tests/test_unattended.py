"""Unattended operation (issue 10): blocks per URL and site-wide, an unreachable site, a
quiet run with a progress line on a terminal, and the monitoring check. End to end through
the command line against the replica."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import archive.archiver
from archive.archiver import ArchiveBusy, Archiver
from tests.run import FAST_REACTOR, beehive, crawl, rows, summary

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = "https://www.beehive.govt.nz"


@pytest.fixture
def refusing_url():
    """A URL on 127.0.0.1 whose connections are refused: its port is bound and never
    listened on, and held for the whole test, so that no other test's replica (pytest-xdist
    runs two at once) can take it meanwhile, as one did a port merely found free."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


# -- 1. blocks: per URL, and site-wide --------------------------------------------------------

def test_releases_that_stay_blocked_are_recorded_and_never_stop_later_runs(replica, tmp_path):
    # As many as MAX_BLOCKS, on listing pages 0 and 1; from after 2014, so that the search
    # links them by the same URL as the listing (older results link /node/<n>).
    stuck = [replica.slugs[2], replica.slugs[5], replica.slugs[15]]
    for slug in stuck:
        replica.fault(f"/release/{slug}", times=1000, kind="blocked")
    out = tmp_path / "archive"
    first = crawl(replica, out)
    assert first.returncode == 1, first.stderr[-3000:]
    figures = summary(first)
    assert (figures["outcome"], figures["new"], figures["failed"]) == ("failed", "48", "3")
    failed = {r["url"]: r["kind"] for r in rows(out / "ledger.db", "select * from failures")}
    assert failed == {f"{PRODUCTION}/release/{slug}": "blocked" for slug in stuck}
    for slug in stuck:  # once, then once more after its back-off
        assert replica.paths.count(f"/release/{slug}") == 2

    # A release published since, and the three still blocked: they are asked for after the
    # walk and what it found, in a row, and still the run captures the new one and ends 1.
    replica.publish("published-since-the-first-run", datetime(2026, 11, 29, tzinfo=timezone.utc))
    replica.clear_requests()
    second = crawl(replica, out)
    assert second.returncode == 1, second.stderr[-3000:]
    assert summary(second)["new"] == "1"
    paths = replica.paths
    retried = [i for i, path in enumerate(paths) if path in {f"/release/{s}" for s in stuck}]
    assert len(retried) == 6
    last_walk = max(i for i, path in enumerate(paths)
                    if path.startswith("/releases") or path == "/release/published-since-the-first-run")
    assert min(retried) > last_walk
    (run,) = rows(out / "ledger.db", "select outcome from runs where id = 2")
    assert run["outcome"] == "failed"


def test_different_urls_blocked_in_a_row_stop_the_run_within_a_few_requests(replica, tmp_path):
    for slug in replica.slugs[:10]:
        replica.fault(f"/release/{slug}", times=10, kind="blocked")
    out = tmp_path / "archive"
    result = crawl(replica, out)
    assert result.returncode == 3
    assert summary(result)["outcome"] == "blocked"
    # robots.txt, a listing page, 2 + 2 + 1 blocked; and a search page or two that the
    # downloader takes up while the spider reads the listing page
    assert len([p for p in replica.paths if not p.startswith("/search")]) <= 2 + 5
    assert len(replica.paths) <= 2 + 5 + 2
    (run,) = rows(out / "ledger.db", "select reason from runs")
    assert "3 different pages blocked in a row" in run["reason"]


# -- 2. an unreachable site ---------------------------------------------------------------------

@pytest.mark.parametrize("base_url, cause", [
    ("refusing_url", "connection refused"),
    ("http://beehive.invalid", "DNS lookup failed"),  # .invalid never resolves (RFC 2606)
], ids=["connection-refused", "dns-failure"])  # the same in every pytest-xdist worker
def test_an_unreachable_site_is_one_line_its_own_outcome_and_exit_status(tmp_path, base_url,
                                                                           cause, request):
    if base_url == "refusing_url":
        base_url = request.getfixturevalue("refusing_url")
    out = tmp_path / "archive"
    result = beehive("crawl", "--base-url", base_url, "--out", out, "--delay", "0",
                     "-s", FAST_REACTOR, "-s", "BEEHIVE_RETRY_BACKOFF=0.05")
    host = base_url.split("//")[1].split(":")[0]
    assert result.returncode == 5
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    said = [line for line in lines if f"cannot reach {host}: {cause}" in line]
    assert len(said) == 1, result.stderr
    assert len(lines) <= 3, result.stderr  # the start line, that line, the summary
    assert summary(result)["outcome"] == "unreachable"
    (run,) = rows(out / "ledger.db", "select outcome, reason from runs")
    assert run == {"outcome": "unreachable", "reason": f"cannot reach {host}: {cause}"}
    status = beehive("status", "--out", out)
    assert f"outcome unreachable (cannot reach {host}: {cause})" in status.stdout
    check = beehive("status", "--out", out, "--check")
    assert check.returncode == 1 and f"cannot reach {host}" in check.stdout


# -- 3. quiet, with progress on a terminal -----------------------------------------------------

def test_a_normal_run_prints_a_handful_of_lines_and_no_warnings(replica, tmp_path):
    result = crawl(replica, tmp_path / "a", env={"PYTHONWARNINGS": "always"})
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stderr.splitlines()
    assert len(lines) <= 3, result.stderr
    assert lines[0].startswith("beehive: crawling ") and lines[-1].startswith("beehive summary:")
    assert "Warning" not in result.stderr and "deprecated" not in result.stderr.lower()
    assert "archived" not in result.stderr and "\r" not in result.stderr  # not a terminal
    assert result.stdout == ""


def test_verbose_gives_scrapys_info_log_and_log_level_still_works(replica, tmp_path):
    verbose = crawl(replica, tmp_path / "a", "-v")
    assert verbose.returncode == 0
    assert "[scrapy.core.engine] INFO: Spider opened" in verbose.stderr
    assert verbose.stderr.count("beehive summary:") == 1
    assert "] INFO: beehive summary:" in verbose.stderr  # through the log, not beside it
    debug = crawl(replica, tmp_path / "b", "-s", "LOG_LEVEL=DEBUG")
    assert "DEBUG: Crawled (200)" in debug.stderr
    silent = crawl(replica, tmp_path / "c", "-s", "LOG_LEVEL=CRITICAL")
    assert silent.stderr.count("beehive summary:") == 1
    assert summary(silent)["new"] == "51"


def test_scrapy_crawl_releases_still_ends_with_the_summary(replica, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "releases", "-s", f"BEEHIVE_OUT={tmp_path / 'a'}",
         "-s", f"BEEHIVE_BASE_URL={replica.base_url}", "-s", "DOWNLOAD_DELAY=0",
         "-s", FAST_REACTOR, "-s", "LOG_LEVEL=WARNING"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert summary(result)["new"] == "51"


def run_in_terminal(args: list[str], timeout: float = 120) -> tuple[int, str]:
    """Run a command with a pseudo-terminal (100 columns) as its stdin, stdout and stderr;
    returns its exit status and all it wrote."""
    master, slave = pty.openpty()
    process = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, cwd=ROOT,
                               env={**os.environ, "COLUMNS": "100", "LINES": "24"})
    os.close(slave)
    output = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the terminal's other side is closed
                    break
                if not data:
                    break
                output += data
            elif process.poll() is not None:
                break
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
        process.wait()
    return process.returncode, output.decode("utf-8", "replace")


def test_on_a_terminal_a_backfill_shows_a_live_progress_line(replica, tmp_path):
    replica.fault(f"/release/{replica.slugs[20]}", times=4, kind="status", status=500)
    code, output = run_in_terminal(
        [sys.executable, "-m", "archive", "crawl", "--base-url", replica.base_url,
         "--out", str(tmp_path / "a"), "--delay", "0", "-s", FAST_REACTOR,
         "-s", "BEEHIVE_RETRY_BACKOFF=0.05"])
    assert code == 1, output[-3000:]
    assert "\r" in output.replace("\r\n", "\n")  # a line redrawn in place
    progress = output.replace("\r\n", "\n").split("\r")
    # (50 new; and, counted too, releases the search links by /node/<n> that this run
    # archived already under their own URL)
    archived = re.compile(r"(\d+) releases archived \[")
    counts = [int(m.group(1)) for m in map(archived.match, progress) if m]
    assert counts and max(counts) >= 50, output[-2000:]
    # The rate, the walk, and the estimate of a backfill.
    assert any(re.search(r"\d+ releases archived \[[\d:]+, [\d.]+/s\], listing page \d/5, "
                         r"about \d+:\d\d:\d\d left", line) for line in progress), output
    # A warning gets a line of its own above the progress line, not glued to it.
    assert re.search(r"\r[\d-]+ [\d:]+ \[scraper\.pipelines\] WARNING: failed \S+: HTTP 500\r\n",
                     output), output
    assert "\r\nbeehive summary: outcome=failed" in output


def test_ctrl_c_or_a_stop_signal_ends_the_run_cleanly(replica, tmp_path):
    """Ctrl-C, `timeout --signal=INT` and systemd signal the whole process group: the run
    finishes what it has under way, keeps it, and says how it went."""
    replica.synthesize(150)
    out = tmp_path / "archive"
    process = subprocess.Popen(
        [sys.executable, "-m", "archive", "crawl", "--base-url", replica.base_url, "--out",
         str(out), "--delay", "0.01", "-s", FAST_REACTOR],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while len(replica.paths) < 40 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr  # as shells report Ctrl-C (issue 18)
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    figures = summary(subprocess.CompletedProcess([], 0, "", stderr))
    assert 0 < int(figures["new"]) < 201 and figures["outcome"] == "interrupted"
    (run,) = rows(out / "ledger.db", "select outcome, walk_finished from runs")
    assert run == {"outcome": "interrupted", "walk_finished": 0}  # the next run walks on
    verified = beehive("verify", "--out", out)
    assert verified.returncode == 0, verified.stdout
    assert beehive("crawl", "--base-url", replica.base_url, "--out", out, "--delay", "0",
                   "-s", FAST_REACTOR).returncode == 0
    assert len(rows(out / "ledger.db", "select url from releases")) == 201


def test_a_killed_crawl_leaves_no_worker_processes_behind(replica, tmp_path):
    """The writer process ends with the crawl, even one killed with SIGKILL, which it
    cannot see coming."""
    replica.synthesize(150)
    process = subprocess.Popen(
        [sys.executable, "-m", "archive", "crawl", "--base-url", replica.base_url, "--out",
         str(tmp_path / "archive"), "--delay", "0.01", "-s", FAST_REACTOR],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    deadline = time.monotonic() + 60
    workers: list[str] = []
    while not workers and process.poll() is None and time.monotonic() < deadline:
        workers = children.read_text().split()
        time.sleep(0.05)
    assert workers, "the crawl started no writer process"
    process.kill()
    process.wait()

    def alive(pid: str) -> bool:
        try:
            return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 10
    while any(map(alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if alive(pid)]


def test_a_run_whose_writer_process_is_killed_stops_and_says_why(replica, tmp_path):
    """Nothing can be saved without the writer: the run must not go on fetching into the
    void, nor end ok. It stops with one line, and the next run completes the archive."""
    replica.synthesize(150)
    out = tmp_path / "archive"
    process = subprocess.Popen(
        [sys.executable, "-m", "archive", "crawl", "--base-url", replica.base_url, "--out",
         str(out), "--delay", "0.01", "-s", FAST_REACTOR],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        try:  # (a file of our own making here would be no ledger: only an existing one)
            if (out / "ledger.db").exists() and rows(
                    out / "ledger.db", "select count(*) as n from releases")[0]["n"] >= 10:
                break
        except sqlite3.OperationalError:  # its tables are not made yet
            pass
        time.sleep(0.05)
    (writer,) = [pid for pid in Path(f"/proc/{process.pid}/task/{process.pid}/children")
                 .read_text().split()
                 if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    os.kill(int(writer), signal.SIGKILL)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1, stderr
    assert "the writer process ended unexpectedly: stopping" in stderr
    assert "Traceback" not in stderr
    (run,) = rows(out / "ledger.db", "select outcome, reason, new from runs")
    assert run["outcome"] == "failed" and run["reason"] == "the writer process ended unexpectedly"
    assert 10 <= run["new"] < 201
    # Killed between a file's rename and its row's commit, the writer leaves a file the
    # ledger does not name yet, as any crash there does: the next run completes it.
    again = crawl(replica, out)
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(rows(out / "ledger.db", "select url from releases")) == 201
    verified = beehive("verify", "--out", out)
    assert verified.returncode == 0, verified.stdout


def hold_writer_lock(out: Path) -> subprocess.Popen:
    """A process standing for a killed crawl's writer: it holds the writer's lock until its
    standard input closes."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from archive.archiver import Archiver; "
         "writer = Archiver(sys.argv[1]); writer.hold_writer_lock(); print('held', flush=True); "
         "sys.stdin.read()",
         str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    return holder


def test_a_run_after_a_killed_one_waits_for_its_writer_to_end(tmp_path):
    """A SIGKILLed crawl's writer lives on while it finishes the release it is saving: the
    next run must not start writing beside it."""
    out = tmp_path / "archive"
    Archiver(out).lock().close()
    holder = hold_writer_lock(out)
    taken = threading.Event()

    def next_run():
        Archiver(out).lock().close()
        taken.set()

    waiting = threading.Thread(target=next_run)
    waiting.start()
    assert not taken.wait(0.5), "the archive was taken while an earlier run's writer held it"
    holder.stdin.close()
    holder.wait()
    assert taken.wait(10)
    waiting.join()


def test_a_writer_that_does_not_end_makes_the_archive_busy(tmp_path, monkeypatch):
    out = tmp_path / "archive"
    Archiver(out).lock().close()
    holder = hold_writer_lock(out)
    try:
        monkeypatch.setattr(archive.archiver, "WRITER_GRACE", 0.2)
        with pytest.raises(ArchiveBusy, match="a writer process of an earlier run"):
            Archiver(out).lock()
    finally:
        holder.stdin.close()
        holder.wait()
    Archiver(out).lock().close()  # and the main lock was let go with the error

# -- 4. monitoring ------------------------------------------------------------------------------

def test_status_check_says_whether_the_last_crawl_ended_ok_recently(replica, tmp_path):
    out = tmp_path / "archive"
    missing = beehive("status", "--out", out, "--check")
    assert missing.returncode == 1 and "no ledger" in missing.stderr
    assert crawl(replica, out).returncode == 0
    ok = beehive("status", "--out", out, "--check")
    assert ok.returncode == 0, ok.stdout
    assert ok.stdout.startswith("OK: last crawl #1 ended ok") and len(ok.stdout.splitlines()) == 1

    three_hours_ago = (datetime.now(timezone.utc) - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with sqlite3.connect(out / "ledger.db") as conn:
        conn.execute("update runs set ended = ?", [three_hours_ago])
    old = beehive("status", "--out", out, "--check")  # the default: 2 hours
    assert old.returncode == 1
    assert old.stdout.strip() == ("PROBLEM: last crawl #1 ended ok 3h00m ago, longer ago "
                                  "than 2h00m")
    assert beehive("status", "--out", out, "--check", "--max-age", "1d").returncode == 0
    assert beehive("status", "--out", out, "--check", "--max-age", "2h30m").returncode == 1
    assert beehive("status", "--out", out, "--check", "--max-age", "200m").returncode == 0
    bad = beehive("status", "--out", out, "--check", "--max-age", "soon")
    assert bad.returncode == 2 and "not a duration" in bad.stderr

    replica.block_all()
    assert crawl(replica, out).returncode == 3
    blocked = beehive("status", "--out", out, "--check", "--max-age", "1d")
    assert blocked.returncode == 1
    assert "ended blocked (blocked by the site's bot protection" in blocked.stdout
