"""Benchmark ``beehive rebuild``: throughput, peak memory and ledger size (issue 4, req. 7).

    python benchmarks/bench_rebuild.py                  # 5,000 and 20,000 releases, ~4 minutes
    python benchmarks/bench_rebuild.py --sizes 5000 --profile

For each size it synthesises a ledger from the corpus (every page under tests/corpus/pages
parsed with parse_release, cloned with distinct slugs and URLs, rows written through
Ledger.save_rendered as a crawl writes them, no network), then times ``beehive rebuild`` in a
child process, ``--repeat`` times each (default 3):

- from an empty releases/ folder (the previous tree is moved aside, and only deleted at the
  very end: ext4 makes creating files slower for a minute or so after thousands were deleted,
  which would otherwise be measured too);
- with nothing to do (every file already right: everything is rendered and compared);
- after a converter change (every row's hash and body stale and every file different, so
  every file and row is written again and the full-text index re-indexed).

Rates are the rebuild's own wall clock (its summary's elapsed). In the same run it measures
bare ``markdownify.markdownify(body_html)`` over the same bodies on one core, and the render
step alone (decompress, parse, render, compare, in this process) on one core. Every figure is
printed as median [min-max] over the repeats, so the machine's noise is visible. Then:

- the ratio per core: (rebuild from empty, pages/s / cores) / bare markdownify pages/s;
- peak memory (ru_maxrss) of the rebuild's main process and of its largest worker, per size;
- the ledger's bytes per release, with the region and body shares.

Targets: ratio >= 0.80 per core; >= 300 pages/s on 2 cores; peak memory flat between
5,000 and 20,000 releases.
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
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import markdownify  # noqa: E402

from archive.archiver import Archiver, render  # noqa: E402
from archive.ledger import Ledger, compress  # noqa: E402
from archive.parse import SITE, parse_release  # noqa: E402
from archive.rebuild import default_jobs, rebuild_batch, stored_batches  # noqa: E402

CORPUS = ROOT / "tests" / "corpus" / "pages"

# Runs the rebuild command in this child and reports the peak RSS of the child itself and
# (RUSAGE_CHILDREN, after the pool is shut down) of its largest worker. The child's own peak
# is VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so it would report this
# benchmark's own size (which grows with the synthesised archive) rather than the rebuild's.
CHILD = r"""
import json, re, resource, sys
from archive.cli import cli
try:
    cli.main(args=sys.argv[1:], prog_name="beehive", standalone_mode=False)
finally:
    status = open("/proc/self/status").read()
    print("BENCH " + json.dumps({
        "main_kb": int(re.search(r"VmHWM:\s+(\d+)", status).group(1)),
        "worker_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}),
        file=sys.stderr)
"""


# -- figures ------------------------------------------------------------------------------

def spread(values: list[float], digits: int = 0) -> str:
    """median [min-max] of repeated measurements."""
    fmt = f"{{:.{digits}f}}"
    if len(values) == 1:
        return fmt.format(values[0])
    return (f"{fmt.format(statistics.median(values))} "
            f"[{fmt.format(min(values))}-{fmt.format(max(values))}]")


# -- the synthetic archive -----------------------------------------------------------------

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


def make_stale(out: Path) -> None:
    """As after a converter change: every row's hash and body, and every file, differ from
    what rendering gives now."""
    ledger = Ledger(out / "ledger.db")
    with ledger.db.atomic():
        ledger.db.execute("update releases set sha256 = 'stale', body = ''")
    ledger.close()
    for folder, _, names in os.walk(out / "releases"):
        for name in names:
            with open(os.path.join(folder, name), "a", encoding="utf-8") as handle:
                handle.write("\nolder converter\n")


def ledger_breakdown(ledger_path: Path, n: int) -> dict:
    ledger = Ledger(ledger_path)
    region, body = ledger.db.execute(
        "select sum(length(region)), sum(length(cast(body as blob))) from releases").fetchone()
    ledger.close()
    size = ledger_path.stat().st_size
    return {"bytes_per_release": size / n, "region_per_release": region / n,
            "body_per_release": body / n, "ledger_mb": size / 1e6}


# -- measurements --------------------------------------------------------------------------

def run_rebuild(out: Path, jobs: int | None) -> dict:
    args = ["rebuild", "--out", str(out)] + (["--jobs", str(jobs)] if jobs else [])
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True,
                          cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f"rebuild failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    summary = re.search(r"beehive summary: (.*)", proc.stderr).group(1)
    figures = dict(pair.split("=", 1) for pair in summary.split())
    memory = json.loads(re.search(r"BENCH (.*)", proc.stderr).group(1))
    ledger = Ledger(out / "ledger.db")  # the run's elapsed, to the hundredth (the summary: tenth)
    (elapsed,) = ledger.db.execute("select elapsed from runs order by id desc limit 1").fetchone()
    ledger.close()
    return {"rate": int(figures["releases"]) / elapsed, "written": int(figures["written"]),
            "unchanged": int(figures["unchanged"]), "summary": summary,
            "main_mb": memory["main_kb"] / 1024, "worker_mb": memory["worker_kb"] / 1024}


def bare_markdownify_rate(sources, n: int) -> float:
    bodies = [release.body_html for release in sources]
    started = time.perf_counter()
    for index in range(n):
        markdownify.markdownify(bodies[index % len(bodies)])
    return n / (time.perf_counter() - started)


def first_batches(out: Path, n: int) -> tuple[Archiver, list]:
    archiver = Archiver(out)
    batches = []
    for batch in stored_batches(archiver):
        batches.append(batch)
        if sum(map(len, batches)) >= n:
            break
    return archiver, batches


def render_step_rate(out: Path, n: int) -> float:
    """The workers' whole job (decompress, parse, render, compare with the file), one core,
    on an archive whose files are right."""
    archiver, batches = first_batches(out, n)
    started = time.perf_counter()
    for batch in batches:
        rebuild_batch(archiver.store, batch)
    elapsed = time.perf_counter() - started
    archiver.close()
    return sum(map(len, batches)) / elapsed


def profile_render_step(out: Path, n: int = 2000) -> str:
    archiver, batches = first_batches(out, n)
    profiler = cProfile.Profile()
    profiler.enable()
    for batch in batches:
        rebuild_batch(archiver.store, batch)
    profiler.disable()
    archiver.close()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("cumulative").print_stats(30)
    return text.getvalue()


# -- the run -------------------------------------------------------------------------------

def bench_size(n: int, sources, workdir: Path, trash: Path, args) -> dict:
    out = workdir / f"archive-{n}"
    started = time.perf_counter()
    synthesise(out / "ledger.db", sources, n)
    print(f"\n== {n:,} releases (ledger synthesised in {time.perf_counter() - started:.0f}s)",
          flush=True)

    empty, nothing = [], []
    for attempt in range(args.repeat):
        if (out / "releases").exists():  # moved aside, not deleted: see the docstring
            os.rename(out / "releases", trash / f"releases-{n}-{attempt}")
        empty.append(run_rebuild(out, args.jobs))
        assert empty[-1]["written"] == n, empty[-1]["summary"]
    for _ in range(args.repeat):
        nothing.append(run_rebuild(out, args.jobs))
        assert nothing[-1]["unchanged"] == n, nothing[-1]["summary"]

    runs = empty + nothing
    figures = {"n": n, "out": out, "empty": [run["rate"] for run in empty],
               "nothing": [run["rate"] for run in nothing],
               "main_mb": [run["main_mb"] for run in runs],
               "worker_mb": [run["worker_mb"] for run in runs],
               **ledger_breakdown(out / "ledger.db", n)}
    print(f"rebuild from empty releases/:    {spread(figures['empty'])} pages/s")
    print(f"rebuild with nothing to do:      {spread(figures['nothing'])} pages/s")
    print(f"peak RSS, main process:          {spread(figures['main_mb'], 1)} MB")
    print(f"peak RSS, largest worker:        {spread(figures['worker_mb'], 1)} MB")
    print(f"ledger: {figures['ledger_mb']:.1f} MB, {figures['bytes_per_release']:.0f} "
          f"bytes/release (region {figures['region_per_release']:.0f} compressed, body "
          f"Markdown {figures['body_per_release']:.0f}, the rest FTS index and fields); "
          f"55,000 releases ~ {figures['bytes_per_release'] * 55000 / 1e6:.0f} MB", flush=True)

    if n == args.first:
        figures["step"] = [render_step_rate(out, args.bare) for _ in range(args.repeat)]
        if args.profile:
            print(profile_render_step(out))
    return figures


def bench_upgrade(figures: dict, args) -> None:
    """Rebuilds after a converter change. Run after every size's other measurements: they
    replace every file, and so delete as many (see the docstring)."""
    n, rates = figures["n"], []
    for _ in range(args.repeat):
        make_stale(figures["out"])
        run = run_rebuild(figures["out"], args.jobs)
        assert run["written"] == n and run["summary"].count(f"changed={n}"), run["summary"]
        rates.append(run["rate"])
    print(f"rebuild after a converter change at {n:,}: {spread(rates)} pages/s "
          "(every file and row rewritten, search index re-indexed)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="5000,20000",
                        help="comma-separated ledger sizes (default: 5000,20000)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each measurement (default: 3)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="rebuild processes (default: one per available core)")
    parser.add_argument("--bare", type=int, default=3000,
                        help="bodies per bare markdownify measurement (default: 3000)")
    parser.add_argument("--no-upgrade", dest="upgrade", action="store_false",
                        help="skip the converter-change rebuilds")
    parser.add_argument("--profile", action="store_true",
                        help="profile the workers' step and print where the time goes")
    parser.add_argument("--keep", help="keep the synthesised archives under this folder")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    args.first = sizes[0]
    cores = args.jobs or default_jobs()
    sources = corpus_releases()
    print(f"corpus: {len(sources)} pages; cores used by rebuild: {cores}; "
          f"python {sys.version.split()[0]}; {args.repeat} runs of each measurement, "
          "shown as median [min-max]")

    started = time.perf_counter()
    workdir = Path(args.keep or tempfile.mkdtemp(prefix="bench-rebuild-"))
    trash = workdir / "moved-aside"
    trash.mkdir(parents=True, exist_ok=True)
    try:
        results = [bench_size(n, sources, workdir, trash, args) for n in sizes]
        if args.upgrade:
            print()
            for figures in results:
                bench_upgrade(figures, args)
        bare = [bare_markdownify_rate(sources, args.bare) for _ in range(args.repeat)]
    finally:
        shutil.rmtree(trash, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    first = results[0]
    bare_median = statistics.median(bare)
    print(f"\n== summary ({time.perf_counter() - started:.0f}s)")
    print(f"bare markdownify, 1 core:           {spread(bare)} pages/s")
    print(f"render step alone, 1 core:          {spread(first['step'])} pages/s "
          f"(x{statistics.median(first['step']) / bare_median:.2f} bare markdownify)")
    for figures in results:
        for case in ("empty", "nothing"):
            ratios = [rate / cores / bare_median for rate in figures[case]]
            print(f"ratio per core at {figures['n']:>6,}, "
                  f"{'from empty:     ' if case == 'empty' else 'nothing to do:  '}"
                  f"{spread(ratios, 2)}  (rebuild / {cores} cores / bare)   [target >= 0.80]")
        print(f"overall at {figures['n']:>6,}: {spread(figures['empty'])} pages/s from empty, "
              f"{spread(figures['nothing'])} with nothing to do   [target >= 300]")
    for name in ("main_mb", "worker_mb"):
        label = "main process" if name == "main_mb" else "largest worker"
        print(f"peak RSS, {label}: " + " -> ".join(
            f"{statistics.median(figures[name]):.1f} MB at {figures['n']:,}"
            for figures in results) + "   [target: flat]")
    print(f"ledger: " + ", ".join(f"{figures['bytes_per_release']:.0f} bytes/release at "
                                   f"{figures['n']:,}" for figures in results))


if __name__ == "__main__":
    main()
