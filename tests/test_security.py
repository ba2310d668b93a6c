"""What a crawl must not do: listen on the network, or write outside its archive.

Scrapy 2.19's remote-control extension (an HTTP server that runs code sent to it, with a job
file under the user's state directory) is off in the project's settings; these tests watch a
real crawl's sockets while it runs, and give it an empty home to prove it writes nothing
there. The same checks with the extension switched back on show that they can fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.offline_archive import run
from tests.replica import Replica
from tests.run import crawl, summary

TCP_LISTEN = "0A"


def listening_sockets(pid: int) -> list[str]:
    """The local addresses (hex, as in /proc/net/tcp) on which this process listens."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    found = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == TCP_LISTEN and fields[9] in inodes:
                found.append(fields[1])
    return found


def watched_crawl(replica, out: Path, home: Path, *settings: str):
    """Run a crawl (with Scrapy's default asyncio reactor, as users run it, which the
    remote control needs) with HOME and XDG_* pointing into ``home``; sample its listening sockets
    until it ends. Returns (returncode, stderr, sockets seen, samples taken)."""
    env = {**os.environ, "HOME": str(home), "XDG_STATE_HOME": str(home / ".local/state"),
           "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home / ".cache"),
           "XDG_DATA_HOME": str(home / ".local/share"), "XDG_RUNTIME_DIR": str(home / "run")}
    process = subprocess.Popen(
        [sys.executable, "-m", "archive", "crawl", "--base-url", replica.base_url,
         "--out", str(out), "--delay", "0", *settings],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen, samples = set(), 0
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        try:
            seen.update(listening_sockets(process.pid))
            samples += 1
        except (FileNotFoundError, ProcessLookupError):
            break  # it ended between poll and read
        time.sleep(0.05)
    stderr = process.communicate(timeout=60)[1]
    return process.returncode, stderr, seen, samples


def slow_replica(replica):
    # One release answers after 1 s, so the crawl is alive long enough to be watched.
    replica.fault(f"/release/{replica.slugs[5]}", "timeout", seconds=1)
    return replica


def test_a_crawl_listens_on_nothing_and_writes_nothing_outside_its_archive(replica, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    status, stderr, listening, samples = watched_crawl(slow_replica(replica), tmp_path / "a", home)
    assert status == 0, stderr[-2000:]
    assert samples >= 10  # watched while it ran
    assert listening == set()
    assert list(home.rglob("*")) == []
    assert "remote control" not in stderr.lower()


def test_the_remote_control_can_still_be_turned_on(replica, tmp_path):
    """The checks above do see the extension when someone asks for it."""
    home = tmp_path / "home"
    home.mkdir()
    status, stderr, listening, _ = watched_crawl(
        slow_replica(replica), tmp_path / "a", home, "-s", "REMOTE_CONTROL_ENABLED=True")
    assert status == 0, stderr[-2000:]
    assert listening  # its HTTP server, while the crawl ran
    assert list((home / ".local/state").rglob("*")) != []  # and its job file's folder


def test_redirects_off_the_site_are_recorded_failures_and_never_followed(replica, tmp_path):
    out = tmp_path / "a"
    # Two other sites that count every request they get: another loopback address, and
    # the same address on another port.
    with Replica(host="127.0.0.2") as elsewhere, Replica() as other_port:
        targets = {
            replica.slugs[1]: f"{elsewhere.base_url}/latest/meta-data/",
            replica.slugs[4]: f"{other_port.base_url}/release/{replica.slugs[4]}",
            replica.slugs[6]: "ftp://127.0.0.1/release.html",
            replica.slugs[9]: "javascript:alert(1)",
        }
        for slug, target in targets.items():
            replica.redirect_anywhere(slug, target, status=302 if "ftp" in target else 301)
        result = crawl(replica, out)
        assert elsewhere.requests == [] and other_port.requests == []
    assert result.returncode == 1, result.stderr[-2000:]
    figures = summary(result)
    assert figures["outcome"] == "failed" and figures["failed"] == "4"
    assert int(figures["new"]) == len(replica.slugs) - 4
    status = run("status", "--json", "--out", out)
    failures = {f["url"]: f for f in json.loads(status.stdout)["failures"]}
    assert set(failures) == {replica.url(slug) for slug in targets}
    for slug, target in targets.items():
        failure = failures[replica.url(slug)]
        assert failure["kind"] == "failed"
        assert f"redirected off the site to {target}" in failure["reason"]
    text = run("status", "--out", out).stdout
    assert f"redirected off the site to {targets[replica.slugs[1]]}" in text

    # Like any failure, the next run tries them again.
    for slug in targets:
        replica.redirect_anywhere(slug, None)
    again = crawl(replica, out)
    assert again.returncode == 0, again.stderr[-2000:]
    assert summary(again)["new"] == "4"
    assert json.loads(run("status", "--json", "--out", out).stdout)["failures"] == []
