"""Shared pytest fixtures.  Helper code lives in tests/replica.py, not here."""

from pathlib import Path

import pytest

from tests.replica import CORPUS_DIR, Replica


@pytest.fixture
def corpus_dir() -> Path:
    """tests/corpus: pages/, expected/, blocked/ (read-only reference data)."""
    return CORPUS_DIR


@pytest.fixture
def replica():
    """A started local replica of www.beehive.govt.nz, stopped after the test."""
    with Replica() as site:
        yield site
