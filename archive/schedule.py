"""When to ask the site for an archived release again: the recheck schedule. Pure: no I/O.

A release is rechecked at an interval that grows with its age (corrections come soon after
publication, rarely years later). Each release has a fixed slot within its interval, from a
hash of its URL, so that releases captured together (a first crawl of the whole archive)
fall due spread over a whole interval instead of all in the same hour, and the spread is the
same on every machine and every run.

The intervals are the setting ``BEEHIVE_RECHECK_INTERVALS``: comma-separated
``AGE:INTERVAL`` pairs, youngest first, the last age ``*`` (any older), with durations in
``h`` (hours), ``d`` (days) or ``w`` (weeks)::

    2d:3h,2w:1d,90d:1w,1y:60d,*:180d
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

DEFAULT_INTERVALS = "2d:3h,2w:1d,90d:1w,365d:60d,*:180d"

_UNITS = {"h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([hdwy])$")


class ScheduleError(ValueError):
    """A recheck schedule setting that cannot be read."""


def duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip())
    if not match:
        raise ScheduleError(f"not a duration (like 3h, 2d, 1w, 1y): {text!r}")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ScheduleError(f"a duration must be positive: {text!r}")
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class Schedule:
    """(age limit, interval) tiers, youngest first; the last tier's limit is None (any age)."""

    tiers: tuple[tuple[timedelta | None, timedelta], ...]

    @classmethod
    def parse(cls, text: str | None = None) -> "Schedule":
        tiers = []
        for part in (text or DEFAULT_INTERVALS).split(","):
            age, sep, interval = part.strip().partition(":")
            if not sep:
                raise ScheduleError(f"expected AGE:INTERVAL, got {part.strip()!r}")
            tiers.append((None if age.strip() == "*" else duration(age), duration(interval)))
        limits = [age for age, _ in tiers]
        if limits[-1] is not None or None in limits[:-1]:
            raise ScheduleError("the last tier, and only it, must be '*:INTERVAL'")
        if limits[:-1] != sorted(limits[:-1]):
            raise ScheduleError("ages must grow from one tier to the next")
        return cls(tuple(tiers))

    def interval(self, age: timedelta) -> timedelta:
        """How long to wait before the next recheck of a release this old."""
        for limit, interval in self.tiers:
            if limit is None or age < limit:
                return interval
        raise AssertionError("unreachable: the last tier takes any age")

    def next_check(self, url: str, published: datetime, now: datetime) -> datetime:
        """When to recheck this release next, asked ``now``.

        The release's slot is a fixed fraction of its interval (from its URL's hash); the
        next check is the first slot at least half an interval from now. A release rechecked
        on time is so rechecked exactly once an interval; one captured at a random moment
        waits between half and one and a half intervals.
        """
        interval = self.interval(max(now - published, timedelta(0))).total_seconds()
        offset = slot(url) * interval
        earliest = now.timestamp() + interval / 2
        due = offset + math.ceil((earliest - offset) / interval) * interval
        return datetime.fromtimestamp(int(math.ceil(due)), timezone.utc)

    def daily_rechecks(self, releases: int, per_day: float) -> float:
        """Rechecks a day, in the steady state, of an archive of ``releases`` that grows by
        ``per_day`` new releases a day: every release is rechecked once an interval, and a
        tier holds the releases published within its ages."""
        total, younger, left = 0.0, timedelta(0), float(releases)
        for limit, interval in self.tiers:
            days = interval.total_seconds() / 86400
            if limit is None:
                in_tier = left
            else:
                in_tier = min(left, per_day * (limit - younger).total_seconds() / 86400)
                younger = limit
            total += in_tier / days
            left -= in_tier
        return total

    def table(self) -> list[tuple[str, str]]:
        """(age, interval) in words, for documentation and ``beehive status``."""
        rows, younger = [], "0"
        for limit, interval in self.tiers:
            age = f"older than {younger}" if limit is None else f"younger than {words(limit)}"
            rows.append((age, words(interval)))
            younger = words(limit) if limit is not None else younger
        return rows


def words(span: timedelta) -> str:
    seconds = span.total_seconds()
    for unit, size in (("week", 7 * 86400), ("day", 86400), ("hour", 3600)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds / 3600:g} hours"


def slot(url: str) -> float:
    """A fraction in [0, 1) fixed by the URL: where in its interval a release falls due."""
    return int.from_bytes(hashlib.sha256(url.encode("utf-8")).digest()[:8], "big") / 2 ** 64


def iso(moment: datetime) -> str:
    """The ledger's form of a moment: UTC, seconds, ``Z``."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    """A ledger timestamp (``…Z``, with or without fractions) as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- releases that answered 404 or 410 before they were ever captured ---------------------
# The site sometimes lists a release before its page is up (an embargo lifts late, a cache is
# stale) or unpublishes one for a while. Such a release is asked again by the next run, then
# ever less often, so that one that never comes costs a handful of requests a month, not one
# a run; after GONE_GIVE_UP_AFTER of 404s it is no longer asked (a full crawl, --url or a
# seed file still ask for it).
GONE_RETRY_DELAYS = (timedelta(0), timedelta(hours=1), timedelta(hours=6), timedelta(days=1),
                     timedelta(weeks=1), timedelta(days=30))
GONE_GIVE_UP_AFTER = timedelta(days=90)


def gone_retry_delay(attempts: int) -> timedelta:
    """How long to wait before asking again for a never-captured release that has answered
    404 or 410 ``attempts`` times (1 after the first): nothing (the next run), 1 hour,
    6 hours, 1 day, 1 week, then 30 days each time."""
    return GONE_RETRY_DELAYS[min(max(attempts, 1), len(GONE_RETRY_DELAYS)) - 1]


def gone_next_try(first_failed: datetime, attempts: int, now: datetime,
                  give_up_after: timedelta = GONE_GIVE_UP_AFTER) -> datetime | None:
    """When to ask again for a never-captured release that answered 404 or 410 ``now``, for
    the ``attempts``-th time since ``first_failed``; None when that is ``give_up_after`` or
    more ago: given up."""
    if now - first_failed >= give_up_after:
        return None
    return now + gone_retry_delay(attempts)
