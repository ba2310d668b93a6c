"""Benchmark SQLite's checks of the ledger: ``pragma quick_check`` against
``pragma integrity_check`` (issue 13, requirement 3).

    python benchmarks/bench_integrity.py                    # 55,000 releases (the full history)
    python benchmarks/bench_integrity.py --size 5000 --repeat 5

Synthesises a ledger as bench_rebuild.py does (corpus pages cloned with distinct URLs,
written through Ledger.save_rendered; no files, no network), then times each check through
archive.ledger.check_integrity, ``--repeat`` times, with the file in the page cache (as
right after a crawl or another command) and, where the machine allows (root), after
dropping the page cache. Prints median [min-max] seconds and the ledger's size.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from archive.ledger import check_integrity  # noqa: E402
from bench_rebuild import corpus_releases, synthesise  # noqa: E402


def drop_page_cache() -> bool:
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
        return True
    except OSError:
        return False


def timed(path: Path, thorough: bool, cold: bool) -> float | None:
    if cold and not drop_page_cache():
        return None
    start = time.perf_counter()
    check_integrity(path, thorough=thorough)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=55000, help="releases in the ledger")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ledger", type=Path, help="time this ledger instead of making one")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-integrity-") as folder:
        path = args.ledger
        if path is None:
            path = Path(folder) / "ledger.db"
            start = time.perf_counter()
            synthesise(path, corpus_releases(), args.size)
            print(f"synthesised {args.size} releases in {time.perf_counter() - start:.0f} s")
        size = path.stat().st_size
        print(f"ledger: {size / 1e6:.0f} MB ({size / max(args.size, 1) / 1e3:.1f} KB a release), "
              f"{os.cpu_count()} cores")
        for thorough in (False, True):
            name = "integrity_check" if thorough else "quick_check"
            for cold in (False, True):
                times = [timed(path, thorough, cold) for _ in range(args.repeat)]
                if None in times:
                    print(f"{name:16} {'cold':5} (cannot drop the page cache here)")
                    continue
                print(f"{name:16} {'cold' if cold else 'warm':5} "
                      f"{statistics.median(times):6.2f} s [{min(times):.2f}-{max(times):.2f}]")


if __name__ == "__main__":
    main()
