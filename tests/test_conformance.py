from pathlib import Path

from archive.conformance import compare

CORPUS = Path(__file__).parent / "corpus"


def test_corpus_conformance_floor():
    report = compare(CORPUS / "pages", CORPUS / "expected")
    assert report.total == 51
    assert not report.errors, report.errors
    assert report.front_rate == 100.0, report.mismatches
    assert report.body_rate >= 95.0, report.mismatches
    # currently every file is byte-identical; keep it that way
    assert report.file_rate == 100.0, report.mismatches


EXTRA = Path(__file__).parent / "corpus-extra"


def test_extra_heldout_pairs_convert_exactly():
    """Releases outside the reference corpus (see tests/corpus-extra/README.md)."""
    report = compare(EXTRA / "pages", EXTRA / "expected")
    assert report.total == 4
    assert not report.errors, report.errors
    assert report.file_rate == 100.0, report.mismatches
