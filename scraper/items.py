"""What the spider hands to the pipeline: a fetched page, or the reason there is none."""

from dataclasses import dataclass


@dataclass
class ReleasePage:
    url: str  # the release's URL as listed, on the production host
    final_url: str  # where the response came from after redirects, on the production host
    status: int
    content_type: str
    body: bytes


@dataclass
class ReleaseFailure:
    url: str  # as listed, on the production host
    kind: str  # "failed", "gone" or "blocked"
    reason: str
    status: int | None = None


@dataclass
class WalkPage:
    """What a discovery page (listing, search, feed) said beyond its links, for the
    IncrementalMiddleware, which consumes it: never reaches the pipeline."""
    walk: str  # "listing", "feed" or "search:<government facet>"
    page: int
    reported: int | None = None  # the search's "N results", when it says
