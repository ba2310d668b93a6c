"""StopSignals: a crawl stopped by Ctrl-C (SIGINT) or SIGTERM ends ``interrupted``, and soon.

Scrapy stops gracefully on the first signal (the pages under way finish and are kept) and
closes the spider with the reason "shutdown", which the archive pipeline cannot tell from a
run that simply ended. This extension notes the signal in the stats (``beehive/interrupted``:
its number), so the run is recorded as ``interrupted`` and ``beehive crawl`` exits 128 + the
signal's number (130, 143), as shells expect. It also stops the waiting: a request held back
by DOWNLOAD_DELAY is sent at once instead of after the delay (the graceful stop waits for
every request the engine has handed on), so a long ``--delay`` does not keep a stopped crawl
alive for minutes; and ``sleep`` (the retry and block back-offs' wait) ends early.
"""

from __future__ import annotations

import signal

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    def __init__(self, crawler):
        from twisted.internet import reactor

        self.crawler = crawler
        # Scrapy installs its own handlers once the reactor has started (an "after startup"
        # trigger): ours go round them, on the reactor's first turn after that.
        reactor.addSystemEventTrigger("after", "startup", reactor.callLater, 0, self.install)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def install(self) -> None:
        for number in STOP_SIGNALS:
            previous = signal.getsignal(number)
            if callable(previous):
                signal.signal(number, self.handler(previous))

    def handler(self, previous):
        def on_signal(number, frame):
            from twisted.internet import reactor

            stats = self.crawler.stats
            if not stats.get_value("beehive/interrupted"):
                stats.set_value("beehive/interrupted", number)
                stats.set_value("beehive/reason", f"stopped by {signal.Signals(number).name}")
                reactor.callFromThread(self.hurry)
            previous(number, frame)
        return on_signal

    def hurry(self) -> None:
        """Send what DOWNLOAD_DELAY holds back now: the stop waits for it."""
        engine = self.crawler.engine
        downloader = getattr(engine, "downloader", None)
        for slot in list(getattr(downloader, "slots", {}).values()):
            slot.delay = 0
            if slot.latercall:
                slot.latercall.cancel()
                slot.latercall = None
            downloader._process_queue(slot)


async def sleep(seconds: float, crawler) -> None:
    """Wait as scrapy.utils.asyncio.sleep does, but end early once the run is stopped by a
    signal: a back-off of minutes must not hold a stopped crawl."""
    import time

    from scrapy.utils.asyncio import sleep as scrapy_sleep

    deadline = time.monotonic() + seconds
    while not crawler.stats.get_value("beehive/interrupted"):
        left = deadline - time.monotonic()
        if left <= 0:
            return
        await scrapy_sleep(min(left, 0.25))
