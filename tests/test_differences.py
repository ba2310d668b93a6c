"""The deliberate differences from the reference archive (archive/differences.py): each
one pinned, and the table, the README and the conformance report in agreement."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from archive.archiver import Archiver
from archive.differences import BY_KEY, DIFFERENCES, explain_front_matter
from archive.parse import parse_release
from archive.render import render_front_matter
from archive.store import UnsafePath

ROOT = Path(__file__).resolve().parent.parent


def page(ministers_html: str, body_html: str, slug: str = "t", when: str = "2001-11-06T00:00:00Z") -> str:
    return (
        f'<link rel="canonical" href="https://www.beehive.govt.nz/release/{slug}">'
        f"<article><time datetime='{when}'>6 November 2001</time><h1>T</h1>"
        f'<ul class="meta--ministers">{ministers_html}</ul>'
        '<em class="tag tag--portfolio"><span class="is-archived">Health</span></em>'
        f"<div class='prose field--name-body'>{body_html}</div></article>"
    )


ARCHIVED = '<li><span class="is-archived">Steve Maharey</span></li>'
LINKED = ('<li><a href="/minister/hon-simeon-brown" class="minister__link">'
          '<div class="field minister__title"> Hon Simeon Brown </div></a></li>')
BODY_LINK = ('<p>Copies at <a href="http://www.executive.govt.nz/minister/maharey/dpb_wb.pdf">'
             "http://www.executive.govt.nz/minister/maharey/dpb_wb.pdf</a> and "
             '<a href="/minister/hon-other-person">Hon Other Person</a>.</p>')


@pytest.mark.parametrize("ministers, names", [
    (ARCHIVED, ("Steve Maharey",)),  # the reference: the body link's text instead
    (LINKED, ("Hon Simeon Brown",)),  # the reference: also "Hon Other Person"
    ("", ()),  # the reference: the two body links
])
def test_ministers_come_from_the_ministers_list_only(ministers, names):
    release = parse_release(page(ministers, BODY_LINK))
    assert release.ministers == names


def test_the_reference_minister_rule_is_reported_as_a_listed_difference():
    release = parse_release(page(ARCHIVED, BODY_LINK))
    ours = render_front_matter(release)
    theirs = ours.replace("  - Steve Maharey", "  - http://www.executive.govt.nz/minister/maharey/dpb_wb.pdf")
    assert explain_front_matter(theirs, ours) == ["ministers-list"]
    # a title that differs is not a choice
    assert explain_front_matter(theirs.replace('title: "T"', 'title: "U"'), ours) is None


def test_yaml_quoting_is_reported_as_a_listed_difference():
    theirs = "---\ntitle: \"T\"\ndate: 2018-05-25\nportfolios:\n  - Māori Crown Relations: Te Arawhiti\n---\n"
    ours = theirs.replace("  - Māori Crown Relations: Te Arawhiti", '  - "Māori Crown Relations: Te Arawhiti"')
    assert explain_front_matter(theirs, ours) == ["yaml-quoting"]
    assert explain_front_matter(theirs, ours.replace("Te Arawhiti", "Te Arawhit")) is None


def test_a_slug_that_folds_onto_another_releases_file_is_refused(tmp_path):
    """The reference's file names drop diacritics: "māori-wardens" and "maori-wardens"
    name one file. The second release is refused and the first file is kept."""
    first = parse_release(page(ARCHIVED, "<p>first</p>", slug="maori-wardens"))
    second = parse_release(page(ARCHIVED, "<p>second</p>", slug="m%C4%81ori-wardens"))
    assert first.archive_slug == second.archive_slug == "maori-wardens"
    archiver = Archiver(tmp_path / "archive")
    try:
        path = archiver.save(first).path
        before = (tmp_path / "archive" / path).read_bytes()
        with pytest.raises(UnsafePath, match="already holds"):
            archiver.save(second)
        assert (tmp_path / "archive" / path).read_bytes() == before
        assert b"first" in before
        rows = archiver.ledger.db.execute("select url from releases").fetchall()
        assert [r[0] for r in rows] == [first.url]
    finally:
        archiver.close()


def readme_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Differences from the reference archive\n(.*?)^## ", text, re.S | re.M)
    assert match, "README has no section 'Differences from the reference archive'"
    return match.group(1)


def test_readme_lists_every_difference_with_the_test_that_pins_it():
    section = readme_section()
    for difference in DIFFERENCES:
        assert difference.title in section, difference.key
        assert f"`{difference.test}`" in section, difference.key
        assert f"`{difference.key}`" in section, difference.key
    # and nothing the table does not know
    listed = re.findall(r"^\| \*\*(.+?)\*\* \|", section, re.M)
    assert sorted(listed) == sorted(d.title for d in DIFFERENCES)


@pytest.mark.parametrize("difference", DIFFERENCES, ids=lambda d: d.key)
def test_every_pinning_test_exists(difference):
    path, _, name = difference.test.partition("::")
    source = (ROOT / path).read_text(encoding="utf-8")
    assert re.search(rf"^def {re.escape(name)}\(", source, re.M), difference.test
    assert BY_KEY[difference.key] is difference
