"""A damaged ledger: SQLite's own check runs before any command trusts the ledger; every
command, the crawl included, says so in one line, exits 1 and touches nothing."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.offline_archive import copy_archive, run, tree
from tests.run import FAST_REACTOR, crawl

ROOT = Path(__file__).resolve().parent.parent

PAGE = 4096


def damage(ledger) -> int:
    """Zero one page of the releases table's b-tree (not the schema), as a torn write or a
    bad sector would; returns its number."""
    with sqlite3.connect(ledger) as db:
        assert db.execute("pragma page_size").fetchone()[0] == PAGE
        pages = [row[0] for row in db.execute(
            "select pageno from dbstat where name = 'releases' and pagetype = 'leaf' "
            "order by pageno")]
    db.close()
    page = pages[len(pages) // 2]
    with open(ledger, "r+b") as handle:
        handle.seek((page - 1) * PAGE)
        handle.write(bytes(PAGE))
    return page


@pytest.fixture
def damaged(tmp_path_factory, tmp_path):
    out = copy_archive(tmp_path_factory, tmp_path)
    with sqlite3.connect(out / "ledger.db") as db:
        assert db.execute("pragma quick_check").fetchone()[0] == "ok"
        assert 45 <= db.execute("select count(*) from releases").fetchone()[0] <= 60
    db.close()
    damage(out / "ledger.db")
    return out


def state(out):
    return tree(out), hashlib.sha256((out / "ledger.db").read_bytes()).hexdigest()


@pytest.mark.parametrize("args", [["verify"], ["status"], ["status", "--json"], ["export"],
                                  ["search", "housing"], ["rebuild"]])
def test_every_command_refuses_a_damaged_ledger(damaged, args):
    before = state(damaged)
    result = run(*args, "--out", damaged)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("beehive: error: the ledger cannot be used: ")
    assert "is damaged" in lines[0]
    assert state(damaged) == before


def test_verify_runs_the_full_integrity_check(damaged):
    result = run("verify", "--out", damaged)
    assert "integrity_check" in result.stderr or "malformed" in result.stderr


def test_crawl_refuses_a_damaged_ledger_before_fetching_anything(replica, damaged):
    before = state(damaged)
    result = crawl(replica, damaged)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("beehive: crawling ") and len(lines) == 2, result.stderr
    assert lines[1].startswith("beehive: error: the ledger cannot be used: ")
    assert "is damaged" in lines[1]
    assert replica.requests == []
    assert state(damaged) == before


def test_scrapy_crawl_refuses_a_damaged_ledger_too(replica, damaged):
    """The check is in the crawl's own code path, not only in the command line's."""
    before = state(damaged)
    result = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "releases",
         "-s", f"BEEHIVE_BASE_URL={replica.base_url}", "-s", f"BEEHIVE_OUT={damaged}",
         "-s", "DOWNLOAD_DELAY=0", "-s", FAST_REACTOR],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "LedgerDamaged" in result.stderr and "is damaged" in result.stderr
    assert replica.requests == []
    assert state(damaged) == before


def test_an_intact_ledger_passes(tmp_path_factory, tmp_path):
    out = copy_archive(tmp_path_factory, tmp_path)
    result = run("verify", "--out", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: ")
