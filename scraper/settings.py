"""Scrapy settings for the beehive-archive crawl.

Everything the crawl does is set here or with ``-s NAME=VALUE``; ``beehive crawl`` only
translates its options into these settings, so it and ``scrapy crawl releases`` run the
same code.
"""

BOT_NAME = "beehive-archive"
SPIDER_MODULES = ["scraper.spiders"]
NEWSPIDER_MODULE = "scraper.spiders"

# -- what to crawl and where the archive lives -----------------------------------------------
BEEHIVE_BASE_URL = "https://www.beehive.govt.nz"  # where requests go; production links map here
BEEHIVE_OUT = "beehive-archive"  # the archive folder: releases/ and ledger.db
BEEHIVE_DB = None  # the ledger, when not <BEEHIVE_OUT>/ledger.db
BEEHIVE_FULL = False  # walk the whole listing and fetch every release again (picks up edits)
BEEHIVE_URLS = []  # fetch exactly these releases (archived or new), and no listing
BEEHIVE_RECHECK_MAX = 30  # archived releases rechecked per run when due (0: none)
# How often to recheck a release, by its age (see archive/schedule.py and the README).
BEEHIVE_RECHECK_INTERVALS = "2d:3h,2w:1d,90d:1w,365d:60d,*:180d"
# Also keep every response received, with its request, as gzipped WARC 1.1 under <out>/warc/.
BEEHIVE_WARC = False
BEEHIVE_WARC_MAX_SIZE = 1_000_000_000  # bytes: a run's WARC file rolls over to a new one here
# Seed files: releases to fetch besides what the walks find (text, discovery-index JSON or
# sitemap); a list, or comma-separated with -s BEEHIVE_SEEDS=a.txt,b.json
BEEHIVE_SEEDS = []

# -- the site's bot protection ------------------------------------------------------------------
# Every page but /rss.xml and robots.txt answers a plain client with a JavaScript challenge
# that only a browser passes (README, "Bot protection"). The browser (Chromium, through
# scrapy-playwright): "auto" starts one at the first challenge, if one can be had; "off"
# never (a challenge stops the run); or the DevTools endpoint of a remote browser
# (http://host:port or ws://…).
BEEHIVE_BROWSER = "auto"
BEEHIVE_BROWSER_EXECUTABLE = None  # a system Chrome or Chromium instead of Playwright's own
BEEHIVE_BROWSER_TIMEOUT = 30.0  # seconds for a page to pass its challenge and settle
ADDONS = {"scraper.browser.BrowserAddon": 0}

# -- politeness ---------------------------------------------------------------------------------
USER_AGENT = "beehive-archive/0.1 (+https://github.com/beehive-archive/beehive-archive)"
ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 1
CONCURRENT_REQUESTS_PER_DOMAIN = 1
# Scrapy sets up this many cooperative tasks for every response's output, whatever it holds;
# a release page yields one item and a listing page ten requests, and at the default (100)
# that set-up alone was a fifth of a crawl's time (benchmarks/bench_crawl.py).
CONCURRENT_ITEMS = 16
DOWNLOAD_DELAY = 1.0
DOWNLOAD_DELAY_JITTER = 0  # exactly DOWNLOAD_DELAY between requests
COOKIES_ENABLED = False

# -- nothing listens, nothing is written outside the archive --------------------------------------
# Both consoles run code sent to them; an unattended archiver has no use for either. The
# remote-control extension would also leave a job file (port and token) under the user's
# state directory. `-s REMOTE_CONTROL_ENABLED=True` brings it back for someone who wants it.
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False

# -- faults ---------------------------------------------------------------------------------------
DOWNLOAD_TIMEOUT = 30
# A live page is about 350 KB; anything this large is not a release page.
DOWNLOAD_MAXSIZE = 5 * 1024 * 1024
DOWNLOAD_WARNSIZE = 2 * 1024 * 1024
RETRY_ENABLED = True
RETRY_TIMES = 3
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
# Giving up is not an error of its own: the pipeline records and logs each failed release
# with its reason, and an unreachable site gets one line of its own.
RETRY_GIVE_UP_LOG_LEVEL = "INFO"
BEEHIVE_RETRY_BACKOFF = 2.0  # seconds before the first retry, doubling on each next one
BEEHIVE_RETRY_BACKOFF_MAX = 120.0  # and never longer than this, Retry-After included
BEEHIVE_MAX_BLOCKS = 3  # different URLs blocked in a row before the run gives up
BEEHIVE_BLOCK_BACKOFF = 30.0  # seconds to wait after the first block, doubling on each next one

DOWNLOADER_MIDDLEWARES = {
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "scraper.middlewares.retry.BackoffRetryMiddleware": 550,
    "scraper.middlewares.blocks.BotProtectionMiddleware": 560,
    # Before the block-page handling sees a response: a challenge is no block.
    "scraper.middlewares.challenge.ChallengeMiddleware": 570,
    # Below the retries, so that it sees only what retrying did not cure.
    "scraper.middlewares.unreachable.UnreachableMiddleware": 540,
    # After Scrapy's RedirectMiddleware (600), so that it sees a redirect first.
    "scraper.middlewares.offsite.OffsiteRedirectMiddleware": 610,
    # Nearest the downloader: responses exactly as received (BEEHIVE_WARC).
    "scraper.warc.WarcMiddleware": 950,
}
SPIDER_MIDDLEWARES = {
    "scraper.middlewares.incremental.IncrementalMiddleware": 100,
    "scraper.middlewares.recheck.RecheckMiddleware": 110,
}
ITEM_PIPELINES = {
    "scraper.pipelines.ArchivePipeline": 300,
}
EXTENSIONS = {
    "scraper.extensions.CrawlProgress": 500,
    "scraper.interrupt.StopSignals": 510,  # Ctrl-C, SIGTERM: the run ends `interrupted`
}
# -- what a run shows ---------------------------------------------------------------------------
# A live progress line (listing page, releases archived, rate, estimate for a backfill): on
# when stderr is a terminal (None), or forced on/off. `beehive crawl` logs at WARNING unless
# -v; the 'beehive summary:' line is printed whatever the level.
BEEHIVE_PROGRESS = None

# Feed exports (-o/-O): the records as UTF-8 text, not \u escapes.
FEED_EXPORT_ENCODING = "utf-8"

LOG_LEVEL = "INFO"
