"""``beehive serve``: a real Datasette on the ledger, in a subprocess, queried over HTTP."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import quote

import pytest

from tests.offline_archive import pristine, run
from tests.run import free_port
from tests.test_security import listening_sockets


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def get_json(url: str):
    return json.loads(get(url))


def query(archive, sql: str, params=()):
    with sqlite3.connect(archive / "ledger.db") as db:
        return db.execute(sql, params).fetchall()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    archive = pristine(tmp_path_factory)
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with open(log, "w") as stream:
        process = subprocess.Popen(
            [sys.executable, "-m", "archive", "serve", "--out", str(archive), "--port", str(port)],
            stdout=stream, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            get(base + "/-/versions.json")
            break
        except (urllib.error.URLError, ConnectionError):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
    yield base, archive, process
    process.terminate()
    process.wait(timeout=30)


def test_full_text_search(server):
    base, archive, _ = server
    data = get_json(base + "/ledger/releases.json?_search=housing&_shape=objects&_size=max")
    expected = {url for (url,) in query(
        archive, "select url from releases where rowid in "
                 "(select rowid from releases_fts where releases_fts match 'housing')")}
    assert expected and {row["url"] for row in data["rows"]} == expected
    assert all("region" not in row for row in data["rows"])


def test_facets_by_minister_portfolio_and_year(server):
    base, archive, _ = server
    data = get_json(base + "/ledger/releases.json?_size=0")
    facets = data["facet_results"]
    for column in ("ministers", "portfolios"):
        counts = dict(query(archive, f"select item.value, count(*) from releases, "
                                     f"json_each(releases.{column}) as item group by item.value"))
        results = facets[column]["results"]
        assert results and {r["value"]: r["count"] for r in results}.items() <= counts.items()
    years = dict(query(archive, "select substr(date, 1, 4), count(*) from releases group by 1"))
    assert {r["value"]: r["count"] for r in facets["date"]["results"]}.items() <= years.items()
    assert len(facets["date"]["results"]) == min(len(years), 30)
    # A year selected from the facet filters the rows to that year.
    year = facets["date"]["results"][0]["value"]
    rows = get_json(base + f"/ledger/releases.json?date__startswith={year}&_shape=objects")["rows"]
    assert len(rows) == years[year] and all(row["date"].startswith(year) for row in rows)
    # The same facets by query string, as _facet_array asks for them.
    asked = get_json(base + "/ledger/releases.json?_size=0&_facet_array=ministers")
    pairs = [(r["value"], r["count"]) for r in asked["facet_results"]["ministers"]["results"]]
    assert pairs == [(r["value"], r["count"]) for r in facets["ministers"]["results"]]


def test_canned_queries(server):
    base, archive, _ = server
    rows = get_json(base + "/ledger/releases_per_minister.json?_shape=array")
    counts = dict(query(archive, "select item.value, count(*) from releases, "
                                 "json_each(releases.ministers) as item group by item.value"))
    assert {row["minister"]: row["releases"] for row in rows} == counts
    months = get_json(base + "/ledger/releases_per_month.json?_shape=array")
    assert sum(row["releases"] for row in months) == query(archive, "select count(*) from releases")[0][0]
    recent = get_json(base + "/ledger/recently_changed.json?_shape=array")
    assert recent[0]["last_changed"] == query(archive, "select max(last_changed) from releases")[0][0]
    url = query(archive, "select url from releases limit 1")[0][0]
    revisions = get_json(base + f"/ledger/revisions_of_a_release.json?url={quote(url)}")
    assert revisions["columns"] == ["revision", "captured", "sha256", "run_id", "region_bytes"]


def test_table_page_links_files_and_hides_the_region(server):
    base, archive, _ = server
    page = get(base + "/ledger/releases").decode("utf-8")
    assert 'data-column="title"' in page
    assert 'data-column="region"' not in page
    path = query(archive, "select path from releases order by published desc limit 1")[0][0]
    assert f'<a href="/{path}">{path}</a>' in page
    assert get(f"{base}/{path}") == (archive / path).read_bytes()
    # Still there for whoever asks for it by name.
    asked = get_json(base + "/ledger/releases.json?_col=region&_size=1")
    assert asked["columns"] == ["url", "region"]


def test_metadata_and_loopback_only(server):
    base, _, process = server
    info = get_json(base + "/-/metadata.json")
    assert info["title"] == "beehive-archive"
    assert info["databases"]["ledger"]["tables"]["releases"]["description"]
    assert "Releases per minister" in get(base + "/ledger").decode("utf-8")
    listening = listening_sockets(process.pid)
    assert listening and all(address.startswith("0100007F:") for address in listening)


def test_without_datasette_one_line_says_how_to_install(tmp_path_factory, tmp_path):
    archive = pristine(tmp_path_factory)
    missing = tmp_path / "no-datasette" / "datasette"
    missing.mkdir(parents=True)
    (missing / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'datasette'\")\n")
    result = run("serve", "--out", archive, env={"PYTHONPATH": str(missing.parent)})
    assert result.returncode == 1
    assert result.stderr == ("beehive: error: beehive serve needs Datasette: "
                             "pip install 'beehive-archive[serve]'\n")


def test_host_option(tmp_path_factory):
    """--host says where to listen: here another loopback address."""
    archive = pristine(tmp_path_factory)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "archive", "serve", "--out", str(archive), "--host", "127.0.0.2",
         "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                assert get_json(f"http://127.0.0.2:{port}/-/metadata.json")["title"]
                break
            except (urllib.error.URLError, ConnectionError):
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        assert listening_sockets(process.pid) == [f"0200007F:{port:04X}"]
    finally:
        process.terminate()
        process.wait(timeout=30)
