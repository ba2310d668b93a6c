"""Measure the WARC captures' size per 1,000 releases (issue 12, requirement 3).

    python benchmarks/bench_warc.py              # 1,000 releases, the replica uncompressed and gzipped
    python benchmarks/bench_warc.py --releases 2000

Crawls the local replica (tests/replica.py: the corpus cloned to N releases, pages in a
~35 KB shell) with ``beehive crawl --warc`` in a child process, once with the replica sending
pages uncompressed and once gzipped (as a site does for a client that accepts gzip; the
WARC then keeps the gzipped bytes), and prints the WARC bytes per 1,000 releases beside the
bytes of the release pages served, so the figure can be scaled to the live site's ~350 KB
pages.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.replica import Replica  # noqa: E402
from tests.run import crawl, summary  # noqa: E402


def measure(releases: int, compress: bool, folder: Path) -> dict:
    with Replica(page_size=50) as site:
        site.synthesize(max(0, releases - len(site.slugs)))
        site.compress = compress
        out = folder / ("gzip" if compress else "plain")
        result = crawl(site, out, "--warc", timeout=1800)
        if result.returncode != 0:
            sys.exit(result.stderr[-3000:])
        figures = summary(result)
        page = len(site.respond(f"/release/{site.slugs[0]}").body)
        warc = sum(p.stat().st_size for p in (out / "warc").iterdir())
        return {"releases": int(figures["new"]), "requests": int(figures["requested"]),
                "page": page, "warc": warc}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--releases", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-warc-") as folder:
        for compress in (False, True):
            m = measure(args.releases, compress, Path(folder))
            per_1000 = m["warc"] / m["releases"] * 1000
            print(f"{'gzip' if compress else 'plain':5} transfer: {m['releases']} releases, "
                  f"{m['requests']} requests, release page {m['page'] / 1e3:.0f} KB "
                  f"uncompressed; WARC {m['warc'] / 1e6:.1f} MB = "
                  f"{per_1000 / 1e6:.1f} MB per 1,000 releases "
                  f"({m['warc'] / m['requests'] / 1e3:.1f} KB a response)")


if __name__ == "__main__":
    main()
