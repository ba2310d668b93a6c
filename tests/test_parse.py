from datetime import datetime, timezone
from pathlib import Path

import pytest

from archive.parse import BlockedPage, ParseError, Release, is_blocked, parse_release, reference_slug

CORPUS = Path(__file__).parent / "corpus"
PAGES = sorted((CORPUS / "pages").rglob("*.html"))
JAPAN = CORPUS / "pages/2006/11/2006-11-13-japan-and-new-zealand-seek-reinvigorate-trade-and-economic-relations.html"

SHELL = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<link rel="canonical" href="https://www.beehive.govt.nz/release/{slug}">
<title>x</title><script>var x = "<h1>not this</h1>";</script></head>
<body><header><nav><a href="/minister/someone">Someone</a><a href="/portfolio/x/y">Nav portfolio</a></nav></header>
<main>{region}</main><footer><time datetime="1999-01-01T00:00:00Z">x</time></footer></body></html>"""


def test_japan_example():
    r = parse_release(JAPAN.read_bytes())
    assert r.url == "https://www.beehive.govt.nz/release/japan-and-new-zealand-seek-reinvigorate-trade-and-economic-relations"
    assert r.slug == "japan-and-new-zealand-seek-reinvigorate-trade-and-economic-relations"
    assert r.title == "Japan and New Zealand seek to reinvigorate trade and economic relations"
    assert r.published == datetime(2006, 11, 13, 18, 0, tzinfo=timezone.utc)
    assert r.date == "2006-11-13"
    assert r.nz_date == "2006-11-14"
    assert r.ministers == ("Phil Goff",)
    assert r.portfolios == ("Trade",)
    assert r.attachments == ()
    assert r.body_html.startswith("<p>")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_region_html_round_trip(page):
    r = parse_release(page.read_bytes())
    again = parse_release(r.region_html, r.url)
    assert again == r
    assert len(r.region_html) < len(page.read_bytes()) * 2


def test_full_page_shell_round_trip_and_canonical():
    region = JAPAN.read_text()
    slug = "japan-and-new-zealand-seek-reinvigorate-trade-and-economic-relations"
    page = SHELL.format(slug=slug, region=region)
    r = parse_release(page)
    plain = parse_release(region)
    assert r.url == f"https://www.beehive.govt.nz/release/{slug}"
    assert r.ministers == plain.ministers and r.portfolios == plain.portfolios
    assert r.published == plain.published and r.title == plain.title
    assert r.body_html == plain.body_html
    assert parse_release(r.region_html, r.url) == r
    assert "<nav" not in r.region_html and "<script" not in r.region_html


def test_modern_minister_links_and_portfolio_links():
    r = parse_release((CORPUS / "pages/2025/11/2025-11-01-pm-luxon-concludes-asia-trip.html").read_bytes())
    assert r.ministers == ("Rt Hon Christopher Luxon",)
    assert r.portfolios == ("Prime Minister",)


def test_attachments_from_related_documents_only():
    r = parse_release((CORPUS / "pages/2008/03/2008-03-08-seniors-benefit-nz-super-rise.html").read_bytes())
    assert r.attachments == ("https://www.beehive.govt.nz/sites/default/files/NZSuper%20backgrounder%208%20Mar%202008.pdf",)
    # a .pdf linked in the body is not an attachment (reference rule)
    r = parse_release((CORPUS / "pages/2025/11/2025-11-23-youth-targeted-social-investment-fund.html").read_bytes())
    assert r.attachments == ()


def test_no_ministers_but_portfolios():
    r = parse_release((CORPUS / "pages/2010/11/2010-11-11-taskforce-green-funding-cleans-quake-damage.html").read_bytes())
    assert r.ministers == ()
    assert r.portfolios == ("Social Development and Employment", "Earthquake Recovery")


def test_node_share_links_give_url():
    r = parse_release((CORPUS / "pages/2001/05/2001-05-01-10404.html").read_bytes())
    assert r.slug == "10404"
    assert r.archive_url == "https://www.beehive.govt.nz/release/10404"


def test_reference_slug():
    assert reference_slug("new-minister-determined-find-solution-māori-wardens") == "new-minister-determined-find-solution-maori-wardens"
    assert reference_slug("prime-minister’s-science-prizes-announced") == "prime-ministers-science-prizes-announced"
    assert reference_slug("m%C4%81ori") == "maori"


@pytest.mark.parametrize("page", sorted((CORPUS / "blocked").glob("*.html")), ids=lambda p: p.stem)
def test_blocked(page):
    data = page.read_bytes()
    assert is_blocked(data) and is_blocked(data.decode())
    with pytest.raises(BlockedPage):
        parse_release(data, "https://www.beehive.govt.nz/release/x")
    assert issubclass(BlockedPage, ParseError)


@pytest.mark.parametrize(
    "html,missing",
    [
        ("<html><body><p>nothing</p></body></html>", "title"),
        ("<article><h1>T</h1><div class='prose field--name-body'><p>x</p></div></article>", "date"),
        ("<article><h1>T</h1><time datetime='2020-01-01T00:00:00Z'>1</time></article>", "body"),
        ("", "empty"),
    ],
)
def test_parse_errors(html, missing):
    with pytest.raises(ParseError) as exc:
        parse_release(html, "https://www.beehive.govt.nz/release/x")
    assert missing in str(exc.value) and "\n" not in str(exc.value)


def test_no_url_is_an_error():
    with pytest.raises(ParseError):
        parse_release("<article><h1>T</h1><time datetime='2020-01-01T00:00:00Z'>1</time>"
                      "<div class='prose field--name-body'><p>x</p></div></article>")


def test_other_host_canonical_accepted():
    html = ("<html><head><link rel='canonical' href='https://example.org/release/abc'></head><body>"
            "<article><h1> T </h1><time datetime='2020-01-01T11:30:00Z'>1</time>"
            "<div class='prose field--name-body'><p>x</p></div></article></body></html>")
    r = parse_release(html)
    assert r.url == "https://example.org/release/abc" and r.slug == "abc" and r.title == "T"
    assert r.nz_date == "2020-01-02" and r.date == "2020-01-01"
