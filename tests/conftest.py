"""Shared pytest fixtures.  Helper code lives in tests/replica.py and tests/run.py, not here."""

import shutil
from pathlib import Path

import pytest

from tests.replica import CORPUS_DIR, CORPUS_PAGES, Replica

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
    pages = tmp_path / "pages"
    for path in RECENT:
        target = pages / path.relative_to(CORPUS_PAGES)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    with Replica(pages, page_size=4) as replica:
        yield replica
