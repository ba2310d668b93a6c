"""Shared pytest fixtures.  Helper code lives in tests/replica.py and tests/run.py, not here."""

from pathlib import Path

import pytest

from tests.replica import CORPUS_DIR, CORPUS_PAGES, Replica, copy_pages

RECENT = sorted(CORPUS_PAGES.glob("2025/*/*.html"))[:6]


@pytest.fixture
def corpus_dir() -> Path:
    """tests/corpus: pages/, expected/, blocked/ (read-only reference data)."""
    return CORPUS_DIR


@pytest.fixture
def replica():
    """A started local replica of www.beehive.govt.nz, stopped after the test."""
    with Replica() as site:
        yield site


@pytest.fixture
def site(tmp_path):
    """A small replica: six recent releases, four a listing page (quick to crawl often)."""
    with Replica(copy_pages(RECENT, tmp_path / "pages"), page_size=4) as replica:
        yield replica
