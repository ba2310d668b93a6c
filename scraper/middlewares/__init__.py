"""The crawl's middlewares, one a module, each configured by settings (see settings.py).

Spider middlewares:
- incremental.IncrementalMiddleware: skips releases the ledger holds, chooses the walks a run
  needs, ends each where nothing new remains, and records how far each got.
- recheck.RecheckMiddleware: asks again, conditionally, for archived releases whose recheck
  is due.

Downloader middlewares:
- retry.BackoffRetryMiddleware: Scrapy's retries, with exponential backoff and Retry-After.
- blocks.BotProtectionMiddleware: recognises Imperva Incapsula block pages, backs off, gives up
  a URL that stays blocked, and ends the run when the whole site blocks us.
- unreachable.UnreachableMiddleware: ends the run, in one line, when the site cannot be
  reached at all.
- offsite.OffsiteRedirectMiddleware: a redirect off the site is a failure naming its target.
"""
