"""Pure page -> record parser for www.beehive.govt.nz release pages.

``parse_release`` takes the HTML of a release page (a full live page, or just the
content region as captured in ``tests/corpus/pages``) and returns a :class:`Release`.
It does no I/O and parses the document exactly once with lxml.

Field rules follow the reference archive (marcus-crane/beehive-exporter):

* title: text of the ``h1`` (``h1.article__title`` of the article), trimmed of
  whitespace the way Go's ``strings.TrimSpace`` trims it; inner whitespace kept.
* published: the ``datetime`` attribute of the inner ``<time>`` of the date line (UTC).
  The file date is the UTC calendar date (``Release.date``).
* ministers: ``ul.meta--ministers``: the text of each ``a[href*="/minister/"]``
  (portrait alt text when the link has no text); for past governments, where there
  are no such links, the ``span.is-archived`` names.  Duplicates dropped, order kept.
* portfolios: ``em.tag--portfolio``: the text of each ``a[href*="/portfolio/"]`` or
  ``span.is-archived``.  Duplicates dropped, order kept.
* attachments: links in the "Related Documents" aside (``aside.article__related``
  or ``aside.ds-three-col__right .file``), made absolute against
  https://www.beehive.govt.nz when relative; duplicates dropped, order kept.
* body_html: the inner HTML of ``div.prose.field--name-body`` (falling back to
  ``div.field--name-body``).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import parse_qs, unquote_plus, urlsplit
from zoneinfo import ZoneInfo

import lxml.html
from lxml import etree

__all__ = [
    "ParseError",
    "BlockedPage",
    "Release",
    "is_blocked",
    "is_captcha",
    "is_challenge",
    "parse_release",
    "go_trim_space",
    "reference_slug",
    "SITE",
]

SITE = "https://www.beehive.govt.nz"
NZ_TZ = ZoneInfo("Pacific/Auckland")

# Characters Go's unicode.IsSpace accepts (strings.TrimSpace trims exactly these).
# Python's str.strip() would also strip U+001C..U+001F, which Go keeps.
GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


def go_trim_space(s: str) -> str:
    """strings.TrimSpace of Go: trims Unicode white space (not U+001C..U+001F)."""
    return s.strip(GO_SPACE)


class ParseError(ValueError):
    """The page is not a release page, or lacks its title, date or body."""


class BlockedPage(ParseError):
    """The page is an Imperva Incapsula bot-protection page, not a release."""


# Imperva's pages (SITE.md, "Bot protection"). A CAPTCHA block page names its incident and
# frames a CAPTCHA for a person (SWUDNSAI). A JavaScript challenge is a tiny page that is
# only a script, from /_Incapsula_Resource?SWJIYLWA=… or from a path of random words: a
# browser runs it and earns a token.
_CAPTCHA_MARKERS = (b"Incapsula incident ID", b"SWUDNSAI")
CHALLENGE_MAX_SIZE = 4096  # the live challenge is about 212 bytes; a release page some 350 KB
_SCRIPT_ELEMENT = re.compile(rb"(?is)<script\b.*?</script\s*>")
_SCRIPT_SRC = re.compile(rb"(?i)<script\b[^>]*\bsrc\s*=")
_TAG = re.compile(rb"<[^>]*>")


def _bytes(page: str | bytes) -> bytes:
    if isinstance(page, str):
        return page.encode("utf-8", "surrogatepass")
    return bytes(page)


def is_captcha(page: str | bytes) -> bool:
    """Imperva's block page, which asks a person to solve a CAPTCHA: never to be solved by
    software, and a sign to stop."""
    data = _bytes(page)
    return any(marker in data for marker in _CAPTCHA_MARKERS)


def is_challenge(page: str | bytes) -> bool:
    """Imperva's JavaScript challenge: a small page whose only content is a script."""
    data = _bytes(page)
    if len(data) > CHALLENGE_MAX_SIZE or is_captcha(data):
        return False
    if b"_Incapsula_Resource" in data:
        return True
    text = _TAG.sub(b"", _SCRIPT_ELEMENT.sub(b"", data))
    return not text.strip() and _SCRIPT_SRC.search(data) is not None


def is_blocked(page: str | bytes) -> bool:
    """Any page of the bot protection (a CAPTCHA, a challenge, Incapsula's resources):
    never a release."""
    data = _bytes(page)
    return b"_Incapsula_Resource" in data or is_captcha(data) or is_challenge(data)


@dataclass(frozen=True)
class Release:
    url: str
    slug: str
    title: str
    published: datetime
    ministers: tuple[str, ...]
    portfolios: tuple[str, ...]
    attachments: tuple[str, ...]
    body_html: str
    region_html: str

    @property
    def archive_slug(self) -> str:
        """The slug as the reference archive writes it (file name and front-matter url)."""
        return reference_slug(self.slug)

    @property
    def archive_url(self) -> str:
        """The front-matter url: https://www.beehive.govt.nz/release/<archive_slug>."""
        return SITE + "/release/" + self.archive_slug

    @property
    def date(self) -> str:
        """UTC calendar date YYYY-MM-DD (the reference archive's rule)."""
        return self.published.astimezone(timezone.utc).strftime("%Y-%m-%d")

    @property
    def nz_date(self) -> str:
        """The New Zealand calendar date (as the page shows it)."""
        return self.published.astimezone(NZ_TZ).strftime("%Y-%m-%d")


# --------------------------------------------------------------------------- helpers

def reference_slug(slug: str) -> str:
    """The reference's ID rule: URL-decode (Go QueryUnescape), strip diacritics
    (NFD, drop combining marks), drop any remaining non-ASCII character."""
    s = slug
    if "%" in s or "+" in s:
        try:
            s = _query_unescape(s)
        except ValueError:
            pass
    if s.isascii():
        return s
    s = unicodedata.normalize("NFD", s)
    return "".join(ch for ch in s if ord(ch) < 128)


def _query_unescape(s: str) -> str:
    if re.search(r"%(?![0-9A-Fa-f]{2})", s):
        raise ValueError(s)
    return unquote_plus(s, errors="strict")


def _has_class(el, cls: str) -> bool:
    c = el.get("class")
    return bool(c) and cls in c.split()


def _itertext(el) -> str:
    parts = []
    if el.text:
        parts.append(el.text)
    for child in el:
        if isinstance(child.tag, str):
            parts.append(_itertext(child))
        if child.tail:
            parts.append(child.tail)
    return "".join(parts)


def _inner_html(el) -> str:
    """Serialize the children of ``el`` (like goquery's .Html())."""
    parts = []
    if el.text:
        parts.append(_escape_text(el.text))
    for child in el:
        parts.append(lxml.html.tostring(child, encoding="unicode", with_tail=False))
        if child.tail:
            parts.append(_escape_text(child.tail))
    return "".join(parts)


def _escape_text(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_DATETIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(Z|[+-]\d{2}:\d{2})$"
)


def _parse_datetime(value: str) -> datetime | None:
    value = value.strip()
    m = _DATETIME_RE.match(value)
    if not m:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt.astimezone(timezone.utc)


def _absolute(href: str) -> str:
    # The reference: anything not starting with "http" gets the site prefixed.
    if href.startswith("http"):
        return href
    return SITE + href


_SHARE_PARAMS = ("url", "u", "body")


def _url_from_share_links(article) -> str | None:
    for a in article.iter("a"):
        href = a.get("href") or ""
        if "beehive.govt.nz" not in href:
            continue
        parts = urlsplit(href)
        if parts.scheme == "mailto" or href.startswith("mailto:"):
            q = parse_qs(href.split("?", 1)[1] if "?" in href else "")
            cand = q.get("body", [None])[0]
        elif "intent/tweet" in href or "sharer" in href or "shareArticle" in href:
            q = parse_qs(parts.query)
            cand = (q.get("url") or q.get("u") or [None])[0]
        else:
            continue
        if cand and ("/release/" in cand or "/node/" in cand):
            return cand.strip()
    return None


def _canonical(tree) -> str | None:
    for link in tree.iter("link"):
        rel = (link.get("rel") or "").lower().split()
        if "canonical" in rel and link.get("href"):
            return link.get("href").strip()
    return None


def _first(elements, cls: str | None = None):
    """The first of ``elements`` carrying class ``cls`` (any, when None), or None."""
    return next((el for el in elements if cls is None or _has_class(el, cls)), None)


def _find_article(tree):
    # (not `or`: an lxml element without children is falsy)
    for cls in ("node--type-article", "node", None):
        article = _first(tree.iter("article"), cls)
        if article is not None:
            return article
    return None


def _find_body(scope):
    fallback = None
    for el in scope.iter("div"):
        c = el.get("class")
        if not c:
            continue
        cs = c.split()
        if "field--name-body" in cs:
            if "prose" in cs:
                return el
            if fallback is None:
                fallback = el
    return fallback


# --------------------------------------------------------------------------- parser

def _distinct(names) -> list[str]:
    """Non-empty names in first-seen order, each once (the reference drops repeats)."""
    return list(dict.fromkeys(name for name in names if name))


def _minister_link_name(a) -> str:
    """A current minister's name: the link's text, or its portrait's alt when it has none."""
    name = go_trim_space(_itertext(a))
    if not name:
        for img in a.iter("img"):
            return go_trim_space(img.get("alt") or "")
    return name


def _attachment_links(aside):
    """Document links of a "Related Documents" aside; in the right-hand column only those
    inside a .file block count (the rest are related releases)."""
    related = _has_class(aside, "article__related")
    if not (related or _has_class(aside, "ds-three-col__right")):
        return
    for a in aside.iter("a"):
        if not a.get("href"):
            continue
        if not related:
            p = a.getparent()
            inside_file = False
            while p is not None and p is not aside:
                if _has_class(p, "file"):
                    inside_file = True
                    break
                if _has_class(p, "article__related"):
                    break
                p = p.getparent()
            if not inside_file:
                continue
        yield a


# lxml's HTML parser, without libxml2's limits on depth: with them, elements nested past
# about 255 levels are silently moved or dropped, and part of a release would be lost.
HTML_PARSER = lxml.html.HTMLParser(huge_tree=True)


def parse_release(html: str | bytes, url: str | None = None) -> Release:
    """Parse one release page.  Pure: no I/O.

    Raises BlockedPage for Incapsula pages and ParseError when the page lacks a
    title (h1), a ``<time datetime>``, a body div, or (without ``url``) any URL.
    """
    if is_blocked(html):
        raise BlockedPage("bot-protection page (Incapsula), not a release")
    if isinstance(html, (bytes, bytearray, memoryview)):
        html = bytes(html).decode("utf-8", errors="replace")
    if not html or not html.strip():
        raise ParseError("empty document: no title, date or body")
    try:
        tree = lxml.html.document_fromstring(html, parser=HTML_PARSER)
    except (etree.ParserError, ValueError) as exc:  # pragma: no cover - lxml is lenient
        raise ParseError(f"unparseable HTML: {exc}") from None

    article = _find_article(tree)
    scope = article if article is not None else tree
    main = _first(scope.iter("div"), "ds-three-col__main")
    meta_scope = main if main is not None else scope

    # -- title
    h1 = _first(meta_scope.iter("h1"), "article__title")
    if h1 is None:
        h1 = _first(meta_scope.iter("h1"))
    if h1 is None:
        raise ParseError("not a release page: no <h1> title")
    title = go_trim_space(_itertext(h1))
    if not title:
        raise ParseError("not a release page: empty <h1> title")

    # -- date: the inner <time datetime> of the date line, else the last time[datetime]
    published = None
    for el in meta_scope.iter("time"):
        dt = el.get("datetime")
        if dt:
            parsed = _parse_datetime(dt)
            if parsed is not None:
                published = parsed
                break
    if published is None:
        raise ParseError("not a release page: no <time datetime> publication date")

    # -- body
    body = _find_body(meta_scope)
    if body is None and main is not None:
        body = _find_body(scope)
    if body is None:
        raise ParseError("not a release page: no body (div.field--name-body)")
    body_html = _inner_html(body)

    # -- ministers: current ones are links to /minister/, past ones span.is-archived
    lists = [ul for ul in meta_scope.iter("ul") if _has_class(ul, "meta--ministers")]
    ministers = _distinct(_minister_link_name(a) for ul in lists for a in ul.iter("a")
                          if "/minister/" in (a.get("href") or ""))
    if not ministers:
        ministers = _distinct(go_trim_space(_itertext(span))
                              for ul in lists for li in ul.iter("li") for span in li.iter("span")
                              if _has_class(span, "is-archived"))

    # -- portfolios: links to /portfolio/ or span.is-archived inside em.tag--portfolio
    portfolios = _distinct(
        go_trim_space(_itertext(el))
        for em in meta_scope.iter("em") if _has_class(em, "tag--portfolio")
        for el in em.iter("a", "span")
        if ("/portfolio/" in (el.get("href") or "") if el.tag == "a"
            else _has_class(el, "is-archived")))

    # -- attachments: "Related Documents" aside
    attachments = _distinct(_absolute(a.get("href")) for aside in scope.iter("aside")
                            for a in _attachment_links(aside))

    # -- URL
    if url is None:
        url = _canonical(tree)
        if url is None:
            url = _url_from_share_links(scope)
        if url is None:
            raise ParseError("no URL: pass url=, or the page needs <link rel=canonical> or share links")
    url = url.strip()
    slug = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1] if urlsplit(url).path else url.rsplit("/", 1)[-1]

    # -- region (the smallest HTML that parses back to the same record)
    region_el = article if article is not None else tree
    region_html = lxml.html.tostring(region_el, encoding="unicode", with_tail=False)

    return Release(
        url=url,
        slug=slug,
        title=title,
        published=published,
        ministers=tuple(ministers),
        portfolios=tuple(portfolios),
        attachments=tuple(attachments),
        body_html=body_html,
        region_html=region_html,
    )
