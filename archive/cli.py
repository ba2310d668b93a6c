"""The ``beehive`` command line: a thin layer over the same functions the crawl uses."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
import sys
from pathlib import Path
from urllib.parse import urlsplit

import click

from archive.archiver import DEFAULT_OUT, ArchiveBusy
from archive.ledger import NotALedger

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BLOCKED, EXIT_BUSY, EXIT_UNREACHABLE = 0, 1, 2, 3, 4, 5

# Limits on what a user may ask for (README: "Limits"): beyond them a command would run for
# minutes, fork without bound or read without end, so they are refused in one line.
MAX_QUERY = 1000  # characters in a search query
MAX_JOBS = 4 * (os.cpu_count() or 1)  # rebuild's processes: more only queue for the cores
MAX_CONVERT = 5 * 1024 * 1024  # bytes of a page to convert: the crawl's DOWNLOAD_MAXSIZE
MAX_NUMBER = 2**63 - 1  # SQLite's largest integer: revision numbers, run ids, limits

EXIT_STATUSES = """\b
Exit status:
  0  every discovered release was captured
  1  some releases (or listing pages) failed or stayed blocked; the ledger says which
     and why; or the writer process was killed under the run; or history discovery is
     incomplete (the search gave no results: see status)
  2  usage error
  3  the site's bot protection blocked the crawler, and the run stopped early
     (a CAPTCHA; many pages blocked; or its JavaScript challenge with no browser)
  4  another beehive run is using this archive
  5  the site could not be reached (DNS failure, connection refused)
  130, 143  stopped by Ctrl-C (SIGINT) or SIGTERM: the run is recorded 'interrupted'
     (what it captured is kept; the next run goes on from there)"""


def fail(message: str, status: int = EXIT_FAILED):
    click.echo(f"beehive: error: {message}", err=True)
    sys.exit(status)


def named(ctx, param, value):
    """An empty --out or --db would mean the current folder, or nothing: never meant."""
    if value is not None and not value.strip():
        raise click.BadParameter("empty: give a path")
    return value


def archive_options(command):
    """--out and --db, shared by every command that opens an archive."""
    command = click.option(
        "--db", type=click.Path(dir_okay=False), envvar="BEEHIVE_DB", show_envvar=True,
        callback=named, help="The ledger (SQLite). Default: DIR/ledger.db.")(command)
    command = click.option(
        "--out", "out", type=click.Path(file_okay=False), default=DEFAULT_OUT,
        envvar="BEEHIVE_OUT", show_envvar=True, show_default=True, callback=named,
        help="The archive folder: receives releases/YYYY/MM/YYYY-MM-DD-<slug>.md.")(command)
    return command


def reader_gone():
    """The program reading our output went away (`beehive export | head -1`): stop at once
    and quietly, the way Unix tools do, by dying of SIGPIPE (the shell reports status 141)."""
    # Python ignores SIGPIPE and would complain again when it flushes stdout at exit.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGPIPE)


class BeehiveGroup(click.Group):
    """Turns the errors a user can cause (a ledger that is not SQLite, a folder that cannot
    be written) into one line and exit status 1, instead of a traceback, and usage errors
    (a bad option, a file that is no beehive ledger, bytes that are not UTF-8, a number too
    large) into one line and exit status 2; and ends every command quietly when the reader
    of its output goes away."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """Click's own handling, but a usage error is one line like every other refusal:
        ``beehive: error: …`` and exit 2 (click prints a usage line and a hint too)."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        for argument in sys.argv[1:] if args is None else args:
            # Bytes that are not UTF-8 reach Python as lone surrogates, which neither SQLite
            # nor the terminal can take: refused here, for every command and option.
            if any("\udc80" <= char <= "\udcff" for char in str(argument)):
                shown = os.fsencode(argument).decode("utf-8", "backslashreplace")
                fail(f"not UTF-8 text: '{shown}'", EXIT_USAGE)
        try:
            result = super().main(args, prog_name, complete_var, False, **extra)
        except click.exceptions.NoArgsIsHelpError as error:  # `beehive` alone: the help
            error.show()
            sys.exit(error.exit_code)
        except click.ClickException as error:
            fail(" ".join(error.format_message().split()), error.exit_code)
        except click.Abort:  # Ctrl-C (or end of input at a prompt): as shells report it
            fail("interrupted", 128 + signal.SIGINT)
        sys.exit(result if isinstance(result, int) else EXIT_OK)

    def invoke(self, ctx):
        try:
            try:
                return super().invoke(ctx)
            finally:
                # Output still buffered meets a closed pipe here, not at interpreter exit.
                sys.stdout.flush()
        except BrokenPipeError:
            reader_gone()
        except NotALedger as error:
            fail(str(error), EXIT_USAGE)
        except OverflowError as error:  # a number past what SQLite or datetime can hold
            fail(f"a number is too large: {error}", EXIT_USAGE)
        except sqlite3.DatabaseError as error:
            fail(f"the ledger cannot be used: {error}")
        except OSError as error:
            fail(f"{error.strerror or error}: {error.filename or ''}".rstrip(": "))


@click.group(cls=BeehiveGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
    from scraper.checks import SettingError, check_base_url

    try:
        return check_base_url(value)
    except SettingError as error:
        raise click.BadParameter(str(error)) from None


def browser_mode(ctx, param, value):
    from scraper.checks import SettingError, check_browser

    try:
        return check_browser(value)
    except SettingError as error:
        raise click.BadParameter(str(error)) from None


def setting_pair(ctx, param, values):
    pairs = []
    for value in values:
        name, sep, setting = value.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {value!r}")
        pairs.append((name.strip(), setting))
    return pairs


def release_urls(ctx, param, values):
    """--url values: release (or /node/N) URLs on the production host or any http(s) host."""
    from archive.urls import PRODUCTION

    checked = []
    for value in values:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname or \
                not re.fullmatch(r"/(release/[^/?#]+|node/\d+)", parts.path):
            raise click.BadParameter(
                f"not a release URL (like {PRODUCTION}/release/<slug>): {value!r}")
        checked.append(value.strip())
    return checked


@cli.command(epilog=EXIT_STATUSES)
@click.option("--base-url", default="https://www.beehive.govt.nz", show_default=True,
              callback=lambda ctx, param, value: base_url_type(value),
              help="Where requests go. Links that name www.beehive.govt.nz are fetched from "
                   "here instead, so the crawl can run against a mirror or a test replica.")
@archive_options
@click.option("--delay", type=click.FloatRange(min=0, max=86400), default=1.0, show_default=True,
              help="Seconds between requests (one request at a time).")
@click.option("--full", is_flag=True,
              help="Walk the whole listing and every government's search, and fetch every "
                   "release again (picks up edits), instead of stopping at the first page "
                   "with nothing new. Also tries again a search that gave no results, and "
                   "releases that answered 404 before they were ever captured, given up or "
                   "not yet due.")
@click.option("--seed", "seeds", multiple=True, metavar="FILE",
              type=click.Path(exists=True, dir_okay=False),
              help="Also fetch the releases this file names, unless archived: one URL a line "
                   "('#' comments), the discovery-index JSON of the reference exporter, or a "
                   "sitemap. Repeatable. For when the site's search gives no results.")
@click.option("--warc", is_flag=True,
              help="Also keep every response received (robots.txt, listing and release "
                   "pages…), with its request, exactly as it arrived, in gzipped WARC 1.1 "
                   "files under DIR/warc/, one per run (setting BEEHIVE_WARC).")
@click.option("-o", "--output", "outputs", multiple=True, metavar="FILE[:FORMAT]",
              help="Append a record of each release this run archives or updates to FILE "
                   "(Scrapy's feed exports, as with scrapy crawl -o: the format from the "
                   "extension, .jsonl .json .csv .xml, or after a colon; '-:jsonl' is stdout).")
@click.option("-O", "--overwrite-output", "overwrites", multiple=True, metavar="FILE[:FORMAT]",
              help="As -o, but replace FILE instead of appending to it.")
@click.option("--url", "urls", multiple=True, metavar="URL", callback=release_urls,
              help="Fetch exactly this release now, archived or new, and nothing else "
                   "(no listing, no rechecks, no retries); repeatable. A new version "
                   "becomes a new revision.")
@click.option("--recheck-max", type=click.IntRange(min=0, max=100_000), default=30,
              show_default=True,
              help="Recheck at most this many archived releases whose recheck is due, "
                   "most overdue first, with conditional requests; 0 turns rechecks off.")
@click.option("--browser", default="auto", show_default=True, metavar="auto|off|URL",
              envvar="BEEHIVE_BROWSER", show_envvar=True, callback=browser_mode,
              help="For the site's bot protection (its JavaScript challenge): 'auto' starts "
                   "a headless Chromium at the first challenge and reuses the token it earns "
                   "for plain requests; 'off' never does (a challenge stops the run, exit 3); "
                   "or a remote browser's DevTools endpoint (http://HOST:PORT, ws://...).")
@click.option("--browser-executable", metavar="PATH", envvar="BEEHIVE_BROWSER_EXECUTABLE",
              show_envvar=True, type=click.Path(exists=True, dir_okay=False),
              help="A system Chrome or Chromium for --browser auto, instead of Playwright's "
                   "own (which 'playwright install chromium' downloads).")
@click.option("-v", "--verbose", is_flag=True,
              help="Show Scrapy's log at INFO level (LOG_LEVEL=INFO) instead of warnings only.")
@click.option("-s", "--set", "settings", multiple=True, metavar="NAME=VALUE",
              callback=setting_pair, help="A Scrapy setting, as with scrapy crawl -s.")
def crawl(base_url, out, db, delay, full, seeds, warc, outputs, overwrites, urls, recheck_max,
          browser, browser_executable, verbose, settings):
    """Archive the releases published since the last run.

    Reads the site-wide feed (/rss.xml) and fetches each release the ledger
    does not hold; when the feed does not reach back to an archived release,
    walks the listing newest first until a page with nothing new. The first
    run walks the whole listing, and the site's search for each government
    since 1993 (the listing covers the current government only); a run after
    one that was interrupted resumes the walks where they stopped. Releases
    that failed last time are tried again once the walks are done (one that
    answered 404 before it was ever captured: by the next run, then after 1
    hour, 6 hours, 1 day, 1 week and monthly, until 90 days of 404s give it
    up), and archived releases whose recheck is due (on a schedule by age) are
    asked again with conditional requests: an edit becomes a new revision.
    Where the site's bot protection answers with its JavaScript challenge, a
    headless browser passes it and plain requests reuse the token it earns
    (--browser); the search is read through it. Prints warnings only, a live
    progress line when stderr is a terminal, and one line starting 'beehive
    summary:' at the end.

    \b
    beehive crawl
    beehive crawl --out ~/beehive --delay 2
    beehive crawl -v                  # Scrapy's INFO log
    beehive crawl --seed 1999-2002-labour.json --seed more-urls.txt
    beehive crawl --base-url http://127.0.0.1:8000 -s LOG_LEVEL=ERROR
    beehive crawl -O new.jsonl        # also: what this run archived, one record a line
    beehive crawl --url https://www.beehive.govt.nz/release/some-slug
    beehive crawl --browser-executable /usr/bin/chromium
    beehive crawl --browser ws://127.0.0.1:3000   # a remote browser (Browserless...)
    """
    from scrapy.crawler import CrawlerProcess
    from scrapy.exceptions import UsageError
    from scrapy.settings import Settings
    from scrapy.utils.conf import feed_process_params_from_cli

    from archive.ledger import LedgerDamaged
    from scraper.checks import SettingError, check_settings, local_feed_path
    from scraper.discovery import SeedError, read_seeds
    from scraper.pipelines import OUTCOME_EXIT

    crawl_settings = Settings()
    crawl_settings.setmodule("scraper.settings", priority="project")
    crawl_settings.update({
        "BEEHIVE_BASE_URL": base_url,
        "BEEHIVE_OUT": out,
        "BEEHIVE_DB": db,
        "DOWNLOAD_DELAY": delay,
        "BEEHIVE_FULL": full,
        "BEEHIVE_RECHECK_MAX": recheck_max,
        "BEEHIVE_BROWSER": browser,
        "LOG_LEVEL": "INFO" if verbose else "WARNING",
    }, priority="cmdline")
    if browser_executable:
        crawl_settings.set("BEEHIVE_BROWSER_EXECUTABLE", browser_executable, priority="cmdline")
    if seeds:
        crawl_settings.set("BEEHIVE_SEEDS", list(seeds), priority="cmdline")
    if urls:
        hosts = {urlsplit(base_url).netloc, "www.beehive.govt.nz", "beehive.govt.nz"}
        for url in urls:
            if urlsplit(url).netloc not in hosts:
                raise click.BadParameter(f"not on {base_url} nor www.beehive.govt.nz: {url!r}",
                                         param_hint="'--url'")
        crawl_settings.set("BEEHIVE_URLS", list(urls), priority="cmdline")
    if warc:
        crawl_settings.set("BEEHIVE_WARC", True, priority="cmdline")
    crawl_settings.update(dict(settings), priority="cmdline")
    if outputs or overwrites:
        # Scrapy's own translation of -o/-O into FEEDS, so both commands export alike.
        try:
            feeds = feed_process_params_from_cli(crawl_settings, list(outputs),
                                                 overwrite_output=list(overwrites))
        except UsageError as error:
            raise click.UsageError(str(error)) from None
        crawl_settings.set("FEEDS", feeds, priority="cmdline")
    for uri in crawl_settings.getdict("FEEDS"):  # also in check_settings; here, named -o/-O
        local = local_feed_path(str(uri))
        if local is not None:
            check_output(local, out, db, "-o/-O")
    try:
        check_settings(crawl_settings)
    except SettingError as error:
        raise click.BadParameter(str(error), param_hint="'-s'") from None
    for seed in crawl_settings.getlist("BEEHIVE_SEEDS"):
        try:  # read again by the spider; here, so that a bad one touches nothing
            read_seeds(seed)
        except SeedError as error:
            fail(str(error), EXIT_USAGE)
    click.echo(f"beehive: crawling {base_url} into {out}", err=True)
    if ledger_path(out, db).exists():  # a missing one is made; any other must be beehive's
        check_ledger(ledger_path(out, db))

    process = CrawlerProcess(crawl_settings)
    crawler = process.create_crawler("releases")
    errors = []
    process.crawl(crawler).addErrback(errors.append)
    process.start()
    if errors:
        error = errors[0].value
        if isinstance(error, ArchiveBusy):
            fail(f"{error}; try again when it has finished", EXIT_BUSY)
        if isinstance(error, SeedError):
            fail(str(error), EXIT_USAGE)
        if isinstance(error, NotALedger):
            fail(str(error), EXIT_USAGE)
        if isinstance(error, LedgerDamaged):
            fail(unusable(error))
        if isinstance(error, OSError):
            fail(f"{error.strerror or error}: {error.filename or ''}".rstrip(": "))
        fail(f"the crawl could not run: {type(error).__name__}: {error}")
    outcome = crawler.stats.get_value("beehive/outcome")
    if outcome == "interrupted":
        sys.exit(128 + crawler.stats.get_value("beehive/interrupted"))
    sys.exit(OUTCOME_EXIT.get(outcome, EXIT_FAILED))


def read_page(name: str) -> bytes:
    """A saved page, read up to MAX_CONVERT bytes: a larger one (or /dev/zero) is refused
    after that many, as the crawl refuses a larger response."""
    with open(name, "rb") as handle:
        data = handle.read(MAX_CONVERT + 1)
    if len(data) > MAX_CONVERT:
        raise ValueError(f"larger than {MAX_CONVERT // (1024 * 1024)} MiB: not a release page")
    return data


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--url", help="The release's canonical URL, when the page does not give it.")
@click.option("--out", type=click.Path(file_okay=False), callback=named,
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
            release = parse_release(read_page(name), url)
            document = render_document(release)
            if store is None:
                # Byte for byte as the file would hold it: no newline added at the end.
                click.get_binary_stream("stdout").write(document.encode("utf-8"))
            else:
                path = release_path(release.date, release.slug)
                held = store.read_bytes(path)
                if held is not None and held != document.encode("utf-8", "surrogatepass"):
                    # Perhaps the archive's capture of it: never replaced by a saved page.
                    raise UnsafePath(f"{Path(out) / path} exists and differs; not overwritten "
                                     "(remove it first, or convert into another folder)")
                if held is None:
                    store.write(path, document)
                click.echo(f"{name} -> {Path(out) / path}")
        except (ParseError, UnsafePath, OSError, ValueError) as error:  # ConversionError too
            click.echo(f"beehive: error: {name}: {error}", err=True)
            problems += 1
    if problems:
        sys.exit(EXIT_FAILED)


# -- offline commands: rebuild, verify, status, export, search ----------------------------

def ledger_path(out, db) -> Path:
    return Path(db) if db else Path(out) / "ledger.db"


def check_ledger(path: Path, thorough: bool = False) -> None:
    """SQLite's own check of the ledger, before anything reads or writes by it: a damaged
    ledger is one line and exit 1, a file that is no beehive ledger one line and exit 2,
    and nothing is touched."""
    from archive.ledger import LedgerDamaged, check_integrity, check_ledger_file

    try:
        check_integrity(path, thorough=thorough)
    except LedgerDamaged as error:
        fail(unusable(error))
    check_ledger_file(path)


def unusable(error) -> str:
    return (f"the ledger cannot be used: {error}; nothing was changed "
            "(restore the ledger from a backup)")


def existing_ledger(out, db, thorough: bool = False) -> Path:
    """The archive's ledger, there and intact: a missing one is an error, not a new empty
    file, and a damaged one is refused (check_ledger)."""
    path = ledger_path(out, db)
    if not path.is_file():
        fail(f"no ledger at {path}: run 'beehive crawl' first, or give --out/--db")
    check_ledger(path, thorough)
    return path


def check_output(target, out, db, option: str) -> None:
    """An output file (export -o, a crawl's feed) must not land on the archive itself: its
    ledger, the files beside it, anything under releases/ or warc/. A usage error, exit 2,
    before anything is written."""
    from archive.store import archive_owns

    if archive_owns(target, out, ledger_path(out, db)):
        raise click.BadParameter(f"{target} is part of the archive {out}; write it elsewhere",
                                 param_hint=f"'{option}'")
    folder = Path(target).parent
    if Path(target).is_dir():
        raise click.BadParameter(f"{target} is a folder", param_hint=f"'{option}'")
    if not folder.is_dir():
        raise click.BadParameter(f"no folder {folder} to write {target} in",
                                 param_hint=f"'{option}'")
    if not os.access(folder, os.W_OK):
        raise click.BadParameter(f"cannot write in {folder} (permission denied)",
                                 param_hint=f"'{option}'")


def open_ledger(out, db):
    """The archive's ledger, for reading only: it works in an archive this account may not
    write (a web server's account, a mounted backup), and cannot change the file."""
    from archive.ledger import Ledger

    return Ledger(existing_ledger(out, db), readonly=True)


def open_archive(out, db, thorough: bool = False, readonly: bool = False):
    """The archive, locked for this process (exit 4 when another run holds it)."""
    from archive.archiver import Archiver

    existing_ledger(out, db, thorough)
    try:
        return Archiver(out, db, readonly=readonly).lock()
    except ArchiveBusy as error:
        fail(f"{error}; try again when it has finished", EXIT_BUSY)


OFFLINE_EXIT = """\b
Exit status:
  0  ok
  1  problems found (listed), or the command failed
  2  usage error
  4  another beehive run is using this archive"""


@cli.command(epilog=OFFLINE_EXIT)
@archive_options
@click.option("--prune", is_flag=True,
              help="Delete files under releases/ that the ledger does not know.")
@click.option("-j", "--jobs", type=click.IntRange(min=1, max=MAX_JOBS), default=None,
              help="Processes that render (default: one per available core; at most four "
                   "per core).")
def rebuild(out, db, prune, jobs):
    """Regenerate every release's file from the ledger, offline.

    Uses the page content the ledger keeps and the crawl's own render and save
    steps: files already right are left alone (their modification times stay),
    changed or missing ones are written atomically, and the ledger's hashes and
    paths follow. Files under releases/ the ledger does not know are listed,
    and deleted with --prune. Ends with one line starting 'beehive summary:'.

    \b
    beehive rebuild                  # after a converter upgrade, or a lost folder
    beehive rebuild --prune          # also delete files the ledger does not know
    """
    from archive.rebuild import rebuild as run_rebuild

    archiver = open_archive(out, db)
    try:
        total = archiver.ledger.count()
        if prune and total == 0 and archiver.store.files():
            # A ledger that knows none of the files is another archive's (a wrong --db),
            # not proof that every file is stray.
            archiver.close()
            fail(f"the ledger {ledger_path(out, db)} holds no releases, so --prune would "
                 f"delete every file under {Path(out) / 'releases'}; nothing was deleted "
                 "(is it this archive's ledger?)", EXIT_USAGE)
        if sys.stderr.isatty():
            with click.progressbar(length=total, label="rebuilding", file=sys.stderr,
                                   show_pos=True) as bar:
                result = run_rebuild(archiver, prune=prune, jobs=jobs, progress=bar.update)
        else:
            result = run_rebuild(archiver, prune=prune, jobs=jobs)
    finally:
        archiver.close()
    if result.temporary:
        click.echo(f"removed {result.temporary} temporary files left by an interrupted run",
                   err=True)
    for failure in result.failed:
        click.echo(f"failed: {failure.url}: {failure.reason}", err=True)
    for path in result.strays:
        click.echo(f"{'pruned' if prune else 'stray'}: {path}", err=True)
    if result.strays and not prune:
        click.echo(f"{len(result.strays)} files under releases/ are not in the ledger; "
                   "--prune deletes them", err=True)
    if result.imported:
        click.echo(f"{result.imported} imported releases left as they are: never captured, "
                   "they have no page to render them from", err=True)
    click.echo(result.summary(), err=True)
    sys.exit(EXIT_FAILED if result.failed else EXIT_OK)


@cli.command(epilog=OFFLINE_EXIT)
@archive_options
def verify(out, db):
    """Check that the ledger is intact and that files and ledger agree, changing nothing.

    First SQLite's full integrity check of the ledger (a damaged ledger is one
    line and exit 1). Then every release in the ledger must have its file, with
    the recorded SHA-256, and front matter that python-frontmatter reads; no
    other files may sit under releases/ (temporary files an interrupted write
    left count too).
    Prints one problem per line and exits 1, or one line saying all is well.
    """
    from archive.rebuild import verify as run_verify

    archiver = open_archive(out, db, thorough=True, readonly=True)
    try:
        checked, problems = run_verify(archiver)
    finally:
        archiver.close()
    for problem in problems:
        click.echo(problem)
    if problems:
        click.echo(f"beehive verify: {len(problems)} problems ({checked} releases in the ledger)",
                   err=True)
        sys.exit(EXIT_FAILED)
    click.echo(f"OK: {checked} releases, files and ledger agree")


def duration_type(ctx, param, value):
    from datetime import datetime, timezone

    from archive.report import parse_duration

    try:
        duration = parse_duration(value)
        datetime.now(timezone.utc) - duration  # noqa: B018 - a moment that exists
        return duration
    except OverflowError:
        raise click.BadParameter(f"too long: {value!r}") from None
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


@cli.command(epilog="""\b
Exit status:
  0  ok (with --check: the last crawl ended ok within --max-age)
  1  the command failed (with --check: the last crawl did not end ok, or too long ago)
  2  usage error""")
@archive_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
@click.option("--check", is_flag=True,
              help="For monitoring (cron, systemd OnFailure=, Nagios): one line, and exit 0 "
                   "only if the last crawl ended ok within --max-age.")
@click.option("--max-age", default="2h", show_default=True, metavar="DURATION",
              callback=duration_type, help="With --check: how old the last ok crawl may be "
                                           "(90m, 2h, 1d, 1h30m).")
def status(out, db, as_json, check, max_age):
    """What the archive holds and how the last run went.

    Releases archived, revisions held, releases due for a recheck and gone from
    the site, the oldest and newest, the last run and its figures (and why it
    ended as it did), and every release whose last attempt failed, with the
    reason; apart from them, releases that answered 404 or 410 before they were
    ever captured, with when they first and last did, and their next try (or,
    after 90 days of 404s, since when they are given up).

    \b
    beehive status
    beehive status --check --max-age 90m || alert "beehive is behind"
    """
    import json

    from archive.report import check as report_check, format_status, status as report_status

    ledger = open_ledger(out, db)
    try:
        if check:
            ok, line = report_check(ledger, max_age)
            click.echo(f"{'OK' if ok else 'PROBLEM'}: {line}")
            sys.exit(EXIT_OK if ok else EXIT_FAILED)
        report = report_status(ledger)
    finally:
        ledger.close()
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        for line in format_status(report):
            click.echo(line)


@cli.command(epilog=OFFLINE_EXIT)
@archive_options
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl",
              show_default=True, help="JSON Lines, or CSV with a header (lists as JSON).")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="Only releases published on or after this UTC date.")
@click.option("-o", "--output", default="-", type=click.Path(dir_okay=False, allow_dash=True),
              help="Write here instead of stdout ('-').")
@click.option("--revisions", is_flag=True,
              help="One record per revision instead of per release: every version the "
                   "archive holds, with its 'revision' number and 'captured' time.")
def export(out, db, fmt, since, output, revisions):
    """Every release as one record: front-matter fields, the UTC timestamp,
    the New Zealand date, the body Markdown, the path and the hash.

    Oldest first; streamed from the ledger, so memory stays flat.

    \b
    beehive export > releases.jsonl
    beehive export --format csv --since 2024-01-01 -o 2024.csv
    """
    from archive.report import export as run_export
    from archive.store import write_atomically

    if output != "-":
        check_output(output, out, db, "-o")
    ledger = open_ledger(out, db)
    try:
        if output == "-":
            stream = click.get_text_stream("stdout", encoding="utf-8")
            run_export(ledger, stream, fmt, since and since.strftime("%Y-%m-%d"), revisions)
            stream.flush()
        elif Path(output).exists() and not Path(output).resolve().is_file():
            # /dev/stdout, a named pipe: written to as it is, never renamed over
            with open(output, "w", encoding="utf-8", newline="") as stream:
                run_export(ledger, stream, fmt, since and since.strftime("%Y-%m-%d"), revisions)
        else:
            write_atomically(Path(output).resolve(), lambda stream: run_export(
                ledger, stream, fmt, since and since.strftime("%Y-%m-%d"), revisions))
    finally:
        ledger.close()


@cli.command(epilog=OFFLINE_EXIT)
@archive_options
@click.argument("query")
@click.option("-n", "--limit", type=click.IntRange(min=1, max=MAX_NUMBER), default=20,
              show_default=True, help="At most this many hits.")
def search(out, db, query, limit):
    """Full-text search of titles and bodies; prints date, title and path per hit,
    best first, tab-separated.

    QUERY is SQLite FTS5 syntax: words (all must match, stemmed), "a phrase",
    prefix*, OR, NOT, title:word.

    \b
    beehive search housing
    beehive search '"climate change" NOT emissions' --limit 5
    """
    import sqlite3

    from archive.report import search as run_search

    if len(query) > MAX_QUERY:
        raise click.BadParameter(f"{len(query)} characters; at most {MAX_QUERY}",
                                 param_hint="QUERY")
    ledger = open_ledger(out, db)
    try:
        hits = run_search(ledger, query, limit)
    except sqlite3.OperationalError as error:
        fail(f"bad search query {query!r}: {error}", EXIT_USAGE)
    finally:
        ledger.close()
    for hit in hits:
        click.echo(f"{hit['date']}\t{hit['title']}\t{hit['path']}")


@cli.command(epilog="""\b
Exit status:
  0  stopped with Ctrl-C
  1  no usable ledger, Datasette not installed, or the port is taken
  2  usage error""")
@archive_options
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The address to listen on. The default answers only this machine; "
                   "0.0.0.0 answers everyone who can reach it.")
@click.option("-p", "--port", type=click.IntRange(1, 65535), default=8001, show_default=True,
              help="The port to listen on.")
def serve(out, db, host, port):
    """Browse, search and query the archive in Datasette (a web browser).

    Needs the 'serve' extra: pip install 'beehive-archive[serve]'. Serves the
    ledger read-only, with full-text search on releases, facets by minister,
    portfolio and year, canned queries (releases per minister, per month,
    recently changed, revisions of a release), and each release's path linked
    to its Markdown file. Stops with Ctrl-C.

    \b
    beehive serve                       # then open http://127.0.0.1:8001/
    beehive serve --port 9000 --out ~/beehive
    """
    import tempfile

    try:
        from datasette.cli import cli as datasette_cli
    except ImportError:
        fail("beehive serve needs Datasette: pip install 'beehive-archive[serve]'")
    from archive.serve import datasette_arguments

    if not host.strip():
        # Datasette would listen on every interface: never what an empty value meant.
        raise click.BadParameter("empty: give an address (0.0.0.0 for every interface)",
                                 param_hint="'--host'")
    path = ledger_path(out, db)
    if not path.is_file():
        fail(f"no ledger at {path}: run 'beehive crawl' first, or give --out/--db")
    check_ledger(path)
    port_free(host, port)
    with tempfile.TemporaryDirectory(prefix="beehive-serve-") as folder:
        arguments = datasette_arguments(path, Path(out), host, port,
                                        Path(folder) / "metadata.json")
        datasette_cli.main(args=arguments, prog_name="datasette", standalone_mode=False)


def port_free(host: str, port: int) -> None:
    """Can Datasette listen there? Asked first, so that a port in use is one line and exit
    1, not the server's log and its own exit status."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as error:
        raise click.BadParameter(f"cannot listen on {host!r}: {error}",
                                 param_hint="'--host'") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind(address)
        except OSError as error:
            fail(f"cannot listen on {host} port {port}: {error.strerror or error}")


# -- history: revisions of a release, and the change log --------------------------------

@contextlib.contextmanager
def release_found():
    """An unknown release or revision is one line and exit status 1."""
    from archive.history import NotFound

    try:
        yield
    except NotFound as error:
        fail(str(error))


@cli.command(epilog=OFFLINE_EXIT)
@archive_options
@click.argument("release", metavar="URL_OR_SLUG")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line instead of text.")
def history(out, db, release, as_json):
    """Every version of a release the archive holds, oldest first.

    One line per revision: its number, when it was captured (UTC), the start of
    the SHA-256 of its file, and the lines added and removed against the
    revision before. URL_OR_SLUG is the release's URL, its slug, or its file.

    \b
    beehive history https://www.beehive.govt.nz/release/some-slug
    beehive history some-slug --json
    """
    import json

    from archive.history import history as read_history

    ledger = open_ledger(out, db)
    try:
        with release_found():
            found, entries = read_history(ledger, release)
    finally:
        ledger.close()
    for entry in entries:
        if as_json:
            click.echo(json.dumps({"url": found["url"], **entry}, ensure_ascii=False))
        else:
            click.echo(f"{entry['revision']}\t{entry['captured']}\t{entry['sha256'][:12]}"
                       f"\t+{entry['added']} -{entry['removed']}"
                       + ("\timported" if entry["source"] == "import" else ""))


@cli.command(epilog=OFFLINE_EXIT)
@archive_options
@click.argument("release", metavar="URL_OR_SLUG")
@click.option("-r", "--revision", type=click.IntRange(min=1, max=MAX_NUMBER), metavar="N",
              help="This revision (see 'beehive history').")
@click.option("--at", metavar="TIMESTAMP",
              help="The revision the archive held at this UTC moment "
                   "(YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ).")
def show(out, db, release, revision, at):
    """Print a release's file as it was: the latest revision, or --revision N,
    or the one held --at a moment. Byte for byte what the file held then (as
    long as the converter has not changed since).

    \b
    beehive show some-slug --revision 1
    beehive show some-slug --at 2025-06-01 > then.md
    """
    from archive.history import document, parse_moment, pick, release_revisions

    if revision is not None and at is not None:
        raise click.UsageError("give --revision or --at, not both")
    if at is not None:
        try:
            parse_moment(at)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="'--at'")
    ledger = open_ledger(out, db)
    try:
        with release_found():
            _, revisions = release_revisions(ledger, release)
            text = document(pick(revisions, revision, at))
    finally:
        ledger.close()
    click.get_binary_stream("stdout").write(text.encode("utf-8", "surrogatepass"))


@cli.command(epilog=OFFLINE_EXIT)
@archive_options
@click.argument("release", metavar="URL_OR_SLUG")
@click.argument("a", type=click.IntRange(min=1, max=MAX_NUMBER), required=False)
@click.argument("b", type=click.IntRange(min=1, max=MAX_NUMBER), required=False)
def diff(out, db, release, a, b):
    """A unified diff of a release's file between revisions A and B (default:
    the last two; A alone: from A to the latest).

    \b
    beehive diff some-slug
    beehive diff some-slug 1 3
    """
    from archive.history import diff as read_diff

    ledger = open_ledger(out, db)
    try:
        with release_found():
            lines = list(read_diff(ledger, release, a, b))
    finally:
        ledger.close()
    for line in lines:
        click.echo(line, nl=not line.endswith("\n"))


@cli.command(epilog=OFFLINE_EXIT)
@archive_options
@click.option("--since", metavar="TIMESTAMP|RUN_ID",
              help="Only changes after this: a UTC moment (exclusive; give the 'at' of the "
                   "last change you saw) or a run id (changes made by later runs). "
                   "Default: the whole log.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line instead of text.")
def changes(out, db, since, as_json):
    """What changed in the archive, in order: one line per change.

    Kinds: new (first capture), updated (a new revision, a file re-rendered, or
    a gone release answering again), gone (the site answered 404/410), moved
    (the release's slug was renamed: old path -> new path), redirected (its URL
    now redirects to another archived release: both are kept, the ledger's
    releases.moved_to names the other), imported (by 'beehive import', from a
    reference archive's file). Each line: at,
    kind, revision, path, sha256, url, tab-separated. A program that keeps the
    last 'at' it saw and asks again with --since gets every change exactly once.

    \b
    beehive changes --since 2026-01-01 --json
    beehive changes --since 2026-01-05T03:07:12.104331Z
    beehive changes --since 41        # made by runs after run 41
    """
    import json

    from archive.history import changes as read_changes, format_change, parse_moment

    if since is not None and since.strip().isdigit() and int(since) > MAX_NUMBER:
        raise click.BadParameter(f"no run has an id this large: {since}", param_hint="'--since'")
    if since is not None and not since.strip().isdigit():
        try:
            parse_moment(since)
        except ValueError as error:
            raise click.BadParameter(f"{error}, nor a run id", param_hint="'--since'")
    ledger = open_ledger(out, db)
    try:
        for change in read_changes(ledger, since):
            click.echo(json.dumps(change, ensure_ascii=False) if as_json
                       else format_change(change))
    finally:
        ledger.close()


# -- import: start from the public reference archive ----------------------------------------

@cli.command("import", epilog="""\b
Exit status:
  0  imported (files refused, if any, are listed: the crawl fetches those releases)
  1  nothing could be imported (every file refused), or the import failed
  2  usage error (PATH has no releases/ folder)
  4  another beehive run is using this archive""")
@click.argument("source", metavar="PATH", type=click.Path(exists=True, file_okay=False))
@archive_options
def import_(source, out, db):
    """Start the archive from the files of a reference archive, offline.

    PATH is a clone of the public reference archive (marcus-crane/beehive-markdown),
    or any folder laid out as releases/YYYY/MM/YYYY-MM-DD-<slug>.md. Each file
    is read with python-frontmatter and checked: a title, a publication date, a
    url that is a www.beehive.govt.nz release, a path that matches its date and
    slug, no block page's text, and one file per URL. Each good one is copied
    into the archive byte for byte and recorded in the ledger as an imported
    release (origin 'imported'; its revision 1 keeps the file's text and where
    it came from). Refused files are counted, and the first few named, by
    reason; those whose release is real (dated 0001-01-01, a block page) are
    left for the next crawl to fetch.

    A release the archive holds already, captured or imported, is never
    replaced, so importing the same folder again changes nothing, and an import
    that was interrupted is completed by running it again. The next 'beehive
    crawl' skips imported releases and fetches only what they lack; each one's
    page is fetched once its recheck falls due, spread over the following months
    ('beehive status' says how many wait, and until when). Shows a progress bar
    on a terminal; ends with one line starting 'beehive summary:'.

    \b
    git clone https://github.com/marcus-crane/beehive-markdown
    beehive import beehive-markdown              # into ./beehive-archive
    beehive import beehive-markdown --out ~/beehive
    beehive crawl                                # then: only what it lacks
    """
    from archive.importer import EXAMPLES, REASONS, ImportError_, import_folder, releases_folder

    try:
        releases_folder(source)
    except ImportError_ as error:
        fail(str(error), EXIT_USAGE)
    path = ledger_path(out, db)
    if path.is_file():
        check_ledger(path)
    from archive.archiver import Archiver

    try:
        archiver = Archiver(out, db).lock()
    except ArchiveBusy as error:
        fail(f"{error}; try again when it has finished", EXIT_BUSY)
    bar = None
    try:
        if sys.stderr.isatty():
            from tqdm import tqdm

            import shutil

            # A terminal that reports no size (0 x 0) would get nothing at all from tqdm.
            size = shutil.get_terminal_size(fallback=(100, 24))
            bar = tqdm(desc="importing", unit=" files", file=sys.stderr, total=None,
                       mininterval=0.25, ncols=size.columns, nrows=size.lines)

            def on_total(total):
                bar.total = total
                bar.refresh()

            result = import_folder(archiver, source, progress=bar.update, on_total=on_total)
        else:
            result = import_folder(archiver, source)
    finally:
        if bar is not None:
            bar.close()
        archiver.close()
    if result.temporary:
        click.echo(f"removed {result.temporary} temporary files left by an interrupted run",
                   err=True)
    for reason in REASONS:
        count = result.refused[reason]
        if not count:
            continue
        click.echo(f"refused: {count} {'file' if count == 1 else 'files'}: {reason}", err=True)
        for refusal in result.examples.get(reason, []):
            click.echo(f"  {refusal.path}: {refusal.detail}", err=True)
        if count > EXAMPLES:
            click.echo(f"  ... and {count - EXAMPLES} more", err=True)
    click.echo(f"imported {result.imported} releases from {result.source}"
               + (f"; {result.already} already in the archive, left as they are"
                  if result.already else ""), err=True)
    click.echo(result.summary(), err=True)
    nothing = result.refused_total and not (result.imported or result.already)
    sys.exit(EXIT_FAILED if nothing else EXIT_OK)
