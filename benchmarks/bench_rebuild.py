"""Benchmark ``beehive rebuild``: throughput, peak memory and ledger size.

    python benchmarks/bench_rebuild.py                 # 5,000 and 20,000 releases
    python benchmarks/bench_rebuild.py --sizes 5000 --profile

For each size it synthesises a ledger from the corpus (every page under
tests/corpus/pages parsed with parse_release, cloned with distinct slugs and URLs, rows
written through Ledger.save_rendered, no network), then runs ``beehive rebuild`` in a child
process from an empty releases/ folder and reports:

- rebuild pages/second (wall clock of the rebuild itself, from its summary line, and of the
  whole command including interpreter start-up): from an empty releases/ folder, with
  nothing to do, and after a simulated converter change (every row's hash and body stale,
  so every file and row is written again and the full-text index re-indexed);
- bare ``markdownify.markdownify(body_html)`` over the same bodies, on one core, in this run;
- the ratio per core: (rebuild pages/s / cores used) / bare markdownify pages/s;
- peak memory (ru_maxrss) of the rebuild's main process and of its largest worker;
- the ledger's bytes per release (file size / releases), with the region and body shares.

Targets (issue 4): ratio >= 0.80 per core; >= 300 pages/s on 2 cores; peak memory flat
between 5,000 and 20,000 releases.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import json
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import markdownify  # noqa: E402

from archive.archiver import render  # noqa: E402
from archive.ledger import Ledger, compress  # noqa: E402
from archive.parse import SITE, parse_release  # noqa: E402
from archive.rebuild import default_jobs, render_stored  # noqa: E402

CORPUS = ROOT / "tests" / "corpus" / "pages"

# Runs the rebuild command in this child and reports the peak RSS of the child itself and
# (RUSAGE_CHILDREN, after the pool is shut down) of its largest worker.
CHILD = r"""
import json, resource, sys
from archive.cli import cli
try:
    cli.main(args=sys.argv[1:], prog_name="beehive", standalone_mode=False)
finally:
    print("BENCH " + json.dumps({
        "main_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "worker_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}),
        file=sys.stderr)
"""


def corpus_releases():
    releases = [parse_release(path.read_bytes()) for path in sorted(CORPUS.rglob("*.html"))]
    if not releases:
        sys.exit(f"no corpus pages under {CORPUS}")
    return releases


def clone(release, index: int):
    slug = f"{release.slug}-b{index}"
    return dataclasses.replace(release, slug=slug, url=f"{SITE}/release/{slug}")


def synthesise(ledger_path: Path, sources, n: int) -> None:
    """n ledger rows cloned round-robin from the corpus, written as a crawl writes them."""
    ledger = Ledger(ledger_path)
    regions = {release.url: compress(release.region_html) for release in sources}
    batch = []
    for index in range(n):
        source = sources[index % len(sources)]
        item = dataclasses.replace(render(clone(source, index), keep_region=False),
                                   region=regions[source.url])
        batch.append((item, None, None, False))
        if len(batch) == 500:
            ledger.save_rendered(batch, seen=True)
            batch = []
    if batch:
        ledger.save_rendered(batch, seen=True)
    ledger.close()


def run_rebuild(out: Path, jobs: int | None) -> dict:
    args = ["rebuild", "--out", str(out)] + (["--jobs", str(jobs)] if jobs else [])
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True,
                          cwd=ROOT)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"rebuild failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    summary = re.search(r"beehive summary: (.*)", proc.stderr).group(1)
    figures = dict(pair.split("=", 1) for pair in summary.split())
    memory = json.loads(re.search(r"BENCH (.*)", proc.stderr).group(1))
    return {"wall": wall, "elapsed": float(figures["elapsed"].rstrip("s")),
            "written": int(figures["written"]), "summary": summary, **memory}


def stale(ledger_path: Path) -> None:
    """Make every row look rendered by an older converter: a rebuild rewrites them all."""
    ledger = Ledger(ledger_path)
    with ledger.db.conn:
        ledger.db.execute("update releases set sha256 = 'stale', body = ''")
    ledger.close()


def bare_markdownify_rate(sources, n: int) -> float:
    bodies = [release.body_html for release in sources]
    started = time.perf_counter()
    for index in range(n):
        markdownify.markdownify(bodies[index % len(bodies)])
    return n / (time.perf_counter() - started)


def render_step_rate(ledger_path: Path, n: int) -> float:
    """The pure step alone (decompress, parse, render), one core, in this process."""
    ledger = Ledger(ledger_path)
    rows = ledger.db.execute("select url, region from releases order by url limit ?",
                             [n]).fetchall()
    ledger.close()
    started = time.perf_counter()
    for start in range(0, len(rows), 32):
        render_stored(rows[start:start + 32])
    return len(rows) / (time.perf_counter() - started)


def profile_render(ledger_path: Path, n: int = 2000) -> str:
    ledger = Ledger(ledger_path)
    rows = ledger.db.execute("select url, region from releases order by url limit ?",
                             [n]).fetchall()
    ledger.close()
    profiler = cProfile.Profile()
    profiler.enable()
    render_stored(rows)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
    stats.print_stats(25)
    return out.getvalue()


def ledger_breakdown(ledger_path: Path, n: int) -> dict:
    ledger = Ledger(ledger_path)
    region, body = ledger.db.execute(
        "select sum(length(region)), sum(length(cast(body as blob))) from releases").fetchone()
    ledger.close()
    size = ledger_path.stat().st_size
    return {"bytes_per_release": size / n, "region_per_release": region / n,
            "body_per_release": body / n, "ledger_mb": size / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="5000,20000",
                        help="comma-separated ledger sizes (default: 5000,20000)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="rebuild processes (default: one per available core)")
    parser.add_argument("--single", action="store_true",
                        help="also time a one-process rebuild (--jobs 1) at the first size")
    parser.add_argument("--profile", action="store_true",
                        help="profile the render step and print where the time goes")
    parser.add_argument("--keep", help="keep the synthesised archives under this folder")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    cores = args.jobs or default_jobs()
    sources = corpus_releases()
    print(f"corpus: {len(sources)} pages; cores used by rebuild: {cores}; "
          f"python {sys.version.split()[0]}")

    workdir = Path(args.keep or tempfile.mkdtemp(prefix="bench-rebuild-"))
    results = []
    try:
        for position, n in enumerate(sizes):
            out = workdir / f"archive-{n}"
            shutil.rmtree(out, ignore_errors=True)
            started = time.perf_counter()
            synthesise(out / "ledger.db", sources, n)
            print(f"\n== {n} releases (ledger synthesised in "
                  f"{time.perf_counter() - started:.1f}s)")
            rebuilt = run_rebuild(out, args.jobs)
            assert rebuilt["written"] == n, rebuilt["summary"]
            rate = n / rebuilt["elapsed"]
            print(f"rebuild from empty releases/: {rebuilt['elapsed']:.2f}s -> "
                  f"{rate:.0f} pages/s ({n / rebuilt['wall']:.0f} pages/s with start-up)")
            again = run_rebuild(out, args.jobs)
            print(f"rebuild with nothing to do:  {again['elapsed']:.2f}s -> "
                  f"{n / again['elapsed']:.0f} pages/s")
            stale(out / "ledger.db")
            upgrade = run_rebuild(out, args.jobs)
            print(f"rebuild after a converter change (every hash and body stale): "
                  f"{upgrade['elapsed']:.2f}s -> {n / upgrade['elapsed']:.0f} pages/s")
            bare = bare_markdownify_rate(sources, n)
            step = render_step_rate(out / "ledger.db", min(n, 5000))
            print(f"bare markdownify, 1 core:    {bare:.0f} pages/s")
            print(f"render step alone, 1 core:   {step:.0f} pages/s "
                  f"(ratio {step / bare:.2f} of bare markdownify)")
            print(f"ratio per core (rebuild / {cores} cores / bare): "
                  f"{rate / cores / bare:.2f}   [target >= 0.80]")
            print(f"overall: {rate:.0f} pages/s on {cores} cores   [target >= 300]")
            print(f"peak RSS: main {rebuilt['main_kb'] / 1024:.1f} MB, largest worker "
                  f"{rebuilt['worker_kb'] / 1024:.1f} MB")
            sizes_info = ledger_breakdown(out / "ledger.db", n)
            print(f"ledger: {sizes_info['ledger_mb']:.1f} MB, "
                  f"{sizes_info['bytes_per_release']:.0f} bytes/release (region "
                  f"{sizes_info['region_per_release']:.0f} compressed, body Markdown "
                  f"{sizes_info['body_per_release']:.0f}, the rest FTS index and fields); "
                  f"55,000 releases ~ {sizes_info['bytes_per_release'] * 55000 / 1e6:.0f} MB")
            if args.single and position == 0:
                shutil.rmtree(out / "releases")
                single = run_rebuild(out, 1)
                print(f"rebuild --jobs 1: {n / single['elapsed']:.0f} pages/s "
                      f"(ratio {n / single['elapsed'] / bare:.2f} of bare markdownify)")
            if args.profile and position == 0:
                print(profile_render(out / "ledger.db"))
            results.append({"n": n, "pages_per_s": rate, "bare": bare, "step": step,
                            "ratio_per_core": rate / cores / bare, **rebuilt, **sizes_info})
            if not args.keep:
                shutil.rmtree(out, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    if len(results) > 1:
        first, last = results[0], results[-1]
        print(f"\npeak RSS main {first['main_kb'] / 1024:.1f} MB at {first['n']} -> "
              f"{last['main_kb'] / 1024:.1f} MB at {last['n']}; worker "
              f"{first['worker_kb'] / 1024:.1f} -> {last['worker_kb'] / 1024:.1f} MB")


if __name__ == "__main__":
    main()
