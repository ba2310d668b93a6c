"""The recheck schedule (archive/schedule.py), a pure function: intervals by age, spread due
times, and the arithmetic that shows the default schedule is sustainable."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from archive.schedule import DEFAULT_INTERVALS, Schedule, ScheduleError, slot
from scraper import settings as crawl_settings

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
ARCHIVE = 55_000  # releases on the site, 1996 to today
PER_DAY = 2_500 / 365  # the busiest years publish about 2,500 a year
CAP_A_DAY = 30 * 24  # the default --recheck-max, crawling every hour


def url(n: int) -> str:
    return f"https://www.beehive.govt.nz/release/release-number-{n}"


def test_the_crawl_setting_is_the_default_schedule():
    assert crawl_settings.BEEHIVE_RECHECK_INTERVALS == DEFAULT_INTERVALS


@pytest.mark.parametrize("age, interval", [
    (timedelta(hours=1), timedelta(hours=3)),
    (timedelta(days=1, hours=23), timedelta(hours=3)),
    (timedelta(days=2), timedelta(days=1)),
    (timedelta(days=13), timedelta(days=1)),
    (timedelta(days=30), timedelta(weeks=1)),
    (timedelta(days=200), timedelta(days=60)),
    (timedelta(days=365 * 20), timedelta(days=180)),
])
def test_the_interval_grows_with_age(age, interval):
    assert Schedule.parse().interval(age) == interval


def test_next_check_is_between_half_and_one_and_a_half_intervals_and_deterministic():
    schedule = Schedule.parse()
    published = NOW - timedelta(days=3000)
    for n in range(2000):
        due = schedule.next_check(url(n), published, NOW)
        assert timedelta(days=90) <= due - NOW < timedelta(days=270 + 1)
        assert due == schedule.next_check(url(n), published, NOW)  # same URL, same slot
        assert due.microsecond == 0 and due.tzinfo is not None


def test_a_release_rechecked_on_time_is_rechecked_once_an_interval():
    schedule = Schedule.parse()
    published = NOW - timedelta(days=3000)
    due = schedule.next_check(url(7), published, NOW)
    later = schedule.next_check(url(7), published, due)
    assert later - due == timedelta(days=180)
    # and a run an hour late does not shift the slot
    assert schedule.next_check(url(7), published, due + timedelta(hours=1)) == later


def test_a_young_release_is_rechecked_within_hours():
    schedule = Schedule.parse()
    due = schedule.next_check(url(1), NOW - timedelta(hours=2), NOW)
    assert timedelta(hours=1, minutes=30) <= due - NOW <= timedelta(hours=4, minutes=30)
    # published "in the future" (a clock ahead of ours) counts as brand new
    assert schedule.next_check(url(1), NOW + timedelta(hours=5), NOW) - NOW < timedelta(hours=5)


def test_slots_are_uniform():
    counts = Counter(int(slot(url(n)) * 10) for n in range(20_000))
    assert len(counts) == 10
    assert max(counts.values()) < 2_000 * 1.1 and min(counts.values()) > 2_000 * 0.9


def backfill(schedule: Schedule) -> Counter:
    """Due times of a first crawl of the whole archive, captured within one day."""
    due = Counter()
    for n in range(ARCHIVE):
        published = NOW - timedelta(days=n * 30 * 365 / ARCHIVE)
        captured = NOW + timedelta(seconds=n)  # one a second: 15 hours
        due[schedule.next_check(url(n), published, captured).date()] += 1
    return due


def test_a_backfill_does_not_fall_due_at_once():
    days = backfill(Schedule.parse())
    # Spread over about 180 days (half to one and a half intervals), not one hour.
    assert len(days) > 170
    assert max(days.values()) < CAP_A_DAY / 2


def test_the_default_schedule_is_sustainable_for_a_full_archive():
    """Steady state: every release rechecked once an interval, the archive growing by
    PER_DAY; the due rechecks a day stay below what 30 a run, hourly, can serve."""
    schedule = Schedule.parse()
    daily = schedule.daily_rechecks(ARCHIVE, PER_DAY)
    assert 500 < daily < CAP_A_DAY * 0.9  # about 595 a day: 25 a run, hourly
    # The example schedule of the issue (older than 3 months: every 90 days) is not.
    assert Schedule.parse("2d:3h,2w:1d,90d:1w,*:90d").daily_rechecks(ARCHIVE, PER_DAY) > CAP_A_DAY


def test_a_year_of_rechecks_never_needs_more_than_the_cap_allows():
    """Simulated: a backfill of the whole archive, then a year of new releases, each
    rechecked when due; count the rechecks falling due on each day."""
    schedule = Schedule.parse()
    start, end = NOW, NOW + timedelta(days=365)
    published = [(url(n), NOW - timedelta(days=n * 30 * 365 / ARCHIVE), NOW)
                 for n in range(ARCHIVE)]
    every = timedelta(days=1) / PER_DAY
    published += [(url(ARCHIVE + k), start + every * k, start + every * k)
                  for k in range(int(365 * PER_DAY))]
    per_day = Counter()
    for address, when, captured in published:
        due = schedule.next_check(address, when, captured)
        while due < end:
            per_day[due.date()] += 1
            due = schedule.next_check(address, when, due)
    assert max(per_day.values()) < CAP_A_DAY
    assert sum(per_day.values()) / 365 < CAP_A_DAY * 0.9


@pytest.mark.parametrize("text, message", [
    ("2d:3h", "last tier"),
    ("*:3h,2d:1d", "last tier"),
    ("2w:1d,2d:3h,*:90d", "grow"),
    ("2d=3h,*:1d", "AGE:INTERVAL"),
    ("2x:3h,*:1d", "not a duration"),
    ("0d:3h,*:1d", "positive"),
])
def test_bad_schedules_say_why(text, message):
    with pytest.raises(ScheduleError, match=message):
        Schedule.parse(text)


def test_the_table_reads_as_words():
    assert Schedule.parse().table() == [
        ("younger than 2 days", "3 hours"), ("younger than 2 weeks", "1 day"),
        ("younger than 90 days", "1 week"), ("younger than 365 days", "60 days"),
        ("older than 365 days", "180 days")]
