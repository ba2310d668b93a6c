"""What the spider hands to the pipeline: a fetched page, or the reason there is none; and
what the pipeline hands on to Scrapy's feed exports: a release's record."""

from dataclasses import dataclass


@dataclass
class ReleasePage:
    url: str  # the release's URL as listed, on the production host
    final_url: str  # where the response came from after redirects, on the production host
    status: int
    content_type: str
    body: bytes
    etag: str | None = None  # the response's validators, for the next conditional recheck
    last_modified: str | None = None
    recheck: bool = False  # asked again on the recheck schedule


@dataclass
class ReleaseNotModified:
    """A conditional recheck answered 304: the release is as last captured."""

    url: str
    etag: str | None = None
    last_modified: str | None = None


@dataclass
class ReleaseFailure:
    url: str  # as listed, on the production host
    kind: str  # "failed", "gone" or "blocked"
    reason: str
    status: int | None = None
    recheck: bool = False


@dataclass
class ReleaseRecord:
    """A release this run archived or updated, as ``beehive export`` writes it, with what
    the run did to it. The only item a crawl's feed exports (``-o``/``-O``) receive."""

    title: str
    date: str  # UTC date: the file's date
    url: str  # as the file's front matter gives it
    ministers: list[str]
    portfolios: list[str]
    attachments: list[str]
    published: str  # full UTC timestamp
    nz_date: str  # the date the site shows
    body: str  # the file's Markdown body
    path: str  # releases/YYYY/MM/YYYY-MM-DD-<slug>.md, under the archive folder
    sha256: str  # of the whole file
    outcome: str  # "new" or "updated"


@dataclass
class WalkPage:
    """What a discovery page (listing, search, feed) said beyond its links, for the
    IncrementalMiddleware, which consumes it: never reaches the pipeline."""
    walk: str  # "listing", "feed" or "search:<government facet>"
    page: int
    reported: int | None = None  # the search's "N results", when it says
