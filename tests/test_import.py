"""``beehive import`` of the public reference archive's files, then the crawl after it, end to
end through the command line (issue 19). The reference's files are the corpus's expected files
(byte for byte the reference's own) and its two files dated 0001-01-01
(tests/fixtures/reference-archive)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from archive.importer import (BLOCKED, DUPLICATE, INCOMPLETE, MISPLACED, NO_DATE, OFF_SITE,
                              OUTSIDE, UNPARSEABLE, Good, Refused, check_file)
from tests.offline_archive import mtimes, sha256, tree
from tests.replica import CORPUS_DIR, Replica
from tests.run import beehive, crawl, execute, rows, summary

EXPECTED = CORPUS_DIR / "expected"
FIXTURE = Path(__file__).resolve().parent / "fixtures"
ZERO_DATED = sorted((FIXTURE / "reference-archive" / "releases" / "0001" / "01").glob("*.md"))
V1_ARCHIVE = FIXTURE / "v1-archive"
PAST = "2000-01-01T00:00:00Z"
JAPAN = "2006/11/2006-11-13-japan-and-new-zealand-seek-reinvigorate-trade-and-economic-relations.md"


def reference(tmp_path: Path, *, without: tuple[str, ...] = (), zero_dated: bool = True) -> Path:
    """A folder laid out as the reference archive: the corpus's expected files (and the
    reference's two files dated 0001-01-01), less ``without`` (paths under releases/)."""
    root = tmp_path / "reference"
    for path in EXPECTED.rglob("*.md"):
        relative = path.relative_to(EXPECTED).as_posix()
        if relative in without:
            continue
        target = root / "releases" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    if zero_dated:
        for path in ZERO_DATED:
            target = root / "releases" / "0001" / "01" / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
    return root


def expected_files() -> dict[str, bytes]:
    return {f"releases/{p.relative_to(EXPECTED).as_posix()}": p.read_bytes()
            for p in sorted(EXPECTED.rglob("*.md"))}


def import_(source: Path, out: Path, env: dict | None = None):
    return beehive("import", source, "--out", out, env=env)


def ledger_state(out: Path) -> dict:
    """What an import writes, without the runs (each run adds its row)."""
    db = out / "ledger.db"
    return {
        "releases": rows(db, "select * from releases order by url"),
        "revisions": rows(db, "select * from revisions order by url, revision"),
        "changes": rows(db, "select * from changes order by id"),
        "failures": rows(db, "select url, kind, reason, attempts from failures order by url"),
    }


def show(out: Path, *args) -> bytes:
    result = subprocess.run([sys.executable, "-m", "archive", "show", "--out", str(out), *args],
                            capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def live_like():
    """The live site's shape: the listing covers the current government only, and the
    search links releases before 2014 as /node/<n>."""
    with Replica(listing="current") as site:
        yield site


# -- the import --------------------------------------------------------------------------------

def test_import_copies_each_file_byte_for_byte_as_an_imported_release(tmp_path):
    source, out = reference(tmp_path), tmp_path / "archive"
    result = import_(source, out)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    figures = summary(result)
    assert (figures["files"], figures["imported"], figures["refused"]) == ("53", "51", "2")
    # The reference's two files dated 0001-01-01 are refused, named, with the reason.
    assert "refused: 2 files: no publication date" in result.stderr
    for path in ZERO_DATED:
        assert f"releases/0001/01/{path.name}: date 0001-01-01 is no publication date" \
            in result.stderr
    assert tree(out) == expected_files()

    db = out / "ledger.db"
    releases = rows(db, "select * from releases")
    assert len(releases) == 51
    assert {r["origin"] for r in releases} == {"imported"}
    assert all(r["region"] is None and r["last_seen"] is None and r["nz_date"] is None
               for r in releases)
    for release in releases:
        data = (out / release["path"]).read_bytes()
        assert release["sha256"] == sha256(data)
        assert release["published"] == f"{release['date']}T00:00:00Z"
        assert data.decode().endswith(release["body"])
    japan = rows(db, "select * from releases where path = ?", [f"releases/{JAPAN}"])[0]
    assert japan["title"] == "Japan and New Zealand seek to reinvigorate trade and economic relations"
    assert json.loads(japan["ministers"]) and json.loads(japan["portfolios"])
    # Revision 1 says it came from an import, and from where; the change log has each once.
    revisions = rows(db, "select * from revisions")
    assert len(revisions) == 51
    assert {(r["revision"], r["source"], r["region"]) for r in revisions} == {(1, "import", None)}
    assert all(r["imported_from"] == str(source.resolve()) and r["document"] for r in revisions)
    changes = rows(db, "select kind, revision from changes")
    assert changes == [{"kind": "imported", "revision": 1}] * 51
    # Each is due for its first fetch at its own time, spread over the months ahead.
    checks = [r["next_check"] for r in releases]
    assert len(set(checks)) == 51 and min(checks) > rows(db, "select max(started) s from runs")[0]["s"]
    # The refused releases are real: the crawl fetches them instead.
    failures = rows(db, "select url, kind from failures order by url")
    assert failures == [
        {"url": "https://www.beehive.govt.nz/release/challenge-laid-new-zealands-digital-future",
         "kind": "failed"},
        {"url": "https://www.beehive.govt.nz/release/new-zealand-one-worlds-simplest-tax-systems",
         "kind": "failed"}]

    assert beehive("verify", "--out", out).returncode == 0
    status = json.loads(beehive("status", "--out", out, "--json").stdout)
    assert status["imported"] == 51 and status["imported_last_due"] == max(checks)
    text = beehive("status", "--out", out).stdout
    assert "imported, not yet captured from the site: 51" in text
    # show, history, search and export treat them like any release.
    assert show(out, "japan-and-new-zealand-seek-reinvigorate-trade-and-economic-relations",
                "--revision", "1") == (EXPECTED / JAPAN).read_bytes()
    history = beehive("history", "--out", out, f"releases/{JAPAN}").stdout.splitlines()
    assert len(history) == 1 and history[0].endswith("\timported")
    assert f"releases/{JAPAN}" in beehive("search", "--out", out, "japan trade").stdout
    exported = [json.loads(line) for line in beehive("export", "--out", out).stdout.splitlines()]
    assert len(exported) == 51
    by_revision = [json.loads(line) for line in
                   beehive("export", "--out", out, "--revisions").stdout.splitlines()]
    assert [(r["sha256"], r["body"]) for r in by_revision] == \
        [(r["sha256"], r["body"]) for r in exported]


def test_importing_the_same_folder_again_changes_nothing(tmp_path):
    source, out = reference(tmp_path), tmp_path / "archive"
    assert import_(source, out).returncode == 0
    files, times, state = tree(out), mtimes(out), ledger_state(out)
    again = import_(source, out)
    assert again.returncode == 0, again.stderr
    assert (summary(again)["imported"], summary(again)["already"]) == ("0", "51")
    assert tree(out) == files and mtimes(out) == times
    assert ledger_state(out) == state


def bad_files(root: Path) -> dict[str, str]:
    """One file for each refusal, beside a good one: archive path -> the reason."""
    japan = (EXPECTED / JAPAN).read_bytes()
    releases = root / "releases"

    def put(relative: str, data: bytes) -> str:
        path = releases / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return f"releases/{relative}"

    blocked = (CORPUS_DIR / "blocked").glob("*.html").__next__().read_text()
    cases = {
        put("2006/11/2006-11-14-bad-yaml.md",
            b'---\ntitle: "unclosed\ndate: 2006-11-14\n---\n\nbody'): UNPARSEABLE,
        put("2006/11/2006-11-14-latin-1.md",
            japan.replace(b"Japan and", b"Caf\xe9 and")): UNPARSEABLE,
        put("2006/11/2006-11-14-no-front-matter.md", b"just some text\n"): UNPARSEABLE,
        put("2006/11/2006-11-14-no-title.md",
            b'---\ntitle: ""\ndate: 2006-11-14\nurl: https://www.beehive.govt.nz/release/'
            b'no-title\n---\n\nbody'): INCOMPLETE,
        put("2006/11/2006-11-14-blocked.md",
            b'---\ntitle: "Request unsuccessful"\ndate: 2006-11-14\nurl: '
            b'https://www.beehive.govt.nz/release/blocked\n---\n\n' + blocked.encode()): BLOCKED,
        put("2006/11/2006-11-14-elsewhere.md",
            b'---\ntitle: "Elsewhere"\ndate: 2006-11-14\nurl: https://example.com/release/'
            b'elsewhere\n---\n\nbody'): OFF_SITE,
        put("2006/11/2006-11-14-speech.md",
            b'---\ntitle: "A speech"\ndate: 2006-11-14\nurl: https://www.beehive.govt.nz/speech/'
            b'speech\n---\n\nbody'): OFF_SITE,
        put("2006/12/2006-11-14-wrong-month.md",
            b'---\ntitle: "Wrong month"\ndate: 2006-11-14\nurl: https://www.beehive.govt.nz/'
            b'release/wrong-month\n---\n\nbody'): MISPLACED,
        put("2006/11/2006-11-14-another-slug.md",
            b'---\ntitle: "A slug"\ndate: 2006-11-14\nurl: https://www.beehive.govt.nz/'
            b'release/a-slug\n---\n\nbody'): MISPLACED,
        put("2006/11/2006-11-15-twin.md",
            b'---\ntitle: "Twin"\ndate: 2006-11-15\nurl: https://www.beehive.govt.nz/release/'
            b'twin\n---\n\none'): DUPLICATE,
        put("2007/01/2007-01-15-twin.md",
            b'---\ntitle: "Twin"\ndate: 2007-01-15\nurl: https://www.beehive.govt.nz/release/'
            b'twin\n---\n\nother'): DUPLICATE,
        put("2006/11/2006-11-16-future.md",
            b'---\ntitle: "Future"\ndate: 2999-01-01\nurl: https://www.beehive.govt.nz/release/'
            b'future\n---\n\nbody'): NO_DATE,
    }
    # A link to a file outside the folder, and a linked folder: never followed.
    outside = root.parent / "outside.md"
    outside.write_bytes(japan)
    os.symlink(outside, releases / "2006" / "11" / "2006-11-13-link.md")
    os.symlink(root.parent, releases / "2006" / "linked")
    cases["releases/2006/11/2006-11-13-link.md"] = OUTSIDE
    cases["releases/2006/linked"] = OUTSIDE
    put(JAPAN, japan)  # the good one
    return cases


def test_each_kind_of_bad_file_is_refused_counted_and_named(tmp_path):
    source, out = tmp_path / "reference", tmp_path / "archive"
    cases = bad_files(source)
    result = import_(source, out)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert summary(result)["imported"] == "1"
    assert int(summary(result)["refused"]) == len(cases)
    for reason in set(cases.values()):
        count = list(cases.values()).count(reason)
        assert f"refused: {count} file{'s' if count > 1 else ''}: {reason}" in result.stderr
    for path in cases:
        assert f"  {path}: " in result.stderr, path
    # Nothing of them reached the archive; the good file did, byte for byte.
    assert tree(out) == {f"releases/{JAPAN}": (EXPECTED / JAPAN).read_bytes()}
    assert [r["path"] for r in rows(out / "ledger.db", "select path from releases")] == \
        [f"releases/{JAPAN}"]
    # Real releases with a bad file are left for the crawl to fetch.
    assert {r["url"].rsplit("/", 1)[1] for r in rows(
        out / "ledger.db", "select url from failures")} == {"no-title", "blocked", "twin", "future"}
    assert beehive("verify", "--out", out).returncode == 0


def test_a_folder_without_releases_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "empty").mkdir()
    result = import_(tmp_path / "empty", tmp_path / "archive")
    assert result.returncode == 2
    assert result.stderr.startswith("beehive: error: no releases/ folder in ")
    assert len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "archive" / "ledger.db").exists()


def test_check_file_is_pure_and_reads_the_reference_format():
    data = (EXPECTED / JAPAN).read_bytes()
    good = check_file(f"releases/{JAPAN}", data, today="2026-01-01")
    assert isinstance(good, Good) and good.text.encode() == data
    assert good.url == ("https://www.beehive.govt.nz/release/"
                        "japan-and-new-zealand-seek-reinvigorate-trade-and-economic-relations")
    zero = check_file(f"releases/0001/01/{ZERO_DATED[0].name}", ZERO_DATED[0].read_bytes())
    assert isinstance(zero, Refused) and zero.reason == NO_DATE and zero.url
    assert check_file("../" + JAPAN, data).reason == OUTSIDE
    # A slug the archive folds for a file name (a leading hyphen): either name will do, and
    # the file goes where the crawl would put it.
    odd = data.replace(b"release/japan-and", b"release/-japan-and")
    name = "releases/2006/11/2006-11-13--japan-and-new-zealand-seek-reinvigorate-trade-and-" \
           "economic-relations.md"
    placed = check_file(name, odd)
    assert isinstance(placed, Good) and placed.path != name and placed.path.startswith(
        "releases/2006/11/2006-11-13-japan-and-new-zealand")


# -- never downgrade; an older ledger ------------------------------------------------------

def test_a_captured_release_is_never_replaced_by_an_import(site, tmp_path):
    out = tmp_path / "archive"
    assert crawl(site, out).returncode == 0
    captured = ledger_state(out)["releases"]
    files = tree(out)
    source = reference(tmp_path)
    # The reference's file of a captured release, changed: the capture still wins.
    victim = EXPECTED / Path(captured[0]["path"]).relative_to("releases")
    (source / captured[0]["path"]).write_bytes(victim.read_bytes() + b"\n\nAn edit.")
    result = import_(source, out)
    assert result.returncode == 0, result.stderr
    assert (summary(result)["imported"], summary(result)["already"]) == ("45", "6")
    after = {r["url"]: r for r in ledger_state(out)["releases"]}
    for row in captured:
        assert after[row["url"]] == row
        assert after[row["url"]]["origin"] == "captured"
    assert {path: data for path, data in tree(out).items() if path in files} == files
    assert beehive("verify", "--out", out).returncode == 0


def test_import_into_a_version_1_archive_migrates_it(tmp_path):
    out = tmp_path / "archive"
    shutil.copytree(V1_ARCHIVE, out)
    before = rows(out / "ledger.db", "select url, sha256, path from releases order by url")
    result = import_(reference(tmp_path), out)
    assert result.returncode == 0, result.stderr
    db = out / "ledger.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("pragma user_version").fetchone()[0] == 2
    releases = {r["url"]: r for r in rows(db, "select * from releases")}
    for row in before:
        assert releases[row["url"]]["origin"] == "captured"
        assert releases[row["url"]]["sha256"] == row["sha256"]
    assert {r["source"] for r in rows(db, "select source from revisions where url in "
                                          "(select url from releases where origin = 'captured')")} \
        == {"crawl"}
    imported = [r for r in releases.values() if r["origin"] == "imported"]
    assert len(imported) == 51 - int(summary(result)["already"]) > 0
    assert int(summary(result)["already"]) == len([
        r for r in before if r["path"] in expected_files()])
    assert beehive("verify", "--out", out).returncode == 0


# -- a crash mid-import --------------------------------------------------------------------

def test_an_import_killed_between_files_and_rows_is_consistent_and_a_rerun_completes_it(
        tmp_path):
    source, out = reference(tmp_path), tmp_path / "archive"
    killed = import_(source, out, env={"BEEHIVE_IMPORT_BATCH": "10",
                                       "BEEHIVE_TEST_IMPORT_KILL_AFTER": "25"})
    assert killed.returncode == -9, killed.stderr
    db = out / "ledger.db"
    recorded = rows(db, "select path, sha256 from releases")
    assert len(recorded) == 20  # two batches committed; the third's files were in place
    # Consistent: every recorded release has its file, whole, with its hash.
    for row in recorded:
        assert sha256((out / row["path"]).read_bytes()) == row["sha256"]
    assert len(rows(db, "select * from revisions")) == len(rows(db, "select * from changes")) == 20
    on_disk = {p for p in tree(out) if not Path(p).name.startswith(".tmp-")}
    assert len(on_disk) > 20  # files written whose rows never committed

    rerun = import_(source, out)
    assert rerun.returncode == 0, rerun.stderr
    assert (summary(rerun)["imported"], summary(rerun)["already"]) == ("31", "20")
    assert int(summary(rerun)["written"]) < 31  # the files in place already were left alone
    assert tree(out) == expected_files()
    assert beehive("verify", "--out", out).returncode == 0
    assert len(rows(db, "select * from revisions")) == len(rows(db, "select * from changes")) == 51


# -- the crawl after an import -------------------------------------------------------------

LACKING = ("2025/03/2025-03-08-putting-patient-first.md",
           "2006/11/2006-11-13-japan-and-new-zealand-seek-reinvigorate-trade-and-economic-relations.md")


def test_the_crawl_after_an_import_fetches_only_what_the_import_lacks(live_like, tmp_path):
    site, out = live_like, tmp_path / "archive"
    for path in LACKING:
        assert (EXPECTED / path).exists(), path
    source = reference(tmp_path, without=LACKING, zero_dated=False)
    assert import_(source, out).returncode == 0
    result = crawl(site, out)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = summary(result)
    assert (figures["new"], figures["failed"]) == ("2", "0")
    fetched = [p for p in site.paths if p.startswith(("/release/", "/node/"))]
    # Only the two releases the import lacks: the current one by its URL, the 2006 one by
    # the /node/ link its government's search gives (redirected to its URL). No imported
    # release is fetched, though the search links the older ones as /node/<n>.
    slugs = {Path(path).stem[11:] for path in LACKING}
    assert {p.rsplit("/", 1)[1] for p in fetched if p.startswith("/release/")} == slugs
    assert len([p for p in fetched if p.startswith("/node/")]) == 1
    assert any(p.startswith("/search") for p in site.paths)
    assert tree(out) == expected_files()
    db = out / "ledger.db"
    assert len(rows(db, "select * from releases where origin = 'imported'")) == 49
    assert len(rows(db, "select * from releases where origin = 'captured'")) == 2


def test_a_recheck_turns_an_imported_release_into_a_captured_one(live_like, tmp_path):
    site, out = live_like, tmp_path / "archive"
    assert import_(reference(tmp_path, zero_dated=False), out).returncode == 0
    assert crawl(site, out).returncode == 0  # the walks: nothing fetched
    db = out / "ledger.db"
    same, edited = "japan-and-new-zealand-seek-reinvigorate-trade-and-economic-relations", \
        site.corpus_slugs[0]
    urls = [site.url(same), site.url(edited)]
    rows_before = {r["url"]: r for r in rows(db, "select * from releases")}
    path_same = out / rows_before[urls[0]]["path"]
    time_same = path_same.stat().st_mtime_ns
    changes_before = len(rows(db, "select * from changes"))
    site.edit(edited, "<p>Correction: the figure is 12, not 21.</p>")
    for url in urls:
        execute(db, "update releases set next_check = ? where url = ?", [PAST, url])
    site.clear_requests()
    result = crawl(site, out)
    assert result.returncode == 0, result.stderr[-3000:]
    # An ordinary, unconditional fetch of each.
    asked = [(p, h) for _, p, h in site.requests if p.startswith("/release/")]
    assert sorted(p for p, _ in asked) == sorted(f"/release/{s}" for s in (same, edited))
    assert all("If-None-Match" not in h and "If-Modified-Since" not in h for _, h in asked)

    after = {r["url"]: r for r in rows(db, "select * from releases")}
    # Rendered as the import: captured now, no new revision, the file untouched.
    row = after[urls[0]]
    assert row["origin"] == "captured" and row["region"] is not None and row["last_seen"]
    assert row["sha256"] == rows_before[urls[0]]["sha256"] and row["nz_date"]
    assert path_same.stat().st_mtime_ns == time_same
    assert [r["source"] for r in rows(db, "select source from revisions where url = ?",
                                      [urls[0]])] == ["import"]
    # Edited since: revision 2, and the imported text stays in the history.
    row = after[urls[1]]
    assert row["origin"] == "captured"
    assert "Correction: the figure is 12, not 21." in (out / row["path"]).read_text()
    revisions = rows(db, "select revision, source from revisions where url = ? order by revision",
                     [urls[1]])
    assert revisions == [{"revision": 1, "source": "import"}, {"revision": 2, "source": "crawl"}]
    imported_file = EXPECTED / Path(rows_before[urls[1]]["path"]).relative_to("releases")
    assert show(out, edited, "--revision", "1") == imported_file.read_bytes()
    assert show(out, edited) == (out / row["path"]).read_bytes()
    assert "+Correction: the figure is 12, not 21." in beehive("diff", "--out", out, edited).stdout
    kinds = [r["kind"] for r in rows(db, "select kind from changes")[changes_before:]]
    assert kinds == ["updated"]
    status = json.loads(beehive("status", "--out", out, "--json").stdout)
    assert status["imported"] == 49

    # A mixed archive: rebuild leaves the imported files as they are and says how many;
    # verify checks every file, imported ones against the hash they were imported with.
    files = tree(out)
    rebuilt = beehive("rebuild", "--out", out)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert summary(rebuilt)["imported"] == "49"
    assert "49 imported releases left as they are" in rebuilt.stderr
    assert tree(out) == files
    assert beehive("verify", "--out", out).returncode == 0
    imported_path = next(r["path"] for r in after.values() if r["origin"] == "imported")
    (out / imported_path).write_bytes((out / imported_path).read_bytes() + b"\nhand edit")
    verify = beehive("verify", "--out", out)
    assert verify.returncode == 1 and f"modified: {imported_path}" in verify.stdout


def test_a_release_whose_slug_the_reference_folds_is_adopted_by_its_capture(live_like, tmp_path):
    """The reference folds a slug with a macron (%-escaped in the URL) to ASCII, in its file
    name and its url: the capture of the page finds the imported release all the same."""
    site, out = live_like, tmp_path / "archive"
    slug = "te-wiki-o-te-reo-m%C4%81ori-celebrated"
    url = site.publish(slug, site.published(site.slugs[0]) + timedelta(hours=1))
    folded = "https://www.beehive.govt.nz/release/te-wiki-o-te-reo-maori-celebrated"
    scratch = tmp_path / "scratch"
    assert crawl(site, scratch, "--url", url).returncode == 0
    [(path, data)] = tree(scratch).items()
    assert f"url: {folded}\n".encode() in data and "te-reo-maori-celebrated" in path
    source = reference(tmp_path, zero_dated=False)
    (source / path).parent.mkdir(parents=True, exist_ok=True)
    (source / path).write_bytes(data)
    imported = import_(source, out)
    assert imported.returncode == 0 and summary(imported)["imported"] == "52", imported.stderr
    db = out / "ledger.db"
    assert rows(db, "select origin from releases where url = ?", [folded]) == \
        [{"origin": "imported"}]
    result = crawl(site, out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (summary(result)["new"], summary(result)["failed"]) == ("0", "0")
    assert rows(db, "select * from releases where url = ?", [folded]) == []
    row = rows(db, "select * from releases where url = ?", [url])[0]
    assert row["origin"] == "captured" and row["path"] == path and row["region"] is not None
    assert rows(db, "select revision, source from revisions where url = ?", [url]) == \
        [{"revision": 1, "source": "import"}]
    assert rows(db, "select canonical from aliases where url = ?", [folded]) == \
        [{"canonical": url}]
    assert tree(out)[path] == data
    assert beehive("verify", "--out", out).returncode == 0


def test_an_import_into_an_archive_in_use_is_exit_4_and_changes_nothing(tmp_path):
    from archive.archiver import Archiver

    source, out = reference(tmp_path), tmp_path / "archive"
    holder = Archiver(out).lock()
    try:
        result = import_(source, out)
    finally:
        holder.close()
    assert result.returncode == 4
    assert result.stderr.startswith("beehive: error: another beehive run is using ")
    assert len(result.stderr.splitlines()) == 1
    assert rows(out / "ledger.db", "select * from releases") == []
    assert not (out / "releases").exists()


def test_a_progress_bar_on_a_terminal_only(tmp_path):
    import pty

    source = reference(tmp_path)
    main, terminal = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "archive", "import", str(source),
                                "--out", str(tmp_path / "archive")],
                               stdout=terminal, stderr=terminal)
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        shown += chunk
    assert process.wait(timeout=60) == 0
    os.close(main)
    assert b"importing: 100%" in shown and b"53/53" in shown
    # Not on a pipe (every other test here): just the report.
    plain = import_(source, tmp_path / "other")
    assert "importing" not in plain.stderr and "\r" not in plain.stderr


def test_a_search_result_is_known_by_title_and_date_only_when_unambiguous(tmp_path):
    from archive.ledger import Ledger

    out = tmp_path / "archive"
    assert import_(reference(tmp_path), out).returncode == 0
    title = "Japan and New Zealand seek to reinvigorate trade and economic relations"
    url = "https://www.beehive.govt.nz/release/" + Path(JAPAN).stem[11:]
    ledger = Ledger(out / "ledger.db")
    try:
        assert ledger.imported_by_title(title, "2006-11-13") == url
        assert ledger.imported_by_title("  japan AND new zealand seek to reinvigorate trade "
                                        "and economic\nrelations ", "2006-11-13") == url
        assert ledger.imported_by_title(title, "2006-11-14") is None
        assert ledger.imported_by_title(title + " (updated)", "2006-11-13") is None
        # Another release with that title and date, captured: which one a /node/ link is
        # cannot be told, so it is fetched.
        other = rows(out / "ledger.db", "select url from releases where url != ? limit 1",
                     [url])[0]["url"]
        ledger.db.execute("update releases set title = ?, published = '2006-11-13T04:05:06Z', "
                          "origin = 'captured' where url = ?", [title, other])
        assert ledger.imported_by_title(title, "2006-11-13") is None
    finally:
        ledger.close()


def test_a_version_2_ledger_made_before_imports_gains_their_columns(tmp_path):
    """A ledger of schema version 2 made by a build before imports (no origin, no revision
    source): opening it adds the columns and runs their data step."""
    from archive.ledger import Ledger

    out = tmp_path / "archive"
    shutil.copytree(V1_ARCHIVE, out)
    Ledger(out / "ledger.db").close()  # migrated to version 2, with today's columns
    db = out / "ledger.db"
    with sqlite3.connect(db) as conn:
        for table, column in (("releases", "origin"), ("revisions", "source"),
                              ("revisions", "document"), ("revisions", "imported_from")):
            conn.execute(f"alter table {table} drop column {column}")
        assert conn.execute("pragma user_version").fetchone()[0] == 2
    Ledger(db).close()
    assert {r["origin"] for r in rows(db, "select origin from releases")} == {"captured"}
    assert {r["source"] for r in rows(db, "select source from revisions")} == {"crawl"}
    assert import_(reference(tmp_path), out).returncode == 0
