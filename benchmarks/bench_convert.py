"""Throughput of parse + render over the corpus pages, against bare markdownify.

    python benchmarks/bench_convert.py [PAGES_DIR] [--repeat N]

Prints pages/second for
  * rebuild: parse_release(region_html, url) + render_document + sha256 + write (to a temp dir)
  * parse+render from the captured pages
  * bare ``markdownify.markdownify(body_html)`` on the same bodies
and the rebuild / bare-markdownify ratio.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

import markdownify

from archive.parse import parse_release
from archive.render import render_document

DEFAULT_PAGES = Path(__file__).resolve().parent.parent / "tests" / "corpus" / "pages"


def _rate(fn, n_items: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n_items / best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("pages_dir", nargs="?", default=str(DEFAULT_PAGES))
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    pages = [p.read_bytes() for p in sorted(Path(args.pages_dir).rglob("*.html"))]
    releases = [parse_release(p) for p in pages]
    regions = [(r.region_html, r.url) for r in releases]
    bodies = [r.body_html for r in releases]
    n = len(pages)

    def parse_render():
        for p in pages:
            render_document(parse_release(p))

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)

        def rebuild():
            for i, (region, url) in enumerate(regions):
                text = render_document(parse_release(region, url)).encode("utf-8")
                hashlib.sha256(text).hexdigest()
                (out / f"{i}.md").write_bytes(text)

        def bare():
            for b in bodies:
                markdownify.markdownify(b)

        # warm up
        rebuild(); bare(); parse_render()
        r_rebuild = _rate(rebuild, n, args.repeat)
        r_pages = _rate(parse_render, n, args.repeat)
        r_bare = _rate(bare, n, args.repeat)
    print(f"pages: {n}, repeat: {args.repeat} (best run)")
    print(f"rebuild (parse region + render + sha256 + write): {r_rebuild:8.1f} pages/s")
    print(f"parse + render (captured pages):                  {r_pages:8.1f} pages/s")
    print(f"bare markdownify.markdownify(body_html):          {r_bare:8.1f} pages/s")
    print(f"rebuild / bare markdownify:                       {r_rebuild / r_bare:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
