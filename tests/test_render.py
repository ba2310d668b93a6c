from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path

import frontmatter
import pytest

from archive.parse import parse_release
from archive.render import go_quote, render_document, yaml_scalar

CORPUS = Path(__file__).parent / "corpus"
PAGES = sorted((CORPUS / "pages").rglob("*.html"))
JAPAN = "2006/11/2006-11-13-japan-and-new-zealand-seek-reinvigorate-trade-and-economic-relations"


def _release(**kw):
    r = parse_release((CORPUS / "pages" / (JAPAN + ".html")).read_bytes())
    return replace(r, **kw)


def test_example_file_byte_exact():
    r = _release()
    assert render_document(r).encode() == (CORPUS / "expected" / (JAPAN + ".md")).read_bytes()


@pytest.mark.parametrize(
    "s,q",
    [
        ('Waitangi Treaty grounds claim is "nonsense"', '"Waitangi Treaty grounds claim is \\"nonsense\\""'),
        ("Māori Crown Relations", '"Māori Crown Relations"'),
        ("a\\b\tc\nd", '"a\\\\b\\tc\\nd"'),
        ("nbsp\u00a0soft\u00adnarrow\u202f", '"nbsp\\u00a0soft\\u00adnarrow\\u202f"'),
        ("bell\x07del\x7f", '"bell\\adel\\x7f"'),
    ],
)
def test_go_quote(s, q):
    assert go_quote(s) == q


def test_empty_lists_omitted():
    text = render_document(_release(ministers=(), portfolios=(), attachments=()))
    assert "ministers:" not in text and "portfolios:" not in text and "attachments:" not in text
    assert text.endswith("relationship. The working group is expected to report to both governments before the end of 2007.")


def test_empty_body():
    text = render_document(_release(body_html=""))
    assert text.endswith("---\n\n")


@pytest.mark.parametrize(
    "value",
    ["Yes", "No", "null", "true", "2020", "2020-01-01", "- dash", "#hash", "a: b", "a #b", "[x]", "{x}",
     "*star", "&amp", "!tag", "%p", "@at", "`tick", "'quoted'", '"dq"', " lead", "trail ", "x\u00a0y", "a\nb", ":", "?x",
     "Hon Judith Collins KC", "Diversity, Inclusion and Ethnic Communities", "Māori Development"],
)
def test_values_round_trip_through_python_frontmatter(value):
    r = _release(ministers=(value,), portfolios=(value, "Trade"), title=value)
    post = frontmatter.loads(render_document(r))
    assert post["title"] == value
    assert post["ministers"] == [value]
    assert post["portfolios"] == [value, "Trade"]
    assert post["date"] == date(2006, 11, 13)
    assert post["url"] == r.archive_url


def test_plain_values_stay_unquoted_like_the_reference():
    assert yaml_scalar("Hon Judith Collins KC") == "Hon Judith Collins KC"
    assert yaml_scalar("Social Services, Work and Income") == "Social Services, Work and Income"
    # the deliberate improvement: values that would not read back are quoted
    assert yaml_scalar("Yes") == '"Yes"'
    assert yaml_scalar("a: b") == '"a: b"'
    assert yaml_scalar("2020") == '"2020"'


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_corpus_front_matter_parses_back(page):
    r = parse_release(page.read_bytes())
    post = frontmatter.loads(render_document(r))
    assert post["title"] == r.title
    assert post["date"] == datetime.strptime(r.date, "%Y-%m-%d").date()
    assert post["url"] == r.archive_url
    assert tuple(post.get("ministers", ())) == r.ministers
    assert tuple(post.get("portfolios", ())) == r.portfolios
    assert tuple(post.get("attachments", ())) == r.attachments


def test_date_is_utc_calendar_date():
    r = _release(published=datetime(2020, 3, 1, 11, 30, tzinfo=timezone.utc))
    assert "date: 2020-03-01\n" in render_document(r)
    assert r.nz_date == "2020-03-02"
