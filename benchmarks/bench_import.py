"""Benchmark ``beehive import`` on a clone of the public reference archive, and the first
crawl after it (issue 19).

    git clone https://github.com/marcus-crane/beehive-markdown /tmp/beehive-markdown
    python benchmarks/bench_import.py --reference /tmp/beehive-markdown
    python benchmarks/bench_import.py --reference /tmp/beehive-markdown --repeat 3

For each repeat, into a new archive folder (in --work, default a temporary folder on the
same disk as /tmp):

- ``beehive import REFERENCE`` in a child process: its wall clock, files a second (every
  .md file found, good or refused), its CPU time (user + system: the figure least disturbed
  by other work on the machine), its peak memory (ru_maxrss of the child), the ledger's
  size, and the import's own summary line;
- then ``beehive import`` again (nothing to do: every release is in the archive).

Then the first ``beehive crawl`` after an import, on a replica shaped like the live site
(tests.replica.Replica(listing="current"): the listing shows the current government only,
the search of each government the rest, older results linked as /node/<n>), whose
releases (the corpus's 51) are all in the reference: the requests it makes, by kind. The
same crawl into an empty archive is measured beside it.

Target: the import well under two minutes, with memory flat (it holds a batch of files,
and the set of URLs seen).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.replica import Replica  # noqa: E402
from tests.run import FAST_REACTOR  # noqa: E402

SUMMARY = re.compile(r"beehive summary: (.*)")


def beehive(*args, env=None) -> tuple[subprocess.CompletedProcess, float, float, int]:
    """Run ``beehive ARGS``: (result, wall seconds, CPU seconds, peak RSS in KiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "archive", *map(str, args)],
                            capture_output=True, text=True, env={**os.environ, **(env or {})},
                            cwd=ROOT)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result, wall, cpu, after.ru_maxrss


def figures(result) -> dict:
    match = SUMMARY.search(result.stderr)
    if not match:
        raise SystemExit(f"no summary line:\n{result.stderr[-3000:]}")
    return dict(pair.split("=", 1) for pair in match.group(1).split())


def ledger_bytes(out: Path) -> int:
    return sum((out / name).stat().st_size for name in ("ledger.db", "ledger.db-wal")
               if (out / name).exists())


def kinds(paths: list[str]) -> Counter:
    counted = Counter()
    for path in paths:
        if path.startswith("/search"):
            counted["search pages"] += 1
        elif path.startswith("/releases/feed"):
            counted["feed"] += 1
        elif path.startswith("/releases"):
            counted["listing pages"] += 1
        elif path.startswith(("/release/", "/node/")):
            counted["release pages"] += 1
        else:
            counted[path] += 1
    return counted


def crawl(site: Replica, out: Path):
    return beehive("crawl", "--base-url", site.base_url, "--out", out, "--delay", "0",
                   "-s", FAST_REACTOR)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, default=Path("/tmp/beehive-markdown"),
                        help="A clone of marcus-crane/beehive-markdown.")
    parser.add_argument("--work", type=Path, default=None,
                        help="Where the archives go (default: a temporary folder).")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-crawl", action="store_true", help="Only the import.")
    args = parser.parse_args()
    if not (args.reference / "releases").is_dir():
        raise SystemExit(f"no releases/ in {args.reference}: clone the reference archive first")
    work = Path(tempfile.mkdtemp(prefix="bench-import-", dir=args.work))
    print(f"reference: {args.reference}  work: {work}  load average: {os.getloadavg()}")
    try:
        out = None
        for repeat in range(args.repeat):
            out = work / f"archive-{repeat}"
            result, wall, cpu, rss = beehive("import", args.reference, "--out", out)
            if result.returncode != 0:
                raise SystemExit(result.stderr[-3000:])
            numbers = figures(result)
            files = int(numbers["files"])
            print(f"import #{repeat + 1}: {files} files in {wall:.1f} s wall = "
                  f"{files / wall:.0f} files/s (CPU {cpu:.1f} s = {files / cpu:.0f} files/s "
                  f"of CPU); imported {numbers['imported']}, refused {numbers['refused']}; "
                  f"ledger {ledger_bytes(out) / 1e6:.0f} MB "
                  f"({ledger_bytes(out) / max(1, int(numbers['imported'])):.0f} B a release); "
                  f"peak memory {rss / 1024:.0f} MiB; load average {os.getloadavg()[0]:.1f}")
            again, wall, cpu, _ = beehive("import", args.reference, "--out", out)
            print(f"  again (nothing to do): {wall:.1f} s wall, CPU {cpu:.1f} s; "
                  f"{figures(again)['already']} already in the archive")
            if repeat + 1 < args.repeat:
                shutil.rmtree(out)
        if args.no_crawl:
            return
        print("the first crawl on a replica shaped like the live site (listing: the current "
              "government; the search: every government), of 51 releases all in the reference:")
        for label, target in (("after the import", out), ("into an empty archive",
                                                          work / "empty")):
            with Replica(listing="current") as site:
                result, wall, _, _ = crawl(site, target)
                paths = site.paths
            numbers = figures(result)
            print(f"  {label}: {len(paths)} requests ({dict(kinds(paths))}); new "
                  f"{numbers['new']}, gone {numbers['gone']}, outcome {numbers['outcome']}; "
                  f"{wall:.1f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
