"""WARC captures: every response the crawl receives, with its request, in the standard
format of web archives (BEEHIVE_WARC; off by default).

A downloader middleware placed nearest the downloader, so that it sees each response as it
arrived: before Scrapy decompresses it (HttpCompressionMiddleware, 590), follows a redirect
(RedirectMiddleware, 600) or retries (550), and for robots.txt, listing pages, release pages
and whatever else the crawl asks for. The records are written with warcio as gzipped WARC
1.1 files under ``DIR/warc/``, one per run, rolled over at BEEHIVE_WARC_MAX_SIZE bytes.

What a record holds: the response body exactly as the server sent it (compressed, with its
Content-Encoding header, when the server compressed it) and the response headers as
received, except the connection-level ones that Twisted consumes before Scrapy sees a
response (Content-Length, Transfer-Encoding, Connection, Keep-Alive): a chunked body is
stored de-chunked, which is how WARC readers present it anyway. The request record carries
the request line and the headers Scrapy sent, with Host.

A file being written is named ``….warc.gz.open`` and renamed to ``….warc.gz`` when it is
complete (full, or the run ended); a killed run leaves its ``.open`` file, whose records up
to the last complete one are readable.
"""

from __future__ import annotations

import io
import logging
import os
from datetime import datetime, timezone
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlsplit

from scrapy import signals
from scrapy.exceptions import NotConfigured
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

logger = logging.getLogger(__name__)

OPEN_SUFFIX = ".open"


def _header_pairs(headers) -> list[tuple[str, str]]:
    return [(name.decode("latin-1"), value.decode("latin-1"))
            for name, values in headers.items() for value in values]


class WarcMiddleware:
    """Writes each response received, and its request, to the run's WARC file."""

    def __init__(self, crawler):
        settings = crawler.settings
        if not settings.getbool("BEEHIVE_WARC"):
            raise NotConfigured
        self.folder = Path(settings.get("BEEHIVE_OUT")) / "warc"
        self.max_size = settings.getint("BEEHIVE_WARC_MAX_SIZE")
        self.user_agent = settings.get("USER_AGENT")
        self.robots = "obey" if settings.getbool("ROBOTSTXT_OBEY") else "ignore"
        started = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.prefix = f"beehive-{started}-{os.getpid()}"
        self.serial = 0
        self.stream = None
        self.writer = None
        self.path = None
        self.stats = crawler.stats
        crawler.signals.connect(self.close, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def process_response(self, request, response, spider=None):
        if "playwright" in response.flags:  # the browser's rendering: not what was received
            return response
        if self.writer is None:
            self.open()
        response_record = self.writer.create_warc_record(
            request.url, "response", payload=io.BytesIO(response.body),
            http_headers=self.response_headers(response),
            warc_headers_dict=({"WARC-IP-Address": str(response.ip_address)}
                               if response.ip_address else None))
        request_record = self.writer.create_warc_record(
            request.url, "request", payload=io.BytesIO(request.body or b""),
            http_headers=self.request_headers(request))
        self.writer.write_request_response_pair(request_record, response_record)
        self.stream.flush()
        self.stats.inc_value("beehive/warc_records", 2)
        if self.stream.tell() >= self.max_size:
            self.finish()
        return response

    @staticmethod
    def response_headers(response) -> StatusAndHeaders:
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = ""
        return StatusAndHeaders(f"{response.status} {reason}".strip(),
                                _header_pairs(response.headers),
                                protocol=response.protocol or "HTTP/1.1")

    @staticmethod
    def request_headers(request) -> StatusAndHeaders:
        parts = urlsplit(request.url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = [("Host", parts.netloc)] + _header_pairs(request.headers)
        return StatusAndHeaders(f"{request.method} {target} HTTP/1.1", headers,
                                protocol="HTTP/1.1", is_http_request=True)

    # -- files ------------------------------------------------------------------------------

    def open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{self.prefix}-{self.serial:05d}.warc.gz"
        self.serial += 1
        self.path = self.folder / name
        self.stream = open(f"{self.path}{OPEN_SUFFIX}", "xb")
        self.writer = WARCWriter(self.stream, gzip=True, warc_version="1.1")
        self.writer.write_record(self.writer.create_warcinfo_record(name, {
            "software": f"{self.user_agent} (Scrapy, warcio)",
            "format": "WARC File Format 1.1",
            "conformsTo": "https://iipc.github.io/warc-specifications/specifications/"
                          "warc-format/warc-1.1/",
            "robots": self.robots,
            "http-header-user-agent": self.user_agent,
        }))

    def finish(self) -> None:
        """Make the current file durable and give it its final name."""
        if self.stream is None:
            return
        self.stream.flush()
        os.fsync(self.stream.fileno())
        self.stream.close()
        os.replace(f"{self.path}{OPEN_SUFFIX}", self.path)
        directory = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        logger.info("WARC file %s (%d bytes)", self.path, self.path.stat().st_size)
        self.stream = self.writer = None

    def close(self, spider=None) -> None:
        self.finish()
