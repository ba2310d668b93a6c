"""Body HTML -> Markdown, byte-compatible with the reference archive.

The reference archive was written by JohannesKaufmann/html-to-markdown v2.5.0
(``htmltomarkdown.ConvertString``: the "base" and "commonmark" plugins, no table
plugin) followed by ``strings.TrimSpace``.  :class:`ReleaseConverter` is a
markdownify ``MarkdownConverter`` whose rules reproduce that library's
conventions:

* pre-render DOM passes (as the library does them): drop script/style/...;
  spans holding blocks become divs; redundant nested bold/italic and nested links
  are unwrapped; adjacent bold/italic (and adjacent inline code) are merged into
  the first, looking through spans; bold/italic around a lone link
  is moved inside the link; headings inside links and blocks inside inline or
  leaf elements are replaced; stray list children move into the previous ``li``;
  then HTML whitespace is collapsed (turndown's algorithm: only ASCII white space
  collapses, so U+00A0, U+202F, U+00AD survive) ;
* rendering: every tag has a ``convert_<tag>`` rule; tags without a rule pass
  their content through (block tags surrounded by a blank line); text keeps
  ``&`` bare and writes ``<``/``>`` as ``&lt;``/``&gt;``;
* "smart" escaping: while rendering, an escape marker (U+0007) is put before
  every character that could mean something in Markdown; at the end the marker
  becomes a backslash only where the character would otherwise start Markdown
  syntax (list markers and ``1.`` at a line start, ``*``/``_`` before text,
  ``#`` headings, ``>`` quotes, ``[`` with a ``]`` later on its line, ...), and
  is dropped elsewhere;
* post-render (of the document, and of each block quote and list item): at most
  one blank line in a row, no hard line break before a blank line.
"""
from __future__ import annotations

import functools
import re
from urllib.parse import quote, unquote_to_bytes

from bs4 import BeautifulSoup, Comment, NavigableString, Tag
from markdownify import MarkdownConverter

__all__ = ["ReleaseConverter", "body_to_markdown", "assemble_url"]

ESC = "\x07"  # escape marker (Go: marker.MarkerEscaping)
CODE_NEWLINE = "\uf002"  # a newline inside a code block (Go: marker.MarkerCodeBlockNewline)

# Characters the commonmark plugin marks for (possible) escaping.
_ESCAPED_CHARS = frozenset("\\*_-+.>|$#=[]()!~`\"'")
# One regex pass over a text puts the marker before each of them (much faster than
# str.translate with a multi-character mapping, which does a dict lookup per char).
_ESCAPED_RE = re.compile("[" + re.escape("".join(sorted(_ESCAPED_CHARS))) + "]")
# Text keeps "&" as it is (html-to-markdown v2.5.0, "base: don't escape & anymore";
# the reference archive never has "&amp;") but writes "<" and ">" as entities.
_ENTITY_TABLE = {ord("<"): "&lt;", ord(">"): "&gt;"}

# Go unicode.IsSpace
GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_GO_SPACE_SET = frozenset(GO_SPACE)

# dom.NameIsBlockNode
BLOCK_TAGS = frozenset(
    "address article aside blockquote details dialog dd div dl dt fieldset "
    "figcaption figure footer form h1 h2 h3 h4 h5 h6 header hgroup hr li main "
    "nav ol p pre section table ul".split()
)
REMOVE_TAGS = frozenset("head script style link meta iframe noscript input textarea".split())
BOLD = frozenset(("strong", "b"))
ITALIC = frozenset(("em", "i"))
EMPH = BOLD | ITALIC
INLINE_CODE = frozenset(("code", "var", "samp", "kbd", "tt"))
HEADINGS = frozenset(("h1", "h2", "h3", "h4", "h5", "h6"))

_CONTAINER = frozenset(("html", "head", "body", "blockquote", "ul", "ol", "li", "[document]"))
_LEAF = frozenset(("hr", "pre")) | HEADINGS
_INLINE = frozenset(("span", "code", "b", "strong", "i", "em", "a", "img", "br"))

_WS_RUN = re.compile(r"[ \t\n\r]+")
_MULTI_SPACE = re.compile(r"  +")


def go_trim(s: str) -> str:
    return s.strip(GO_SPACE)


# ----------------------------------------------------------------------------- text utils

# Three or more newlines with only spaces between them: keep the first two lines.
# Written to start with a literal "\n" (rather than the equivalent
# ``((?: *\n){2})(?: *\n)+`` -> ``\1``) so the regex engine jumps from newline to
# newline instead of trying a match at every character.
_EXTRA_NEWLINES = re.compile(r"\n( *\n)(?: *\n)+")


def trim_consecutive_newlines(s: str) -> str:
    """At most two newlines in a row; spaces before dropped newlines are dropped too
    (textutils.TrimConsecutiveNewlines)."""
    if "\n" not in s:
        return s
    return _EXTRA_NEWLINES.sub(_keep_two_lines, s)


def _keep_two_lines(m) -> str:
    # (a function is cheaper than the "\n\\1" template, which is expanded per match)
    return "\n" + m.group(1)


def trim_unnecessary_hard_line_breaks(s: str) -> str:
    s = s.replace("  \n\n", "\n\n")
    s = s.replace("  \n  \n", "\n\n")
    s = s.replace("  \n \n", "\n\n")
    return s


def surrounding_spaces(s: str) -> tuple[str, str, str]:
    right = s.rstrip(GO_SPACE)
    trimmed = right.lstrip(GO_SPACE)
    return right[: len(right) - len(trimmed)], trimmed, s[len(right):]


def delimiter_for_every_line(s: str, delim: str) -> str:
    lines = s.split("\n")
    for i, line in enumerate(lines):
        left, trimmed, right = surrounding_spaces(line)
        if not trimmed:
            continue
        lines[i] = left + delim + trimmed + delim + right
    return "\n".join(lines)


def escape_multiline(s: str) -> str:
    """Content of a link spanning lines (textutils.EscapeMultiLine, v2.5.0): each
    line loses its leading white space, a blank line becomes a backslash line, and
    every other line break is a hard line break."""
    if "\n" not in s:
        return s
    parts = s.split("\n")
    last = len(parts) - 1
    out = []
    for i, part in enumerate(parts):
        part = part.lstrip(GO_SPACE)
        if not part:
            out.append("\\\n")
        elif i == last:
            out.append(part)
        elif part.endswith("  "):
            out.append(part + "\n")
        else:
            out.append(part + "  \n")
    return "".join(out)


def surround_by_quotes(s: str) -> str:
    if not s:
        return ""
    dq = '"' in s
    sq = "'" in s
    if dq and sq:
        return '"' + s.replace('"', '\\"') + '"'
    if dq:
        return "'" + s + "'"
    return '"' + s + '"'


def prefix_lines(s: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in s.split("\n"))


# ----------------------------------------------------------------------------- URLs (Go net/url)

_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
_PATH_OK = set(_UNRESERVED + "$&+,/:;=@!'()*[]")  # Go shouldEscape(encodePath) == false (+ sub-delims kept)
_FRAG_OK = set(_UNRESERVED + "$&+,/:;=@!'()*?[]")
_HEX = set("0123456789abcdefABCDEF")
_PCT_REPLACE = {" ": "%20", "[": "%5B", "]": "%5D", "(": "%28", ")": "%29", "<": "%3C", ">": "%3E"}
_PCT_RE = re.compile(r"[ \[\]()<>]")
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")


def _pct_replace(s: str) -> str:
    return _PCT_RE.sub(lambda m: _PCT_REPLACE[m.group(0)], s)


class _BadURL(ValueError):
    pass


def _unescape(s: str, plus_space: bool) -> bytes:
    # Go url.unescape: reject malformed % escapes.
    i = 0
    n = len(s)
    while True:
        i = s.find("%", i)
        if i < 0:
            break
        if i + 2 >= n + 0 and not (i + 2 < n + 1 and i + 2 <= n - 1):
            raise _BadURL(s)
        if s[i + 1] not in _HEX or s[i + 2] not in _HEX:
            raise _BadURL(s)
        i += 3
    if plus_space:
        s = s.replace("+", " ")
    return unquote_to_bytes(s)


def _query_escape(b: bytes) -> str:
    return quote(b, safe="").replace("%20", "+") if False else quote(b, safe="-_.~").replace("%20", "+")


def _decode_encode(part: str) -> str:
    try:
        raw = _unescape(part, True)
    except _BadURL:
        return part
    return quote(raw, safe="-_.~").replace("%20", "+")


def _encode_query(q: str) -> str:
    if q == "":
        return ""
    out = []
    for part in q.split("&"):
        kv = part.split("=", 1)
        if len(kv) == 1:
            out.append(_decode_encode(kv[0]))
        elif kv[1] == "":
            out.append(_decode_encode(kv[0]) + "=")
        else:
            out.append(_decode_encode(kv[0]) + "=" + _decode_encode(kv[1]))
    return "&".join(out)


def _valid_encoded_re(ok: set) -> re.Pattern:
    """Matches strings of characters from ok or "%" (one regex match instead of a
    Python loop per character)."""
    return re.compile("[%" + re.escape("".join(sorted(ok))) + "]*")


_PATH_VALID = _valid_encoded_re(_PATH_OK)
_FRAG_VALID = _valid_encoded_re(_FRAG_OK)
_CONTROL_CHAR = re.compile("[\x00-\x1f\x7f]")


def _escape_component(s: str, ok: set, valid: re.Pattern) -> str:
    """Keep s when it is a valid encoding (Go validEncoded, ``valid`` being
    _valid_encoded_re(ok)), else re-encode its decoded form."""
    if valid.fullmatch(s):
        return s
    raw = unquote_to_bytes(s)
    return quote(raw, safe="".join(ok - {"%"}))


def assemble_url(raw: str) -> str:
    """Go html-to-markdown's defaultAssembleAbsoluteURL with no domain."""
    raw = raw.strip(GO_SPACE)
    if raw == "#":
        return raw
    raw = raw.replace("\n", "%0A").replace("\t", "%09")
    try:
        if _CONTROL_CHAR.search(raw):
            raise _BadURL(raw)
        rest = raw
        frag = None
        if "#" in rest:
            rest, frag = rest.split("#", 1)
            _unescape(frag, False)
        scheme = ""
        m = _SCHEME_RE.match(rest)
        if m:
            scheme = m.group(1).lower()
            rest = rest[m.end():]
        elif rest.startswith(":"):
            raise _BadURL(raw)
        if scheme == "data":
            return _pct_replace(raw)
        query = None
        if "?" in rest:
            rest, query = rest.split("?", 1)
        if scheme and not rest.startswith("/"):
            # opaque (mailto:, tel:, ...)
            result = scheme + ":" + rest
        else:
            authority = None
            path = rest
            if rest.startswith("//"):
                authority_end = rest.find("/", 2)
                if authority_end < 0:
                    authority, path = rest[2:], ""
                else:
                    authority, path = rest[2:authority_end], rest[authority_end:]
            elif not scheme:
                first = rest.split("/", 1)[0]
                if ":" in first:
                    raise _BadURL(raw)
            _unescape(path, False)
            path_out = _escape_component(path, _PATH_OK, _PATH_VALID)
            result = (scheme + ":" if scheme else "")
            if authority is not None:
                if any(c in authority for c in " <>\"{}|\\^`"):
                    raise _BadURL(raw)
                result += "//" + authority
            result += path_out
        if query is not None:
            q = _encode_query(query).replace("+", "%20")
            if q or query == "":
                result += "?" + q
            if query == "":
                result = result  # Go drops a bare "?" (ForceQuery false)
                result = result[:-1]
        if frag is not None and frag != "":
            result += "#" + _escape_component(frag, _FRAG_OK, _FRAG_VALID)
        return _pct_replace(result)
    except _BadURL:
        return _pct_replace(raw)


# ----------------------------------------------------------------------------- un-escaping

def _line_start_before(s: str, i: int) -> bool:
    """Only markers/spaces between the previous newline (or start) and i."""
    j = i - 1
    while j >= 0:
        c = s[j]
        if c == "\n":
            return True
        if c != ESC and c != " ":
            return False
        j -= 1
    return True


def _next_char(s: str, i: int) -> str:
    """The next character after i that is not a marker ("" at the end)."""
    j = i + 1
    n = len(s)
    while j < n:
        if s[j] != ESC:
            return s[j]
        j += 1
    return ""


def _prev_char(s: str, i: int) -> str:
    j = i - 1
    while j >= 0:
        if s[j] != ESC:
            return s[j]
        j -= 1
    return ""


# escape.IsSpace (a byte test: as the first byte of a UTF-8 character only ASCII
# white space can match) and unicode.IsSpace.
_BYTE_SPACE = frozenset("\t\n\v\f\r ")
_ASCII_DIGITS = frozenset("0123456789")


def _needs_escape(s: str, i: int) -> int:
    """Whether the marked character s[i] must be escaped: the commonmark plugin's
    un-escapers (internal/escape, v2.5.0) in their registered order.  Returns how
    many characters the decision covers (markers inside are not looked at again),
    or -1 to drop the marker."""
    c = s[i]
    n = len(s)
    # IsItalicOrBold
    if c == "*" or c == "_":
        nxt = _next_char(s, i)
        if nxt and nxt not in _GO_SPACE_SET:
            return 1
    # IsBlockQuote
    if c == ">":
        return 1 if _line_start_before(s, i) else -1
    # IsAtxHeader
    if c == "#":
        if not _line_start_before(s, i):
            return -1
        count = 1
        for j in range(i + 1, n):
            d = s[j]
            if d == "#":
                count += 1
                if count > 6:
                    return -1
            elif d == ESC:
                continue
            elif d in " \t\n\r":
                return j - i
            else:
                return -1
        return 1
    # IsSetextHeader: directly below a line with content
    if c == "=" or c == "-":
        newlines = 0
        j = i - 1
        while j >= 0:
            d = s[j]
            if d == ESC or d == " ":
                j -= 1
                continue
            if d == "\n":
                newlines += 1
                j -= 1
                continue
            if newlines == 1:
                return 1
            break
    # IsDivider: three or more of the same character alone on a line
    if (c == "-" or c == "_" or c == "*") and _line_start_before(s, i):
        count = 1
        last = n
        ok = True
        for j in range(i + 1, n):
            d = s[j]
            if d == ESC or d == " ":
                continue
            if d == c:
                count += 1
                continue
            if d == "\n":
                last = j
                break
            ok = False
            break
        if ok and count >= 3:
            return last - i
    # IsOrderedList: digits at the line start, then "." or ")" and white space
    if c == "." or c == ")":
        if _prev_char(s, i) not in _ASCII_DIGITS:
            return -1
        j = i - 1
        while j >= 0:
            d = s[j]
            if d == "\n":
                break
            if d != " " and d != ESC and d not in _ASCII_DIGITS:
                return -1
            j -= 1
        nxt = _next_char(s, i)
        return 1 if nxt == "" or nxt in _BYTE_SPACE else -1
    # IsUnorderedList
    if (c == "-" or c == "*" or c == "+") and _line_start_before(s, i):
        nxt = _next_char(s, i)
        if nxt == "" or nxt in _BYTE_SPACE:
            return 1
    # IsImageOrLink
    if c == "!":
        return 1 if i + 1 < n and s[i + 1] == "[" else -1
    if c == "[":
        end = s.find("\n", i + 1)
        return 1 if s.find("]", i + 1, n if end < 0 else end) >= 0 else -1
    # IsFencedCode, IsInlineCode
    if c == "`" or c == "~":
        if _line_start_before(s, i):
            count = 1
            j = i + 1
            while j < n:
                d = s[j]
                if d == ESC:
                    j += 1
                    continue
                if d == "`" or d == "~":
                    count += 1
                    j += 1
                    continue
                break
            if count >= 3:
                return j - i
        return 1 if c == "`" else -1
    # IsBackslash
    if c == "\\":
        return 1
    return -1


# Shortcuts for _needs_escape, decided without looking at the context:
_ALWAYS_ESCAPED = frozenset("\\")
_NEVER_ESCAPED = frozenset("|$\"'](")  # no un-escaper handles them
_DIGIT_OR_SPACE = frozenset("0123456789 " + ESC)


def unescape_content(s: str) -> str:
    """Turn escape markers into backslashes where needed; drop the others
    (converter.unEscapeContent)."""
    if ESC not in s:
        return s
    out = []
    start = 0
    n = len(s)
    i = s.find(ESC)
    while i >= 0:
        out.append(s[start:i])
        start = i + 1
        if i + 1 >= n:
            break
        c = s[i + 1]
        if c in _ALWAYS_ESCAPED:
            skip = 1
        elif c in _NEVER_ESCAPED:
            skip = -1
        elif c == "." and (i == 0 or s[i - 1] not in _DIGIT_OR_SPACE):
            skip = -1  # the most common case: "." not after a number ("1.")
        else:
            skip = _needs_escape(s, i + 1)
        if skip == -1:
            i = s.find(ESC, i + 1)
            continue
        out.append("\\")
        if skip > 1:
            # markers inside the covered characters are dropped unexamined
            covered_end = i + skip
            out.append(s[i + 1:covered_end].replace(ESC, ""))
            start = covered_end
            i = s.find(ESC, covered_end)
        else:
            i = s.find(ESC, i + 1)
    out.append(s[start:])
    return "".join(out)


# ----------------------------------------------------------------------------- DOM passes

def _is_ws_text(node) -> bool:
    return isinstance(node, NavigableString) and not isinstance(node, Comment) and not node.strip(GO_SPACE)


def _merge_adjacent_text(root: Tag) -> None:
    """Join text nodes left next to each other by removals (domutils.MergeAdjacentTextNodes)."""
    for node in list(root.descendants):
        if type(node) is NavigableString and node.parent is not None:
            nxt = node.next_sibling
            if type(nxt) is NavigableString:
                merged = str(node)
                while type(nxt) is NavigableString:
                    merged += str(nxt)
                    after = nxt.next_sibling
                    nxt.extract()
                    nxt = after
                node.replace_with(NavigableString(merged))


def _sole_child(tag: Tag):
    """The only child that is not whitespace text, else None."""
    found = None
    for c in tag.contents:
        if _is_ws_text(c):
            continue
        if found is not None:
            return None
        found = c
    return found


def _swap(outer: Tag, inner: Tag) -> None:
    outer.name, inner.name = inner.name, outer.name
    outer.attrs, inner.attrs = inner.attrs, outer.attrs


def _next_neighbor(node, own_child: bool = True):
    """dom.GetNextNeighborNode (own_child) / ...ExcludingOwnChild: the first child,
    else the next sibling, else the next sibling of the nearest ancestor that has one."""
    if own_child and isinstance(node, Tag) and node.contents:
        return node.contents[0]
    while node is not None:
        nxt = node.next_sibling
        if nxt is not None:
            return nxt
        node = node.parent
    return None


def _prev_neighbor(node, own_child: bool = True):
    """dom.GetPrevNeighborNode (it, too, looks at the *first* child) / ...ExcludingOwnChild."""
    if own_child and isinstance(node, Tag) and node.contents:
        return node.contents[0]
    while node is not None:
        prev = node.previous_sibling
        if prev is not None:
            return prev
        node = node.parent
    return None


def _merge_adjacent(tags, names) -> None:
    """domutils.MergeAdjacent: the nodes with one of ``names`` that follow a node with
    one of them (through spans, but not through text) lose their tag, their children
    moving into the first."""
    for el in tags:
        if el.name not in names or el.parent is None:
            continue
        collected = []
        node = el.next_sibling
        while node is not None:
            if isinstance(node, Tag) and node.name == "span":
                node = _next_neighbor(node)
            elif isinstance(node, Tag) and node.name in names:
                collected.append(node)
                node = _next_neighbor(node, own_child=False)
            else:
                break
        for node in collected:
            for child in list(node.contents):
                el.append(child.extract())
            node.extract()


def _first_code_through_spans(el, last: bool):
    node = el.contents[-1 if last else 0] if el.contents else None
    while node is not None:
        if isinstance(node, Tag) and node.name == "span":
            node = _prev_neighbor(node) if last else _next_neighbor(node)
        elif isinstance(node, Tag) and node.name in INLINE_CODE:
            return node
        else:
            return None
    return None


def _text_beside(el, after: bool):
    node = _next_neighbor(el, own_child=False) if after else _prev_neighbor(el, own_child=False)
    while node is not None:
        if type(node) is NavigableString:
            return node
        if isinstance(node, Tag) and node.name == "span":
            node = _next_neighbor(node) if after else _prev_neighbor(node)
            continue
        return None
    return None


def _add_space_around_code(tags) -> None:
    """domutils.AddSpace: bold/italic that starts (ends) with inline code gets a space
    added to the text before (after) it."""
    for el in tags:
        if el.name not in EMPH or el.parent is None:
            continue
        if _first_code_through_spans(el, last=False) is not None:
            prev = _text_beside(el, after=False)
            if prev is not None:
                prev.replace_with(NavigableString(str(prev) + " "))
        if _first_code_through_spans(el, last=True) is not None:
            nxt = _text_beside(el, after=True)
            if nxt is not None:
                nxt.replace_with(NavigableString(" " + str(nxt)))


def _has_text(el) -> bool:
    return any(type(d) is NavigableString and d for d in el.descendants)


def _prepare(root: Tag, soup: BeautifulSoup) -> None:
    """All pre-render passes except whitespace collapsing, in one walk where possible."""
    # 1. remove nodes (comments, scripts, ...).  The same walk collects the tags
    # (document order), which stays valid when nothing had to be removed.
    doomed = []
    tags = []
    leading_newline = []
    for node in root.descendants:
        if isinstance(node, Tag):
            tags.append(node)
            if node.name in REMOVE_TAGS:
                doomed.append(node)
            elif node.name == "pre" and node.contents and type(node.contents[0]) is NavigableString:
                leading_newline.append(node.contents[0])
        elif isinstance(node, NavigableString) and type(node) is not NavigableString:
            doomed.append(node)  # comments, CDATA, processing instructions, doctype
    # An HTML parser drops a newline right after <pre> (lxml's does not).
    for text in leading_newline:
        if text.startswith("\n"):
            text.replace_with(NavigableString(text[1:]))
    if doomed:
        for node in doomed:
            if node.parent is not None and not getattr(node, "decomposed", False):
                node.extract()
        _merge_adjacent_text(root)
        tags = [t for t in root.descendants if isinstance(t, Tag)]

    # spans holding a block become divs.  A span is renamed iff it has a descendant
    # with a block name (a renamed span only counts because of its own block), so
    # walking up from each block marks the same spans as a descendant search per span.
    if any(el.name == "span" for el in tags):
        for el in tags:
            if el.name in BLOCK_TAGS:
                p = el.parent
                while p is not root and p is not None:
                    if p.name == "span":
                        p.name = "div"
                    p = p.parent
    # 2. redundant nested bold/italic, nested links
    for el in tags:
        name = el.name
        if name in EMPH or name == "a":
            p = el.parent
            while p is not None and p is not root:
                pn = p.name
                if (name in BOLD and pn in BOLD) or (name in ITALIC and pn in ITALIC) or (name == "a" and pn == "a"):
                    el.unwrap()
                    break
                p = p.parent
    # 3. adjacent bold/italic merge into the first, whatever their kind (a span in
    # between is looked through); then the same for inline code, after empty code
    # is removed and code around a lone pre becomes pre around code
    if any(el.name in EMPH for el in tags):
        _merge_adjacent(tags, EMPH)
    if any(el.name in INLINE_CODE for el in tags):
        # 4. empty code is removed
        for el in tags:
            if el.name == "code" and el.parent is not None and not _has_text(el):
                el.extract()
        for el in tags:
            if el.name in INLINE_CODE and el.parent is not None:
                inner = _sole_child(el)
                if isinstance(inner, Tag) and inner.name == "pre":
                    _swap(el, inner)
        _merge_adjacent(tags, INLINE_CODE)
        _add_space_around_code(tags)
    # 5. bold/italic around a lone link -> link around bold/italic; link around heading -> heading around link
    for el in tags:
        if el.parent is None or not (el.name in EMPH or el.name == "a"):
            continue
        inner = _sole_child(el)
        if isinstance(inner, Tag):
            if el.name in EMPH and inner.name == "a":
                _swap(el, inner)
            elif el.name == "a" and inner.name in HEADINGS:
                _swap(el, inner)
    # 6. leaf-block alternatives (blocks inside inline or leaf elements)
    _leaf_alternatives(root, soup, tags)
    # 7. stray children of lists go into the previous li
    for lst in tags:
        if lst.name not in ("ul", "ol") or lst.parent is None:
            continue
        prev_li = None
        for child in list(lst.children):
            if isinstance(child, Tag) and child.name == "li":
                prev_li = child
                continue
            if _is_ws_text(child):
                continue
            if prev_li is not None:
                prev_li.append(child.extract())
            else:
                new_li = soup.new_tag("li")
                child.insert_before(new_li)
                new_li.append(child.extract())
                prev_li = new_li
    return tags


_ALT_TARGET = _CONTAINER | _LEAF  # replaced when inside one of:
_ALT_CONTEXT = _LEAF | _INLINE


def _leaf_alternatives(root: Tag, soup, tags) -> None:
    """Replace container/leaf blocks that sit inside a leaf or inline element.

    Done per candidate (``tags`` in document order) by looking at its ancestors
    instead of walking the whole tree with in-leaf/in-inline flags: the flags are
    "some ancestor below root has a leaf/inline name", and an ancestor renamed
    earlier in this pass becomes span/strong/code (inline) only because it was
    itself inside such an element, so the current names give the same answer.
    """
    for child in tags:
        name = child.name
        if name not in _ALT_TARGET:
            continue  # (also skips decomposed tags: their name is "")
        p = child.parent
        inside = False
        while p is not root:
            if p is None:
                break  # detached (unwrapped/removed earlier)
            if p.name in _ALT_CONTEXT:
                inside = True
            p = p.parent
        if not inside or p is None:
            continue
        if name in HEADINGS:
            child.name = "strong"
            child.insert_after(soup.new_tag("br"))
        elif name == "blockquote":
            child.insert_before(NavigableString(' "'))
            child.insert_after(NavigableString('" '))
            child.name = "span"
        elif name == "pre":
            child.name = "code"
        elif name == "hr":
            child.decompose()
        else:
            child.name = "span"


_COLLAPSE_BREAK = BLOCK_TAGS | {"br"}  # drop the previous text's trailing space
# the next text keeps its leading space: the collapse's own void list (it has
# "command" and, unlike the HTML one, not "source"), and preformatted elements
_COLLAPSE_KEEP = frozenset(
    "area base br col command embed hr img input keygen link meta param track wbr pre code".split()
)


def _collapse(root: Tag) -> dict:
    """turndown's collapse-whitespace (as ported to Go by html-to-markdown).

    Returns the new text of each text node it changes, by ``id(node)`` ("" for a
    node that is dropped); the tree itself is left alone.  Editing it (a bs4
    extract/replace_with per node, ~20 per release) cost as much as the walk, and
    only the renderer reads these texts (see ReleaseConverter._collapsed).
    """
    # The kept text nodes in document order and their new text: the "previous
    # text" of the algorithm is always the last one (while has_prev), so the
    # parallel lists replace a node -> text map while walking.  (str methods
    # rather than slicing: NavigableString overrides __getitem__.)
    nodes: list = []
    vals: list = []
    changed: dict = {}
    has_prev = False
    keep_leading = False

    def visit_element(name):
        nonlocal has_prev, keep_leading
        if name in _COLLAPSE_BREAK:
            if has_prev and vals[-1].endswith(" "):
                vals[-1] = vals[-1][:-1]
            has_prev = keep_leading = False
        elif name in _COLLAPSE_KEEP:
            has_prev = False
            keep_leading = True
        elif has_prev:
            keep_leading = False

    def walk(el):
        # Elements are visited on the way in and, when they have children, again on
        # the way out (as the Go port's iterative traversal does).
        nonlocal has_prev, keep_leading
        for node in el.contents:
            if isinstance(node, Tag):
                name = node.name
                visit_element(name)
                if name != "pre" and name != "code" and node.contents:  # preformatted: kept as is
                    walk(node)
                    visit_element(name)
            elif isinstance(node, NavigableString):
                t = node
                if "\t" in t or "\n" in t or "\r" in t or "  " in t:
                    t = _WS_RUN.sub(" ", t)
                if t.startswith(" ") and not keep_leading and (
                    not has_prev or vals[-1].endswith(" ")
                ):
                    t = t[1:]
                if not t:
                    changed[id(node)] = ""
                    continue
                nodes.append(node)
                vals.append(t)
                has_prev = True

    walk(root)
    if has_prev and vals[-1].endswith(" "):
        vals[-1] = vals[-1][:-1]
    for node, t in zip(nodes, vals):
        if t != node:
            changed[id(node)] = t
    return changed


def _find_body(soup):
    for html in soup.contents:
        if isinstance(html, Tag) and html.name == "html":
            for el in html.contents:
                if isinstance(el, Tag) and el.name == "body":
                    return el
    return soup


def _add_list_end_comments(tags) -> None:
    for lst in tags:
        if lst.name not in ("ul", "ol") or lst.parent is None:
            continue
        nxt = lst.next_sibling
        while nxt is not None and _is_ws_text(nxt):
            nxt = nxt.next_sibling
        if isinstance(nxt, Tag) and nxt.name in ("ul", "ol"):
            lst.insert_after(_ListEnd("THE END"))


class _ListEnd(Comment):
    pass


_NO_TAGS = frozenset()


def _mark(m) -> str:
    return ESC + m.group()


def _escape_text(text: str, in_link: bool) -> str:
    """A text node as rendered: ``<``/``>`` as references, an escape marker before every
    escapable character, NUL -> U+FFFD; ``]`` inside a link is always escaped."""
    if "<" in text or ">" in text:
        text = text.translate(_ENTITY_TABLE)
    if "\0" in text:
        text = text.replace("\0", "\ufffd")
    # (a callable replacement is faster here than the "\x07\\g<0>" template)
    text = _ESCAPED_RE.sub(_mark, text)
    if in_link:
        text = text.replace(ESC + "]", "\\]")
    return text


# ----------------------------------------------------------------------------- converter

class ReleaseConverter(MarkdownConverter):
    """markdownify converter with html-to-markdown v2.5.0 (commonmark) conventions."""

    class Options(MarkdownConverter.DefaultOptions):
        # bs4 turns a text of ASCII white space into one space or newline, except in
        # these tags; the reference keeps inline code's white space as it is
        bs4_options = {
            "features": "lxml",
            "preserve_whitespace_tags": ["pre", "textarea", "code", "var", "samp", "kbd", "tt"],
        }
        heading_style = "atx"
        bullets = "-"
        strong_em_symbol = "*"
        escape_asterisks = False
        escape_underscores = False
        escape_misc = False

    STRONG = "**"
    EM = "*"
    HR = "* * *"

    def __init__(self, **options):
        super().__init__(**options)
        self._rules = {}  # tag name -> (rule, is_raw); see _rule

    # -- entry points
    def convert(self, html):
        soup = BeautifulSoup(html, **self.options["bs4_options"])
        return self.convert_soup(soup)

    # Collapsed texts of the tree being rendered (from _collapse: id(text node) ->
    # text, "" = dropped).  Every read of a text node's content while rendering
    # goes through it: process_tag, process_text and convert_code.
    _collapsed: dict = {}

    def convert_soup(self, soup):
        root = _find_body(soup)
        tags = _prepare(root, soup)
        collapsed = _collapse(root)
        _add_list_end_comments(tags)  # (dropped texts are white space: skipped anyway)
        self._collapsed = collapsed
        try:
            text = self.process_tag(root, set())
        finally:
            del self._collapsed
        return self.post_render(text)

    def post_render(self, text: str) -> str:
        text = go_trim(text)
        text = trim_consecutive_newlines(text)
        text = trim_unnecessary_hard_line_breaks(text)
        text = unescape_content(text)
        return go_trim(text)

    # -- tree walking (plain concatenation, like the reference's renderer)
    def _rule(self, name):
        """(rule, is_raw) for a tag name, cached per converter (this runs for every
        element, so avoid markdownify's lookup method and a getattr per call)."""
        rule = self._rules.get(name)
        if rule is None:
            fn = self.get_conv_fn_cached(name)
            rule = self._rules[name] = (fn, fn is not None and getattr(fn, "_raw", False))
        return rule

    def process_tag(self, node, parent_tags=None):
        if parent_tags is None:
            parent_tags = _NO_TAGS
        name = node.name
        fn, raw = self._rule(name)
        if raw:
            return fn(node, None, parent_tags)
        if name == "a" or name in HEADINGS:
            child_tags = parent_tags | {name}
        else:
            child_tags = parent_tags
        in_link = "a" in child_tags
        collapsed = self._collapsed
        parts = []
        for child in node.contents:
            if isinstance(child, Tag):
                parts.append(self.process_tag(child, child_tags))
            elif isinstance(child, Comment):
                if isinstance(child, _ListEnd):
                    parts.append("\n\n<!--THE END-->\n\n")
            elif isinstance(child, NavigableString):
                parts.append(_escape_text(collapsed.get(id(child), child), in_link))
        text = "".join(parts)
        if fn is not None:
            return fn(node, text, parent_tags)
        if name in BLOCK_TAGS:
            return "\n\n" + text + "\n\n"
        return text

    def process_text(self, el, parent_tags=None):
        text = self._collapsed.get(id(el), el)
        return _escape_text(text, bool(parent_tags) and "a" in parent_tags)

    def get_conv_fn(self, tag_name):
        """Only this class's own rules apply; markdownify's defaults (p, div, li,
        table cells, ...) are not the reference's conventions: tags without a rule
        pass their content through (block tags with a blank line around)."""
        if tag_name in HEADINGS:
            return functools.partial(self.convert_hN, int(tag_name[1]))
        name = "convert_%s" % re.sub(r"[\[\]:-]", "_", tag_name.lower())
        for klass in type(self).__mro__:
            if klass is MarkdownConverter:
                return None
            if name in vars(klass):
                return getattr(self, name)
        return None

    # -- rules
    def _emphasis(self, text, delim):
        if not go_trim(text):
            return text
        return delimiter_for_every_line(text, delim)

    def convert_b(self, el, text, parent_tags):
        return self._emphasis(text, self.STRONG)

    convert_strong = convert_b

    def convert_i(self, el, text, parent_tags):
        return self._emphasis(text, self.EM)

    convert_em = convert_i

    def convert_a(self, el, text, parent_tags):
        href = assemble_url(el.get("href") or "")
        title = (el.get("title") or "").replace("\n", " ")
        if href == "":
            title = ""
        # (no fallback to the title for a link without content: v2.5.0 dropped it)
        left, trimmed, right = surrounding_spaces(text)
        trimmed = escape_multiline(trim_consecutive_newlines(trimmed))
        out = left + "[" + trimmed + "](" + href
        if title:
            out += " " + surround_by_quotes(title)
        return out + ")" + right

    def convert_img(self, el, text, parent_tags):
        src = (el.get("src") or "").strip(GO_SPACE)
        if not src:
            return ""
        src = assemble_url(src)
        title = (el.get("title") or "").replace("\n", " ")
        alt = (el.get("alt") or "").replace("\n", " ")
        alt = _escape_alt(alt)
        out = "![" + alt + "](" + src
        if title:
            out += " " + surround_by_quotes(title)
        return out + ")"

    def convert_br(self, el, text, parent_tags):
        return "  \n"

    def convert_hr(self, el, text, parent_tags):
        return "\n\n" + self.HR + "\n\n"

    def convert_hN(self, n, el, text, parent_tags):
        if not text.strip(GO_SPACE):
            return ""
        content = text.replace("\n", " ").replace("\r", " ")
        content = _MULTI_SPACE.sub(" ", content)
        content = go_trim(content)
        if content.endswith("#") and not (len(content) >= 3 and content[-3] == "\\"):
            content = content[:-2] + "\\#" if content[-2:-1] == ESC else content[:-1] + "\\#"
        return "\n\n" + "#" * n + " " + content + "\n\n"

    def convert_blockquote(self, el, text, parent_tags):
        content = go_trim(text)
        if not content:
            return ""
        content = trim_consecutive_newlines(content)
        # A hard line break before a blank line (or at the end) means nothing:
        # "a<br><br>b" is "> a", "> ", "> b"; a single <br> keeps its "  ".
        content = trim_unnecessary_hard_line_breaks(content)
        return "\n\n" + prefix_lines(content, "> ") + "\n\n"

    def convert_code(self, el, text, parent_tags):
        # (renderInlineCode) the raw text, not collapsed: only white space is kept
        # as it is, anything else has its white space runs made one space
        content, _ = _code_without_tags(el)
        if not content.strip(GO_SPACE):
            return "`" + content + "`"
        content = content.replace("\n", " ").replace("\t", " ").strip(GO_SPACE)
        content = _MULTI_SPACE.sub(" ", content)
        fence = "`" * (_longest_run(content, "`") + 1)
        if content.startswith("`"):
            content = " " + content
        if content.endswith("`"):
            content = content + " "
        return fence + content + fence

    convert_kbd = convert_samp = convert_tt = convert_var = convert_code

    def convert_pre(self, el, text, parent_tags):
        content, lang = _code_without_tags(el)
        if content.endswith("\n"):
            content = content[:-1]
        fence = "`" * max(3, _longest_run(content, "`") + 1)
        # Newlines inside the block are kept from the newline trimming passes.
        return "\n\n" + fence + lang + "\n" + content.replace("\n", CODE_NEWLINE) + "\n" + fence + "\n\n"

    def _list(self, el, parent_tags):
        items = []
        child_tags = parent_tags | {el.name}
        for child in el.contents:
            if isinstance(child, Tag):
                content = self.process_tag(child, child_tags)
            elif isinstance(child, Comment):
                continue
            elif isinstance(child, NavigableString):
                content = self.process_text(child, child_tags)
            else:
                continue
            content = go_trim(content)
            if not content:
                continue
            items.append(content)
        if not items:
            return ""
        ordered = el.name == "ol"
        if ordered:
            try:
                start = int((el.get("start") or "1").strip())
            except ValueError:
                start = 1
            width = len(str(start + len(items) - 1))
        out = ["\n\n"]
        for i, item in enumerate(items):
            if ordered:
                num = start + i
                prefix = ("-" + str(-num).zfill(width - 1) if num < 0 else str(num).zfill(width)) + ". "
            else:
                prefix = "- "
            item = trim_consecutive_newlines(item)
            item = trim_unnecessary_hard_line_breaks(item)
            item = unescape_content(item)
            if "\n" in item:
                item = item.replace("\n", "\n" + " " * len(prefix))
            if CODE_NEWLINE in item:
                item = item.replace(CODE_NEWLINE, CODE_NEWLINE + " " * len(prefix))
            out.append(prefix)
            out.append(item)
            if i < len(items) - 1:
                out.append("\n")
        out.append("\n\n")
        return "".join(out)

    def convert_ul(self, el, text, parent_tags):
        return self._list(el, parent_tags)

    convert_ul._raw = True
    convert_ol = convert_ul

    # table parts have no rule in the reference (no table plugin): tbody/tr/td pass
    # their content through; table is a block.


def _code_language(el: Tag) -> str:
    for part in (el.get("class") or []):
        if "language-" in part or "lang-" in part:
            return part.replace("language-", "", 1).replace("lang-", "", 1)
    return ""


def _code_without_tags(pre: Tag) -> tuple[str, str]:
    """The text of a code block as written (getCodeWithoutTags): raw text, a newline
    for each ``br`` and ``div``; its language from the first ``pre``/``code`` class
    naming one."""
    out = []
    lang = ""

    def walk(node):
        nonlocal lang
        if isinstance(node, Tag):
            if not lang and node.name in ("code", "pre"):
                lang = _code_language(node)
            if node.name in ("br", "div"):
                out.append("\n")
            for child in node.contents:
                walk(child)
        elif type(node) is NavigableString:
            out.append(str(node))

    walk(pre)
    return "".join(out), lang


def _longest_run(s: str, ch: str) -> int:
    runs = re.findall(re.escape(ch) + "+", s)
    return max(map(len, runs)) if runs else 0


def _escape_alt(alt: str) -> str:
    out = []
    prev = ""
    for ch in alt:
        if ch in "[]" and prev != "\\":
            out.append("\\")
        out.append(ch)
        prev = ch
    return "".join(out)


_CONVERTER = ReleaseConverter()


# How deep a body may nest elements (lists in lists…). The converter recurses once or more
# per level: past about 250 elements it needs more than Python's default stack, and gets it
# (see _convert_deep); past MAX_NESTING it refuses the page, as a recorded failure that
# names the reason, rather than drop what is nested deep (the HTML parser itself stops
# nesting at about 2,000). A real release nests fewer than twenty; a list nested 250
# levels (500 elements) renders in under a second, 500 levels in a few: the Markdown grows
# with the square of the depth (each level indents every line inside it).
MAX_NESTING = 1000
DEEP_STACK = 512 * 1024 * 1024  # bytes of address space: reserved, used only as deep as needed


class ConversionError(ValueError):
    """A body the converter cannot render whole."""


def body_to_markdown(body_html: str) -> str:
    """Convert a release body (inner HTML) to Markdown: trimmed, no trailing newline."""
    if not body_html or not body_html.strip():
        return ""
    # Fewer tags than MAX_NESTING cannot nest deeper: most bodies skip the measure.
    depth = nesting_depth(body_html) if body_html.count("<") > MAX_NESTING else 0
    if depth > MAX_NESTING:
        raise ConversionError(f"the body nests elements {depth} deep, more than "
                              f"{MAX_NESTING}: not converted, rather than in part")
    try:
        markdown = _CONVERTER.convert(body_html)
    except RecursionError:
        markdown = _convert_deep(body_html)
    return markdown.replace(CODE_NEWLINE, "\n")


def nesting_depth(body_html: str) -> int:
    """How deep the body's elements nest, counted without recursion."""
    import lxml.html
    from lxml import etree

    depth = deepest = 0
    root = lxml.html.fragment_fromstring(body_html, create_parent="div",
                                         parser=lxml.html.HTMLParser(huge_tree=True))
    for event, _ in etree.iterwalk(root, events=("start", "end")):
        depth += 1 if event == "start" else -1
        deepest = max(deepest, depth)
    return deepest - 1  # not the wrapper


def _convert_deep(body_html: str) -> str:
    """The same conversion, for a body nested deeper than the default stack allows: in a
    thread of its own with a stack large enough for MAX_NESTING levels. Same code, same
    output; only the limits differ."""
    import sys
    import threading

    result: dict = {}

    def convert():
        try:
            result["markdown"] = _CONVERTER.convert(body_html)
        except BaseException as error:  # handed to the caller's thread
            result["error"] = error

    limit, size = sys.getrecursionlimit(), threading.stack_size()
    sys.setrecursionlimit(max(limit, 60 * MAX_NESTING))
    try:
        threading.stack_size(DEEP_STACK)
        thread = threading.Thread(target=convert, name="deep-convert")
        thread.start()
        thread.join()
    finally:
        threading.stack_size(size)
        sys.setrecursionlimit(limit)
    if "error" in result:
        if isinstance(result["error"], RecursionError):
            raise ConversionError("the body nests too deep to convert")
        raise result["error"]
    return result["markdown"]
