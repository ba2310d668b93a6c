"""The settings a crawl reads, checked before it starts, in one place.

A value Scrapy or the archive could not use (``-s DOWNLOAD_DELAY=abc``, a base URL with a
port out of range) would otherwise fail deep inside the run, after the ledger recorded a
run, with a traceback and a misleading outcome. ``beehive crawl`` turns a SettingError into
a usage error (one line, exit 2) before anything is touched; ``scrapy crawl releases``
stops with it before anything is fetched.
"""

from __future__ import annotations

import logging
import math
import os
from urllib.parse import urlsplit


class SettingError(ValueError):
    """A setting the crawl cannot use; the message names it."""


DAY = 86400.0
# name: (lowest, highest): seconds, counts and sizes a crawl can use.
NUMBERS = {
    "DOWNLOAD_DELAY": (0.0, DAY),
    "DOWNLOAD_TIMEOUT": (0.001, DAY),
    "BEEHIVE_RETRY_BACKOFF": (0.0, DAY),
    "BEEHIVE_RETRY_BACKOFF_MAX": (0.0, DAY),
    "BEEHIVE_BLOCK_BACKOFF": (0.0, DAY),
    "BEEHIVE_BROWSER_TIMEOUT": (0.1, DAY),
}
COUNTS = {
    "BEEHIVE_RECHECK_MAX": (0, 100_000),
    "RETRY_TIMES": (0, 100),
    "BEEHIVE_MAX_BLOCKS": (1, 10_000),
    "CONCURRENT_REQUESTS": (1, 1_000),
    "CONCURRENT_REQUESTS_PER_DOMAIN": (1, 1_000),
    "CONCURRENT_ITEMS": (1, 10_000),
    "DOWNLOAD_MAXSIZE": (0, 2**31),
    "DOWNLOAD_WARNSIZE": (0, 2**31),
    "BEEHIVE_WARC_MAX_SIZE": (1, 2**40),
}
FLAGS = ("BEEHIVE_FULL", "BEEHIVE_WARC", "ROBOTSTXT_OBEY", "RETRY_ENABLED", "LOG_ENABLED")


def check_base_url(value) -> str:
    """An http(s) URL with a host, a valid port and nothing unprintable; without its
    trailing slash."""
    value = str(value or "")
    if any(ord(char) < 32 or ord(char) == 127 or char.isspace() for char in value):
        raise SettingError(f"not an http(s) URL (control characters or spaces): {value!r}")
    try:
        parts = urlsplit(value)
        parts.port  # raises ValueError when out of range or not a number
    except ValueError as error:
        raise SettingError(f"not an http(s) URL ({error}): {value!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingError(f"not an http(s) URL: {value!r}")
    return value.rstrip("/")


def check_browser(value) -> str:
    """BEEHIVE_BROWSER: auto, off, or a remote browser's DevTools endpoint."""
    value = str(value or "")
    if value in ("auto", "off"):
        return value
    try:
        parts = urlsplit(value)
        parts.port
    except ValueError as error:
        raise SettingError(f"not a DevTools URL ({error}): {value!r}") from None
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
        raise SettingError(f"expected auto, off, or a DevTools URL (http://HOST:PORT or "
                           f"ws://…): {value!r}")
    return value


def check_settings(settings) -> None:
    """Raise SettingError for the first setting the crawl could not use."""
    from archive.schedule import Schedule, ScheduleError

    check_base_url(settings.get("BEEHIVE_BASE_URL"))
    try:
        check_browser(settings.get("BEEHIVE_BROWSER"))
    except SettingError as error:
        raise SettingError(f"BEEHIVE_BROWSER: {error}") from None
    executable = settings.get("BEEHIVE_BROWSER_EXECUTABLE")
    if executable and not os.path.isfile(executable):
        raise SettingError(f"BEEHIVE_BROWSER_EXECUTABLE: no such file: {executable!r}")
    if not str(settings.get("BEEHIVE_OUT") or "").strip():
        raise SettingError("BEEHIVE_OUT: the archive folder must be named (it is empty)")
    if settings.get("BEEHIVE_DB") is not None and not str(settings.get("BEEHIVE_DB")).strip():
        raise SettingError("BEEHIVE_DB: the ledger must be named (it is empty)")
    for name, (low, high) in NUMBERS.items():
        try:
            value = settings.getfloat(name)
        except (TypeError, ValueError):
            raise SettingError(f"{name}: not a number: {settings.get(name)!r}") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise SettingError(f"{name}: {settings.get(name)!r} is not between {low:g} "
                               f"and {high:g}")
    for name, (low, high) in COUNTS.items():
        try:
            value = settings.getint(name)
        except (TypeError, ValueError, OverflowError):
            raise SettingError(f"{name}: not a whole number: {settings.get(name)!r}") from None
        if not low <= value <= high:
            raise SettingError(f"{name}: {value} is not between {low} and {high}")
    for name in FLAGS:
        try:
            settings.getbool(name)
        except ValueError:
            raise SettingError(f"{name}: not true or false: {settings.get(name)!r}") from None
    level = str(settings.get("LOG_LEVEL") or "")
    if not isinstance(logging.getLevelName(level.upper()), int):
        raise SettingError(f"LOG_LEVEL: not a log level (DEBUG, INFO, WARNING, ERROR, "
                           f"CRITICAL): {level!r}")
    try:
        Schedule.parse(settings.get("BEEHIVE_RECHECK_INTERVALS"))
    except ScheduleError as error:
        raise SettingError(f"BEEHIVE_RECHECK_INTERVALS: {error}") from None
    check_feeds(settings)


def local_feed_path(uri: str) -> str | None:
    """The file a feed URI names on this machine (a plain path or file://), or None for
    stdout, other schemes and templated names (%(time)s), which name no file yet."""
    parts = urlsplit(uri)
    if uri.startswith("stdout:") or "%(" in uri:
        return None
    if parts.scheme == "file":
        return parts.path
    return uri if len(parts.scheme) <= 1 else None  # a Windows drive letter is a path


def check_feeds(settings) -> None:
    """No feed (FEEDS, -o/-O) may be written over the archive: its ledger and the files
    beside it, releases/, warc/ (see archive.store.archive_owns). Scrapy opens, and with
    -O truncates, a feed's file when the spider opens: this runs before."""
    from pathlib import Path

    from archive.store import archive_owns

    out = settings.get("BEEHIVE_OUT")
    ledger = settings.get("BEEHIVE_DB") or Path(out) / "ledger.db"
    for uri in settings.getdict("FEEDS"):
        local = local_feed_path(str(uri))
        if local is not None and archive_owns(local, out, ledger):
            raise SettingError(f"FEEDS: {local} is part of the archive {out}; write it "
                               "elsewhere")
