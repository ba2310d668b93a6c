"""Rebuild a held-out release page from its fields, and fetch its expected file.

    python tests/corpus-heldout/make_page.py SOURCE.src... [--reference GIT_DIR]

A source file holds the fields of one release as the public extracts
(marcus-crane/beehive-extracts, json/releases/YYYY/MM/<name>.json) give them,
one per line, then the body's inner HTML exactly as stored:

    url https://www.beehive.govt.nz/release/<slug>
    time 2002-03-22T00:00:00Z
    shown 22 March 2002
    h1 Upgrade of police fleet continues          (the h1's inner HTML, entities kept)
    minister George Hawkins                       (archived: a plain span)
    minister Hon Chris Bishop|/minister/hon-chris-bishop   (current: a link)
    portfolio Police                              (repeatable; "Name|/portfolio/..." links)
    attachment https://www.beehive.govt.nz/sites/default/files/...
    body
    <p>...</p>

The page shell (canonical link, article, date line, title, minister and portfolio
markup, Related Documents aside) is written in the site's markup of the release's
era; the body is the stored HTML unchanged.  With --reference (a clone of
marcus-crane/beehive-markdown) the expected file is copied from it byte for byte.
"""
from __future__ import annotations

import argparse
import html
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def read_source(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    head, sep, body = text.partition("\nbody\n")
    if not sep:
        raise SystemExit(f"{path}: no 'body' line")
    fields: dict = {"minister": [], "portfolio": [], "attachment": []}
    for line in head.splitlines():
        if not line.strip():
            continue
        key, _, value = line.partition(" ")
        if key in fields and isinstance(fields[key], list):
            fields[key].append(value)
        else:
            fields[key] = value
    fields["body"] = body[:-1] if body.endswith("\n") else body
    return fields


def page_html(f: dict) -> str:
    out = [
        f'<link rel="canonical" href="{html.escape(f["url"])}">',
        '<div class="row"><article class="node node--type-article node--view-mode-full ds-three-col">',
        '<div class="ds-three-col__column ds-three-col__main">',
        f'<time class="meta meta__date" datetime=""><time datetime="{f["time"]}">{f.get("shown", "date")}</time>',
        "</time>",
        f'<h1 class="article__title">\n  {f["h1"]}\n</h1>',
    ]
    if f["minister"]:
        items = []
        for m in f["minister"]:
            name, _, href = m.partition("|")
            if href:
                items.append(
                    f'<li><div class="teaser--small minister"><a href="{href}" class="field-group-link minister__link">'
                    f'<div class="field minister__title">  {name}\n</div></a></div></li>'
                )
            else:
                items.append(f'<li><span class="is-archived">\n        {name}\n\n</span>\n</li>')
        out.append('<ul class="meta--ministers">' + "".join(items) + "</ul>")
    for p in f["portfolio"]:
        name, _, href = p.partition("|")
        if href:
            out.append(f'<em class="tag tag--portfolio"><div class="tag taxonomy-term"><a href="{href}" hreflang="en">{name}</a></div></em>')
        else:
            out.append(f'<em class="tag tag--portfolio"><span class="is-archived">\n    {name}\n\n</span>\n</em>')
    out.append(
        '<div class="prose field field--name-body field--type-text-with-summary field--label-hidden field--item">'
        + f["body"] + "</div>"
    )
    out.append("</div>")
    if f["attachment"]:
        links = "".join(
            f'<li><div class="file"><div class="file-link"><a href="{html.escape(a)}" target="_blank">doc</a></div></div></li>'
            for a in f["attachment"]
        )
        out.append(
            '<aside class="ds-three-col__column ds-three-col__right"><aside class="article__related">'
            f'<div class="field-label-above">Related Documents</div><ul>{links}</ul></aside></aside>'
        )
    out.append("</article></div>")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sources", nargs="+", type=Path)
    ap.add_argument("--reference", help="git directory of a marcus-crane/beehive-markdown clone")
    args = ap.parse_args(argv)
    for src in args.sources:
        f = read_source(src)
        name = src.stem  # YYYY-MM-DD-<slug>
        rel = f"{name[:4]}/{name[5:7]}/{name}"
        page = HERE / "pages" / (rel + ".html")
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(page_html(f), encoding="utf-8")
        if args.reference:
            blob = subprocess.run(
                ["git", "--git-dir", args.reference, "show", f"HEAD:releases/{rel}.md"],
                check=True, capture_output=True,
            ).stdout
            exp = HERE / "expected" / (rel + ".md")
            exp.parent.mkdir(parents=True, exist_ok=True)
            exp.write_bytes(blob)
    return 0


if __name__ == "__main__":
    sys.exit(main())
