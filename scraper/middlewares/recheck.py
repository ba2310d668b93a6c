"""RecheckMiddleware (spider): asks again, conditionally, for archived releases whose
recheck is due."""

from __future__ import annotations

import logging

from scrapy.spidermiddlewares.base import BaseSpiderMiddleware

from archive.ledger import Ledger

logger = logging.getLogger(__name__)


class RecheckMiddleware(BaseSpiderMiddleware):
    """Ask the site again for archived releases whose recheck is due, conditionally.

    After the spider's start requests, yields up to BEEHIVE_RECHECK_MAX requests for the
    releases whose ``next_check`` has passed, most overdue first (gone ones included: the
    site sometimes restores a release), each with If-None-Match / If-Modified-Since from
    its last capture, so that an unchanged page costs a 304 and no download. Off with
    BEEHIVE_RECHECK_MAX=0, with BEEHIVE_FULL (which fetches everything anyway) and with
    BEEHIVE_URLS (exactly those releases).
    """

    def __init__(self, crawler):
        super().__init__(crawler)
        settings = crawler.settings
        self.limit = settings.getint("BEEHIVE_RECHECK_MAX")
        if settings.getbool("BEEHIVE_FULL") or settings.getlist("BEEHIVE_URLS"):
            self.limit = 0
        self.db = settings.get("BEEHIVE_DB") or f"{settings.get('BEEHIVE_OUT')}/ledger.db"

    async def process_start(self, start):
        async for request in start:
            yield request
        if self.limit <= 0:
            return
        ledger = Ledger(self.db)
        try:
            due = ledger.due(self.limit)
        finally:
            ledger.close()
        if due:
            logger.info("rechecking %d archived releases whose recheck is due", len(due))
        spider = self.crawler.spider
        for release in due:
            headers = {}
            if release["etag"]:
                headers["If-None-Match"] = release["etag"]
            if release["last_modified"]:
                headers["If-Modified-Since"] = release["last_modified"]
            request = spider.release_request(release["url"])
            # 304 is no error here: let it through to the spider.
            yield request.replace(headers=headers, meta={
                **request.meta, "recheck": True, "handle_httpstatus_list": [304]})
