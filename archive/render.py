"""Release -> file text in the seed format.

```
---
title: "<Go strconv.Quote of the title>"
date: YYYY-MM-DD            (UTC date of the publication time)
url: <url>
ministers:                  (omitted when empty)
  - <name>
portfolios:                 (omitted when empty)
  - <name>
attachments:                (omitted when empty)
  - <absolute URL>
---

<body Markdown, trimmed, no newline at the end>
```

Values are written unquoted, as the reference does, except where the unquoted
text would not be valid YAML or would not read back as the same string (a
deliberate improvement over the reference): then they are double-quoted the same
way as the title.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import yaml

from .markdown import body_to_markdown
from .parse import Release

__all__ = ["render_document", "go_quote", "yaml_scalar", "render_front_matter"]

_SIMPLE_ESC = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}
_PLAIN_ASCII = re.compile(r'^[ !#-\[\]-~]*$')  # printable ASCII without " and \


def _go_is_print(ch: str) -> bool:
    if ch == " ":
        return True
    cat = unicodedata.category(ch)
    return cat[0] in "LMNPS"


def go_quote(s: str) -> str:
    """Go's strconv.Quote (what fmt's %q writes) for a valid UTF-8 string."""
    if _PLAIN_ASCII.match(s):
        return '"' + s + '"'
    out = ['"']
    for ch in s:
        esc = _SIMPLE_ESC.get(ch)
        if esc is not None:
            out.append(esc)
            continue
        o = ord(ch)
        if o < 0x80:
            if 0x20 <= o < 0x7F:
                out.append(ch)
            else:
                out.append("\\x%02x" % o)
        elif _go_is_print(ch):
            out.append(ch)
        elif o < 0x10000:
            out.append("\\u%04x" % o)
        else:
            out.append("\\U%08x" % o)
    out.append('"')
    return "".join(out)


# Plain scalars that are certainly read back as the same string by YAML 1.1 (PyYAML).
_SAFE_PLAIN = re.compile(r"^[A-Za-z\u00c0-\u024f\u1e00-\u1eff][\w \u00c0-\u024f\u1e00-\u1eff,.'()&/\-]*[\w.)\u00c0-\u024f\u1e00-\u1eff]$|^[A-Za-z]$")
_YAML_WORDS = frozenset(
    "y n yes no true false on off null".split()
)
_SAFE_URL = re.compile(r"^https?://[A-Za-z0-9.\-]+(?::\d+)?/[A-Za-z0-9\-._~/%!$&'()*+,;=@]*$")


@lru_cache(maxsize=4096)
def yaml_scalar(value: str, url: bool = False) -> str:
    """The value as the reference writes it (plain), or quoted when plain would not round-trip."""
    if url:
        if _SAFE_URL.match(value):
            return value
    elif _SAFE_PLAIN.match(value) and value.lower() not in _YAML_WORDS and "  " not in value:
        return value
    try:
        loaded = yaml.safe_load("k: " + value + "\n")
        if isinstance(loaded, dict) and list(loaded) == ["k"] and loaded["k"] == value and isinstance(loaded["k"], str):
            return value
    except yaml.YAMLError:
        pass
    return go_quote(value)


def render_front_matter(release: Release) -> str:
    lines = ["---", "title: " + go_quote(release.title), "date: " + release.date, "url: " + yaml_scalar(release.archive_url, True)]
    if release.ministers:
        lines.append("ministers:")
        lines.extend("  - " + yaml_scalar(m) for m in release.ministers)
    if release.portfolios:
        lines.append("portfolios:")
        lines.extend("  - " + yaml_scalar(p) for p in release.portfolios)
    if release.attachments:
        lines.append("attachments:")
        lines.extend("  - " + yaml_scalar(a, True) for a in release.attachments)
    lines.append("---")
    return "\n".join(lines) + "\n"


def render_document(release: Release) -> str:
    """The complete file text: front matter, blank line, body (no newline at the end)."""
    return render_front_matter(release) + "\n" + body_to_markdown(release.body_html)
