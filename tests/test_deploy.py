"""Deployment (issue 10, requirement 6): the project as it is deploys to a real Scrapyd and
crawls the replica there; the recipes in deploy/ say what the README says and are valid for
the tools that read them (as far as this machine has those tools)."""

from __future__ import annotations

import configparser
import json
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.run import free_port

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
# What scrapyd-deploy packs: the project as a clone has it, without tests or benchmarks.
PROJECT_FILES = ("archive", "scraper", "scrapy.cfg", "setup.py", "pyproject.toml", "README.md")


def call(url: str, data: list[tuple[str, str]] | None = None) -> dict:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    with urllib.request.urlopen(url, data=body, timeout=10) as response:
        return json.load(response)


@pytest.fixture
def scrapyd(tmp_path):
    """A real Scrapyd on 127.0.0.1 with its own folders and a random free port."""
    home = tmp_path / "scrapyd"
    home.mkdir()
    port = free_port()
    (home / "scrapyd.conf").write_text(
        "[scrapyd]\n"
        f"bind_address = 127.0.0.1\nhttp_port = {port}\n"
        f"eggs_dir = {home / 'eggs'}\nlogs_dir = {home / 'logs'}\ndbs_dir = {home / 'dbs'}\n"
        "items_dir =\npoll_interval = 0.2\nmax_proc = 1\n")
    log = open(home / "scrapyd.out", "w")
    process = subprocess.Popen([str(BIN / "scrapyd")], cwd=home, stdout=log,
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if call(url + "daemonstatus.json")["status"] == "ok":
                    break
            except OSError:
                pass
            assert process.poll() is None, (home / "scrapyd.out").read_text()
            assert time.monotonic() < deadline, "scrapyd did not start"
            time.sleep(0.2)
        yield url, home
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


def test_the_project_deploys_to_scrapyd_and_crawls_there(scrapyd, replica, tmp_path):
    url, home = scrapyd
    project = tmp_path / "project"
    project.mkdir()
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, project / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, project / name)
    # The deploy target lives in the user's scrapy.cfg; the project's own stays as it is.
    config = tmp_path / "config"
    config.mkdir()
    (config / "scrapy.cfg").write_text(f"[deploy:local]\nurl = {url}\n")
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "XDG_CONFIG_HOME": str(config), "HOME": str(tmp_path)}

    egg = tmp_path / "beehive.egg"
    built = subprocess.run([str(BIN / "scrapyd-deploy"), "--build-egg", str(egg)], cwd=project,
                           env=env, capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    with zipfile.ZipFile(egg) as packed:
        names = set(packed.namelist())
        entry_points = packed.read("EGG-INFO/entry_points.txt").decode()
    assert {"scraper/settings.py", "scraper/spiders/releases.py", "scraper/pipelines.py",
            "archive/ledger.py", "archive/archiver.py"} <= names
    assert not any(name.startswith("tests/") for name in names)
    assert re.search(r"\[scrapy\]\s+settings = scraper\.settings", entry_points)

    deployed = subprocess.run([str(BIN / "scrapyd-deploy"), "local"], cwd=project, env=env,
                              capture_output=True, text=True, timeout=120)
    assert deployed.returncode == 0, deployed.stderr + deployed.stdout
    assert json.loads(deployed.stdout)["status"] == "ok"
    assert call(url + "listspiders.json?project=beehive")["spiders"] == ["releases"]

    out = tmp_path / "archive"
    job = call(url + "schedule.json", [
        ("project", "beehive"), ("spider", "releases"),
        ("setting", f"BEEHIVE_OUT={out}"), ("setting", f"BEEHIVE_BASE_URL={replica.base_url}"),
        ("setting", "DOWNLOAD_DELAY=0")])["jobid"]
    deadline = time.monotonic() + 120
    while True:
        jobs = call(url + "listjobs.json?project=beehive")
        if any(j["id"] == job for j in jobs["finished"]):
            break
        assert time.monotonic() < deadline, jobs
        time.sleep(0.3)

    log = (home / "logs" / "beehive" / "releases" / f"{job}.log").read_text()
    assert "beehive summary: outcome=ok" in log and "new=51" in log
    files = list((out / "releases").rglob("*.md"))
    assert len(files) == 51
    with sqlite3.connect(out / "ledger.db") as ledger:
        assert ledger.execute("select count(*) from releases").fetchone() == (51,)
        assert ledger.execute("select outcome from runs").fetchall() == [("ok",)]


# -- recipes ------------------------------------------------------------------------------------

def readme_block(language: str) -> str:
    """The first fenced block of that language in the README."""
    text = (ROOT / "README.md").read_text()
    return re.search(rf"```{language}\n(.*?)```", text, re.S).group(1)


def cron_entries(text: str) -> list[list[str]]:
    return [line.split(None, 5) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_the_cron_recipe_is_one_valid_line_and_the_readmes_command():
    (entry,) = cron_entries((DEPLOY / "crontab").read_text())
    *schedule, command = entry
    fields = {"minute": (0, 59), "hour": (0, 23), "day": (1, 31), "month": (1, 12),
              "weekday": (0, 7)}
    for value, (low, high) in zip(schedule, fields.values()):
        for part in value.split(","):
            base, _, step = part.partition("/")
            assert step == "" or step.isdigit()
            if base != "*":
                for number in base.split("-"):
                    assert low <= int(number) <= high, value
    assert entry in cron_entries(readme_block("cron"))
    words = shlex.split(command)
    (program,) = [i for i, word in enumerate(words)
                  if "=" not in word and Path(word).name == "beehive"]
    assert words[program + 1] == "crawl"
    # The run needs no lock of its own: the archive's lock makes an overlapping run exit 4
    # (test_faults.test_a_second_run_exits_at_once_and_a_killed_runs_lock_is_not_stale).
    assert "flock" not in words


def unit_file(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(path.read_text())
    return parser


def test_the_systemd_recipe_is_a_service_and_its_timer():
    service = unit_file(DEPLOY / "beehive.service")
    timer = unit_file(DEPLOY / "beehive.timer")
    assert service["Service"]["Type"] == "oneshot"
    start = shlex.split(service["Service"]["ExecStart"])
    assert Path(start[0]).name == "beehive" and start[1] == "crawl"
    assert "BEEHIVE_OUT=" in service["Service"]["Environment"]
    # An archive that is busy (exit 4) is not a failure of this run.
    assert "4" in service["Service"]["SuccessExitStatus"].split()
    assert timer["Timer"]["OnCalendar"]
    assert timer["Timer"]["Persistent"] == "true"
    assert timer["Install"]["WantedBy"] == "timers.target"
    assert "beehive status --check" in (DEPLOY / "beehive-check.service").read_text()
    assert service["Unit"]["OnFailure"] == "beehive-check.service"


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not here")
def test_the_systemd_recipe_passes_systemd_analyze_verify(tmp_path):
    # verify checks that ExecStart's program exists: point it at this environment's beehive.
    for name in ("beehive.service", "beehive.timer", "beehive-check.service"):
        text = (DEPLOY / name).read_text().replace("/opt/beehive/.venv/bin/", f"{BIN}/")
        (tmp_path / name).write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", *(str(tmp_path / n) for n in (
        "beehive.service", "beehive.timer", "beehive-check.service"))],
        capture_output=True, text=True, timeout=60)
    problems = [line for line in result.stderr.splitlines() if "beehive" in line]
    assert result.returncode == 0 and not problems, result.stderr


def test_the_github_actions_recipe_crawls_hourly_and_commits_the_archive():
    workflow = yaml.safe_load((DEPLOY / "github-actions.yml").read_text())
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads on: as true
    (cron,) = [entry["cron"] for entry in triggers["schedule"]]
    minute, hour, *_ = cron.split()
    assert minute.isdigit() and hour == "*"  # hourly
    assert "workflow_dispatch" in triggers
    assert workflow["permissions"]["contents"] == "write"
    (job,) = workflow["jobs"].values()
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    assert "pip install" in runs
    assert "playwright install --with-deps chromium" in runs  # the site's bot protection
    assert re.search(r"^(timeout .*)?beehive crawl\b", runs, re.M)
    assert "beehive verify" in runs
    assert re.search(r"git add\b.*beehive-archive", runs)
    assert "git commit" in runs and "git push" in runs
    uses = [step["uses"] for step in job["steps"] if "uses" in step]
    assert any(use.startswith("actions/checkout@") for use in uses)
    assert any(use.startswith("actions/setup-python@") for use in uses)
    assert workflow.get("concurrency")  # two scheduled runs never push over each other
