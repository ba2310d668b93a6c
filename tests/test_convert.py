"""``beehive convert``: saved pages to seed-format Markdown, offline, through the command line."""

from __future__ import annotations

from pathlib import Path

from tests.replica import CORPUS_DIR
from tests.run import beehive

PAGES = CORPUS_DIR / "pages"
EXPECTED = CORPUS_DIR / "expected"
JAPAN = "2006/11/2006-11-13-japan-and-new-zealand-seek-reinvigorate-trade-and-economic-relations"


def run_bytes(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "archive", *map(str, args)],
                          capture_output=True, timeout=60)


def test_one_page_to_stdout_is_the_example_file_byte_for_byte():
    result = run_bytes("convert", PAGES / f"{JAPAN}.html")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (EXPECTED / f"{JAPAN}.md").read_bytes()


def test_url_option_overrides_the_page(tmp_path):
    result = beehive("convert", PAGES / f"{JAPAN}.html", "--url",
                     "https://www.beehive.govt.nz/release/another-slug")
    assert result.returncode == 0
    assert "\nurl: https://www.beehive.govt.nz/release/another-slug\n" in result.stdout


def test_out_writes_each_page_to_its_archive_path(tmp_path):
    pages = sorted(PAGES.rglob("*.html"))[:5]
    result = beehive("convert", *pages, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    for page in pages:
        relative = page.relative_to(PAGES).with_suffix(".md")
        assert (tmp_path / "releases" / relative).read_bytes() == (EXPECTED / relative).read_bytes()


def test_several_pages_without_out_is_a_usage_error():
    pages = sorted(PAGES.rglob("*.html"))[:2]
    result = beehive("convert", *pages)
    assert result.returncode == 2
    assert "several files need --out" in result.stderr


def test_a_missing_file_is_a_usage_error(tmp_path):
    result = beehive("convert", tmp_path / "nope.html")
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_pages_that_are_not_releases_fail_with_one_line_each(tmp_path):
    blocked = sorted((CORPUS_DIR / "blocked").glob("*.html"))[0]
    empty = tmp_path / "empty.html"
    empty.write_text("<html><body><p>Nothing here</p></body></html>")
    good = PAGES / f"{JAPAN}.html"
    result = beehive("convert", blocked, empty, good, "--out", tmp_path / "out")
    assert result.returncode == 1
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 2 and all(line.startswith("beehive: error: ") for line in errors)
    assert "Traceback" not in result.stderr
    assert (tmp_path / "out" / "releases" / f"{JAPAN}.md").is_file()
    assert len(list((tmp_path / "out").rglob("*.md"))) == 1
