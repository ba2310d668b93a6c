"""Benchmark a first crawl through the site's bot protection (issue 16, requirement 6).

    python benchmarks/bench_browser.py                          # 1,000 releases, once each
    python benchmarks/bench_browser.py --size 300 --repeat 3 --token-lifetime 60

Serves a replica of N releases shaped like the live site (the listing covers the current
government only, the rest is reached through the search, whose results a script draws) on
127.0.0.1, twice: open, and behind the protection (a JavaScript challenge for every page but
robots.txt and /rss.xml; tokens good for --token-lifetime seconds). Then runs a first
``beehive crawl --delay 0`` against each, in a child process, both under Scrapy's default
asyncio reactor (which the browser needs), and reports for each: wall time, requests, the
requests that went through the browser and the tokens it earned (per 1,000 releases), and
peak memory of the crawl and everything it started (its writer process, Playwright's
driver, Chromium) together: the largest sum of their PSS (proportional set size, so that
memory Chromium's processes share is counted once), sampled every 0.2 s.

Chromium: --chromium PATH, else the first chromium or google-chrome on PATH.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SUMMARY = re.compile(r"beehive summary: (.*)")


def tree(pid: int) -> set[int]:
    """pid and all its descendants."""
    found = {pid}
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            for child in task.read_text().split():
                found |= tree(int(child))
        except OSError:
            pass
    return found


def pss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run(command: list[str]) -> tuple[float, float, dict]:
    """A crawl in a child process: wall time, peak PSS of its process tree (MB), and the
    figures of its summary line."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    peak = 0.0
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.wait(0.2):
            peak = max(peak, sum(pss_mb(pid) for pid in tree(process.pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = process.communicate()
    done.set()
    sampler.join()
    elapsed = time.perf_counter() - started
    match = SUMMARY.search(stderr)
    if process.returncode != 0 or not match:
        raise SystemExit(f"the crawl exited {process.returncode}:\n{stderr[-3000:]}")
    figures = dict(pair.split("=", 1) for pair in match.group(1).split())
    return elapsed, peak, figures


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--token-lifetime", type=float, default=60.0, metavar="SECONDS")
    parser.add_argument("--chromium", default=shutil.which("chromium")
                        or shutil.which("google-chrome"))
    args = parser.parse_args(argv)
    if not args.chromium:
        raise SystemExit("no Chromium: give --chromium PATH")

    from tests.replica import Replica

    results: dict[str, list] = {"open": [], "protected": []}
    with tempfile.TemporaryDirectory() as work:
        for turn in range(args.repeat):
            for name, protection in (("open", None), ("protected", "challenge")):
                # The open replica's search is plain HTML, as a crawl without a browser
                # needs it; behind the protection its results are drawn by a script.
                search = "javascript" if protection else "html"
                with Replica(listing="current", search=search, protection=protection,
                             token_lifetime=args.token_lifetime) as replica:
                    replica.synthesize(args.size - len(replica.slugs))
                    out = Path(work) / f"{name}-{turn}"
                    command = [sys.executable, "-m", "archive", "crawl", "--base-url",
                               replica.base_url, "--out", str(out), "--delay", "0",
                               "--browser-executable", args.chromium]
                    elapsed, peak, figures = run(command)
                    archived = len(list((out / "releases").rglob("*.md")))
                    if archived != args.size:
                        raise SystemExit(f"{name}: archived {archived} of {args.size}")
                    results[name].append((elapsed, peak, figures))

    per_thousand = 1000 / args.size
    print(f"{args.size} releases, --delay 0, asyncio reactor, token lifetime "
          f"{args.token_lifetime:.0f} s, {args.repeat} run(s) each (median [min-max]):")
    for name, runs in results.items():
        times = [r[0] for r in runs]
        peaks = [r[1] for r in runs]
        figures = runs[len(runs) // 2][2]
        print(f"  {name:9}  {statistics.median(times):6.1f} s [{min(times):.1f}-{max(times):.1f}]"
              f"  requests {figures['requested']}, through the browser "
              f"{int(figures['browser_requests']) * per_thousand:.0f} and tokens "
              f"{int(figures['tokens']) * per_thousand:.0f} per 1,000 releases,"
              f"  peak PSS (crawl + browser) {statistics.median(peaks):.0f} MB "
              f"[{min(peaks):.0f}-{max(peaks):.0f}]")
    ratio = statistics.median(r[0] for r in results["protected"]) / \
        statistics.median(r[0] for r in results["open"])
    print(f"  protected / open, wall time: {ratio:.2f}")


if __name__ == "__main__":
    main()
