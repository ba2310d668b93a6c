"""The ``beehive`` command line: a thin layer over the same functions the crawl uses."""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlsplit

import click

from archive.archiver import DEFAULT_OUT, ArchiveBusy

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BLOCKED, EXIT_BUSY = 0, 1, 2, 3, 4

EXIT_STATUSES = """\b
Exit status:
  0  every discovered release was captured
  1  some releases (or listing pages) failed; the ledger says which and why
  2  usage error
  3  the site's bot protection blocked the crawler, and the run stopped early
  4  another beehive run is using this archive"""


def fail(message: str, status: int = EXIT_FAILED):
    click.echo(f"beehive: error: {message}", err=True)
    sys.exit(status)


def archive_options(command):
    """--out and --db, shared by every command that opens an archive."""
    command = click.option(
        "--db", type=click.Path(dir_okay=False), envvar="BEEHIVE_DB", show_envvar=True,
        help="The ledger (SQLite). Default: DIR/ledger.db.")(command)
    command = click.option(
        "--out", "out", type=click.Path(file_okay=False), default=DEFAULT_OUT,
        envvar="BEEHIVE_OUT", show_envvar=True, show_default=True,
        help="The archive folder: receives releases/YYYY/MM/YYYY-MM-DD-<slug>.md.")(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="beehive-archive")
def cli():
    """Keep a faithful local archive of New Zealand Government press releases
    from www.beehive.govt.nz, as Markdown files with YAML front matter and a
    SQLite ledger.

    \b
    beehive crawl                   # fetch what is new into ./beehive-archive
    beehive convert page.html       # one saved release page to Markdown
    """


def base_url_type(value):
    parts = urlsplit(value or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter(f"not an http(s) URL: {value!r}")
    return value.rstrip("/")


def setting_pair(ctx, param, values):
    pairs = []
    for value in values:
        name, sep, setting = value.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {value!r}")
        pairs.append((name.strip(), setting))
    return pairs


@cli.command(epilog=EXIT_STATUSES)
@click.option("--base-url", default="https://www.beehive.govt.nz", show_default=True,
              callback=lambda ctx, param, value: base_url_type(value),
              help="Where requests go. Links that name www.beehive.govt.nz are fetched from "
                   "here instead, so the crawl can run against a mirror or a test replica.")
@archive_options
@click.option("--delay", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Seconds between requests (one request at a time).")
@click.option("--full", is_flag=True,
              help="Walk the whole listing and fetch every release again (picks up edits), "
                   "instead of stopping at the first listing page with nothing new.")
@click.option("-s", "--set", "settings", multiple=True, metavar="NAME=VALUE",
              callback=setting_pair, help="A Scrapy setting, as with scrapy crawl -s.")
def crawl(base_url, out, db, delay, full, settings):
    """Archive the releases published since the last run.

    Walks the listing newest first and fetches each release the ledger does not
    hold, stopping at the first listing page with nothing new. The first run
    walks the whole listing. Releases that failed last time are tried again.
    Ends with one line starting 'beehive summary:'.

    \b
    beehive crawl
    beehive crawl --out ~/beehive --delay 2
    beehive crawl --base-url http://127.0.0.1:8000 -s LOG_LEVEL=WARNING
    """
    from scrapy.crawler import CrawlerProcess
    from scrapy.settings import Settings

    from scraper.pipelines import OUTCOME_EXIT

    crawl_settings = Settings()
    crawl_settings.setmodule("scraper.settings", priority="project")
    crawl_settings.update({
        "BEEHIVE_BASE_URL": base_url,
        "BEEHIVE_OUT": out,
        "BEEHIVE_DB": db,
        "DOWNLOAD_DELAY": delay,
        "BEEHIVE_FULL": full,
    }, priority="cmdline")
    crawl_settings.update(dict(settings), priority="cmdline")

    process = CrawlerProcess(crawl_settings)
    crawler = process.create_crawler("releases")
    errors = []
    process.crawl(crawler).addErrback(errors.append)
    process.start()
    if errors:
        error = errors[0].value
        if isinstance(error, ArchiveBusy):
            fail(f"{error}; try again when it has finished", EXIT_BUSY)
        fail(f"the crawl could not run: {type(error).__name__}: {error}")
    outcome = crawler.stats.get_value("beehive/outcome")
    sys.exit(OUTCOME_EXIT.get(outcome, EXIT_FAILED))


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--url", help="The release's canonical URL, when the page does not give it.")
@click.option("--out", type=click.Path(file_okay=False),
              help="Write each file to its archive path under DIR/releases/ instead of stdout.")
def convert(files, url, out):
    """Convert saved release pages to seed-format Markdown, offline.

    One file and no --out prints the Markdown on stdout. The URL comes from the
    page's canonical link unless --url is given.

    \b
    beehive convert saved-page.html > release.md
    beehive convert pages/*.html --out ./beehive-archive
    """
    from archive.parse import ParseError, parse_release
    from archive.render import render_document
    from archive.store import Store, UnsafePath, release_path

    if len(files) > 1 and not out:
        raise click.UsageError("several files need --out DIR")
    store = Store(out) if out else None
    problems = 0
    for name in files:
        try:
            release = parse_release(Path(name).read_bytes(), url)
            document = render_document(release)
            if store is None:
                # Byte for byte as the file would hold it: no newline added at the end.
                click.get_binary_stream("stdout").write(document.encode("utf-8"))
            else:
                path = release_path(release.date, release.slug)
                store.write(path, document)
                click.echo(f"{name} -> {Path(out) / path}")
        except (ParseError, UnsafePath, OSError) as error:
            click.echo(f"beehive: error: {name}: {error}", err=True)
            problems += 1
    if problems:
        sys.exit(EXIT_FAILED)
