"""Release URLs: the production form is the identity of a release everywhere in the archive."""

import re
from urllib.parse import urlsplit

PRODUCTION_HOST = "www.beehive.govt.nz"
PRODUCTION = f"https://{PRODUCTION_HOST}"
_RELEASE = re.compile(r"^/release/([^/?#]+)$")


def release_slug(url: str) -> str | None:
    """The slug of a production release URL, or None if the URL is anything else."""
    parts = urlsplit(url)
    if parts.scheme != "https" or parts.netloc != PRODUCTION_HOST or parts.query:
        return None
    match = _RELEASE.match(parts.path)
    return match.group(1) if match else None
