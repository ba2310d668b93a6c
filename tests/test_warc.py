"""WARC captures (`beehive crawl --warc`, setting BEEHIVE_WARC): every response received,
with its request, exactly as it arrived, in gzipped WARC 1.1 files that warcio checks."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

from tests.run import crawl, summary


def records(path: Path) -> list:
    """(type, URI, status or None, http headers, raw payload) of each record in a file."""
    found = []
    with open(path, "rb") as stream:
        for record in ArchiveIterator(stream, no_record_parse=False):
            headers = record.http_headers
            found.append((record.rec_type, record.rec_headers.get_header("WARC-Target-URI"),
                          headers.get_statuscode() if headers and record.rec_type == "response"
                          else None, headers, record.raw_stream.read(),
                          record.rec_headers.get_header("WARC-Concurrent-To"),
                          record.rec_headers.get_header("WARC-Record-ID")))
    return found


def warcio_check(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from warcio.cli import main; main()",
                           "check", "-v", *map(str, paths)], capture_output=True, text=True,
                          timeout=60)


def test_warc_holds_every_response_as_received(replica, tmp_path):
    replica.compress = True  # gzip for clients that ask: the WARC keeps it compressed
    renamed, flaky = replica.slugs[2], replica.slugs[5]
    replica.rename(renamed, renamed + "-renamed")
    replica.add_listing_link(f"/release/{renamed}")  # a link to the old URL: a 301
    replica.fault(f"/release/{flaky}", "status", status=503)  # retried, then served
    out = tmp_path / "a"
    result = crawl(replica, out, "--warc")
    assert result.returncode == 0, result.stderr[-2000:]
    assert summary(result)["failed"] == "0"

    (path,) = (out / "warc").iterdir()
    assert path.name.endswith(".warc.gz")  # complete: no '.open' file left
    check = warcio_check(path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "digest pass" in check.stdout and "fail" not in check.stdout

    found = records(path)
    assert found[0][0] == "warcinfo"
    responses = [r for r in found if r[0] == "response"]
    requests = {r[5]: r for r in found if r[0] == "request"}
    # One response record per request the site answered, in order, each with its request.
    assert [r[1] for r in responses] == [replica.local_url(p) for p in replica.paths]
    for response, path in zip(responses, replica.paths):
        request = requests[response[6]]
        assert request[1] == response[1]
        assert f"{request[3].protocol} {request[3].statusline}" == f"GET {path} HTTP/1.1"

    by_uri = {}
    for response in responses:
        by_uri.setdefault(response[1], []).append(response)
    robots = by_uri[replica.local_url("/robots.txt")][0]
    assert gzip.decompress(robots[4]) == replica.respond("/robots.txt").body
    # A release page: gzip as sent, with its Content-Encoding; inflated, the page itself.
    page = by_uri[replica.local_url(f"/release/{replica.slugs[0]}")][0]
    assert page[3].get_header("Content-Encoding") == "gzip"
    assert page[4][:2] == b"\x1f\x8b"
    assert gzip.decompress(page[4]) == replica.respond(f"/release/{replica.slugs[0]}").body
    # The redirect and the failed try are captures too.
    assert [r[2] for r in by_uri[replica.local_url(f"/release/{renamed}")]] == ["301"]
    assert [r[2] for r in by_uri[replica.local_url(f"/release/{flaky}")]] == ["503", "200"]
    # The request record says what was sent.
    first_request = requests[responses[1][6]][3]
    assert first_request.get_header("User-Agent").startswith("beehive-archive/")
    assert "gzip" in first_request.get_header("Accept-Encoding")


def test_warc_rolls_over(replica, tmp_path):
    # (Off by default: tests/test_feeds.py checks that a plain crawl makes no warc/.)
    out = tmp_path / "a"
    # Through the setting, as `scrapy crawl releases -s BEEHIVE_WARC=True` would.
    result = crawl(replica, out, "-s", "BEEHIVE_WARC=True", "-s", "BEEHIVE_WARC_MAX_SIZE=150000")
    assert result.returncode == 0, result.stderr[-2000:]
    paths = sorted((out / "warc").iterdir())
    assert len(paths) >= 3 and all(p.name.endswith(".warc.gz") for p in paths)
    assert [p.name[-14:] for p in paths[:2]] == ["-00000.warc.gz", "-00001.warc.gz"]
    assert warcio_check(*paths).returncode == 0
    uris = [r[1] for p in paths for r in records(p) if r[0] == "response"]
    assert uris == [replica.local_url(p) for p in replica.paths]
