"""``beehive serve``: Datasette on the ledger, with the project's metadata and plugin.

Datasette is an optional extra (``pip install 'beehive-archive[serve]'``). It opens the
ledger read-only, so a crawl may run while it serves; the Markdown files are served beside
it at ``/releases/…``, and each release's ``path`` links there.
"""

from __future__ import annotations

import json
from pathlib import Path

PLUGINS = Path(__file__).resolve().parent / "datasette_plugins"

RELEASE_COLUMNS = {
    "url": "The release's canonical URL on www.beehive.govt.nz",
    "slug": "The last part of the URL",
    "title": "Title, as the page shows it",
    "published": "Full UTC timestamp of publication",
    "date": "UTC date of publication: the file's date",
    "nz_date": "The date the site shows (New Zealand time)",
    "ministers": "Ministers named on the page (JSON list)",
    "portfolios": "Portfolios named on the page (JSON list)",
    "attachments": "Related documents (JSON list)",
    "body": "The file's Markdown body",
    "path": "The Markdown file, under the archive folder (follow the link)",
    "sha256": "SHA-256 of the whole file",
    "first_seen": "When the crawl first archived it (UTC)",
    "last_seen": "When a crawl last saw it on the site (UTC)",
    "last_changed": "When its file's content last changed (UTC)",
    "gone": "When the site last answered 404/410 for it; the file stays",
    "origin": "captured (fetched from the site) or imported (beehive import, not yet fetched)",
}

QUERIES = {
    "releases_per_minister": {
        "title": "Releases per minister",
        "description": "How many releases name each minister (a release may name several).",
        "sql": "select minister.value as minister, count(*) as releases, "
               "min(releases.date) as first, max(releases.date) as last "
               "from releases, json_each(releases.ministers) as minister "
               "group by minister.value order by releases desc, minister",
    },
    "releases_per_month": {
        "title": "Releases per month",
        "description": "Releases published each month (UTC, as the file paths).",
        "sql": "select substr(date, 1, 7) as month, count(*) as releases "
               "from releases group by month order by month desc",
    },
    "recently_changed": {
        "title": "Recently changed releases",
        "description": "Files new or changed most recently: archived, edited on the site, "
                       "or re-rendered by a rebuild.",
        "sql": "select last_changed, date, title, path, url from releases "
               "order by last_changed desc, url limit 100",
    },
    "revisions_of_a_release": {
        "title": "Revisions of a release",
        "description": "Every distinct version of one release that the archive captured, "
                       "oldest first. Give the release's URL.",
        # The latest revision's region is the release's own, stored once in releases.
        "sql": "select revision, captured, sha256, run_id, length(coalesce(region, "
               "(select region from releases where releases.url = revisions.url))) "
               "as region_bytes from revisions where url = :url order by revision",
        "params": ["url"],
    },
}


def metadata(database: str) -> dict:
    """Datasette metadata for a ledger served under this database name."""
    return {
        "title": "beehive-archive",
        "description": "New Zealand Government press releases from www.beehive.govt.nz, "
                       "archived as Markdown files with a SQLite ledger by beehive-archive.",
        "source": "www.beehive.govt.nz",
        "source_url": "https://www.beehive.govt.nz/releases",
        "license": "New Zealand Crown copyright",
        "license_url": "https://www.beehive.govt.nz/copyright",
        "databases": {database: {
            "title": "The archive's ledger",
            "description": "What the archive holds and how each run went. Search, facet and "
                           "query the releases here; the files are linked from their paths.",
            "tables": {
                "releases": {
                    "title": "Releases",
                    "description": "One row per archived release. Search titles and bodies "
                                   "(porter stemming); facet by minister, portfolio and year.",
                    "fts_table": "releases_fts",
                    "fts_pk": "rowid",
                    "sort_desc": "published",
                    "label_column": "title",
                    "facets": [{"array": "ministers"}, {"array": "portfolios"},
                               {"year": "date"}, "origin"],
                    "columns": RELEASE_COLUMNS,
                },
                "revisions": {
                    "title": "Revisions",
                    "description": "Every distinct content version of each release, "
                                   "revision 1 first (the latest one's region is the "
                                   "release's own, in releases).",
                    "sort_desc": "captured",
                },
                "changes": {
                    "title": "Change log",
                    "description": "What happened to the archive, in order: new, updated, "
                                   "gone, moved.",
                    "sort_desc": "id",
                },
                "failures": {
                    "title": "Failures",
                    "description": "Releases whose last attempt failed, and why; the next "
                                   "crawl tries them again (one that answered 404 before "
                                   "it was ever captured: at next_try, unless given_up).",
                },
                "aliases": {"title": "Aliases",
                            "description": "URLs that led to a release under another URL."},
                "runs": {"title": "Runs", "description": "One row per crawl or rebuild.",
                         "sort_desc": "id"},
                "walks": {"title": "Discovery walks",
                          "description": "How far each discovery walk got."},
            },
            "queries": QUERIES,
        }},
    }


def datasette_arguments(ledger: Path, out: Path, host: str, port: int,
                        metadata_file: Path) -> list[str]:
    """The ``datasette serve`` command line that ``beehive serve`` runs."""
    metadata_file.write_text(json.dumps(metadata(ledger.stem), indent=2), encoding="utf-8")
    arguments = ["serve", str(ledger), "--host", host, "--port", str(port),
                 "--metadata", str(metadata_file), "--plugins-dir", str(PLUGINS),
                 "--setting", "default_page_size", "50"]
    if (out / "releases").is_dir():
        arguments += ["--static", f"releases:{out / 'releases'}"]
    return arguments
