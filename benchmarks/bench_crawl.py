"""Benchmark the crawl's own overhead (issue 10, requirement 7).

    python benchmarks/bench_crawl.py                      # 1,000 releases, 3 runs each
    python benchmarks/bench_crawl.py --sizes 1000 20000   # is memory flat?
    python benchmarks/bench_crawl.py --profile            # where beehive crawl's time goes

Serves a replica of N releases (``Replica.synthesize``: the corpus pages cloned, each in the
site's full page shell; the listing covers the current government only, as on the site) on 127.0.0.1, then, in one run and alternating, times

- a bare Scrapy spider that makes the same requests (robots.txt, every listing page, every
  government's search pages, every release page, one at a time, no delay) and does nothing
  with them; and
- a first ``beehive crawl --delay 0`` into an empty archive: parse, render, write each file
  durably, commit its ledger row.

Each in a child process, so that its wall time and peak memory (ru_maxrss) are its own.
Figures are the median [min-max] over ``--repeat`` runs; the ratio is bare time / beehive
time (1.0 would be no overhead at all). Targets: ratio >= 0.7; peak memory flat from 1,000
to 20,000 releases.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RELEASE_PATH = re.compile(r"^/(release/[^/?#]+|node/\d+)$")
REACTORS = {
    # Twisted's epoll reactor: on loopback it idles about 6 ms per request, where asyncio's
    # (Scrapy's default) idles some 50-80 ms, which would hide the crawl's own costs.
    "epoll": "twisted.internet.epollreactor.EPollReactor",
    "asyncio": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
}


def bare_spider(base_url: str, reactor: str) -> None:
    """The same requests as the releases spider, and nothing else: the floor to compare with.

    robots.txt, the listing and each government's search, each followed through its pager,
    and every release page they link to, once (Scrapy's duplicate filter).
    """
    from urllib.parse import urljoin, urlsplit

    import scrapy
    from scrapy.crawler import CrawlerProcess

    from archive.governments import GOVERNMENTS
    from scraper.discovery import search_url

    class Bare(scrapy.Spider):
        name = "bare"

        async def start(self):
            yield scrapy.Request(f"{base_url}/releases?page=0", callback=self.walk, priority=-1)
            for government in GOVERNMENTS:
                yield scrapy.Request(search_url(base_url, government.facet, 0),
                                     callback=self.walk, priority=-2)

        def walk(self, response):
            for href in response.css("a::attr(href)").getall():
                url = urljoin(response.url, href.strip())
                if url.startswith(base_url) and RELEASE_PATH.match(urlsplit(url).path):
                    yield scrapy.Request(url, callback=self.release)
            next_href = response.css("nav.pager li.pager__item--next a[rel=next]::attr(href)").get()
            if next_href:
                yield scrapy.Request(urljoin(response.url, next_href), callback=self.walk,
                                     priority=response.request.priority)

        def release(self, response):
            return None

    process = CrawlerProcess({
        "ROBOTSTXT_OBEY": True, "CONCURRENT_REQUESTS": 1, "DOWNLOAD_DELAY": 0,
        "COOKIES_ENABLED": False, "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False, "LOG_LEVEL": "WARNING", "TWISTED_REACTOR": reactor,
    })
    process.crawl(Bare)
    process.start()


def timed(command: list[str]) -> tuple[float, float, float]:
    """Run a child process; its wall time (s), CPU time (s) and peak resident memory (MB)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    stderr = process.stderr.read().decode()
    process.stderr.close()
    if process.returncode != 0:
        raise SystemExit(f"{command[:4]} exited {process.returncode}:\n{stderr[-2000:]}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def figure(values: list[float], unit: str = "") -> str:
    return (f"{statistics.median(values):.2f}{unit} "
            f"[{min(values):.2f}-{max(values):.2f}]")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reactor", choices=REACTORS, default="epoll",
                        help="the Twisted reactor of both crawls (default: epoll)")
    parser.add_argument("--profile", action="store_true",
                        help="also run beehive crawl once under cProfile (top 25 by own time)")
    parser.add_argument("--bare-spider", metavar="BASE_URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    reactor = REACTORS[args.reactor]
    if args.bare_spider:
        return bare_spider(args.bare_spider, reactor)

    from tests.replica import Replica

    for size in args.sizes:
        # Shaped like the live site: the listing covers the current government only, and
        # the rest of the history is reached through the search.
        with Replica(listing="current") as replica, tempfile.TemporaryDirectory(dir=ROOT) as work:
            replica.synthesize(size - len(replica.slugs))
            bare = [sys.executable, __file__, "--bare-spider", replica.base_url,
                    "--reactor", args.reactor]
            bare_times, bare_cpu, bare_memory = [], [], []
            crawl_times, crawl_cpu, crawl_memory = [], [], []
            for turn in range(args.repeat):
                out = Path(work) / f"archive-{turn}"
                crawl = [sys.executable, "-m", "archive", "crawl", "--base-url", replica.base_url,
                         "--out", str(out), "--delay", "0", "-s", f"TWISTED_REACTOR={reactor}"]
                seconds, cpu, memory = timed(bare)
                bare_times.append(seconds)
                bare_cpu.append(cpu)
                bare_memory.append(memory)
                seconds, cpu, memory = timed(crawl)
                crawl_times.append(seconds)
                crawl_cpu.append(cpu)
                crawl_memory.append(memory)
                archived = len(list((out / "releases").rglob("*.md")))
                if archived != size:
                    raise SystemExit(f"the crawl archived {archived} of {size} releases")
            ratios = [b / c for b, c in zip(bare_times, crawl_times)]
            cpu_ratios = [b / c for b, c in zip(bare_cpu, crawl_cpu)]
            print(f"{size} releases, {args.reactor} reactor, {args.repeat} runs each "
                  "(median [min-max]):")
            print(f"  bare spider    {figure(bare_times, ' s')}  "
                  f"({size / statistics.median(bare_times):.0f} releases/s), "
                  f"CPU {figure(bare_cpu, ' s')}, peak RSS {figure(bare_memory, ' MB')}")
            print(f"  beehive crawl  {figure(crawl_times, ' s')}  "
                  f"({size / statistics.median(crawl_times):.0f} releases/s), "
                  f"CPU {figure(crawl_cpu, ' s')}, peak RSS {figure(crawl_memory, ' MB')}")
            print(f"  ratio (bare / beehive), wall time: {figure(ratios)}   target >= 0.70")
            print(f"  ratio (bare / beehive), CPU time:  {figure(cpu_ratios)}")
            if args.profile:
                out = Path(work) / "profiled"
                stats = Path(work) / "crawl.prof"
                subprocess.run([sys.executable, "-m", "cProfile", "-o", str(stats), "-m", "archive",
                                "crawl", "--base-url", replica.base_url, "--out", str(out),
                                "--delay", "0", "-s", f"TWISTED_REACTOR={reactor}"],
                               check=False, capture_output=True)
                import pstats

                pstats.Stats(str(stats)).sort_stats("tottime").print_stats(25)
                pstats.Stats(str(stats)).sort_stats("cumulative").print_stats(40)
            sys.stdout.flush()


if __name__ == "__main__":
    main()
