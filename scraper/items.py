"""What the spider hands to the pipeline: a fetched page, or the reason there is none."""

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
