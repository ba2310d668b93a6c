"""Commands that write records end quietly when their reader goes away, as Unix tools do:
no 'Broken pipe' error, and death by SIGPIPE (status 141 in the shell)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.offline_archive import pristine


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return pristine(tmp_path_factory)


def test_export_into_head_prints_one_record(archive):
    # A real shell pipeline: the export (about 250 KB) outgrows the pipe once head has gone.
    script = (f'"{sys.executable}" -m archive export --out "{archive}" | head -1; '
              'echo "statuses ${PIPESTATUS[*]}" >&2')
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert len(result.stdout.splitlines()) == 1
    assert result.stdout.startswith('{"title": ')
    assert result.stderr.strip() == "statuses 141 0", result.stderr


@pytest.mark.parametrize("args", [["export"], ["export", "--format", "csv"],
                                  ["search", "the"], ["status"], ["status", "--json"],
                                  ["changes"], ["changes", "--json"]])
def test_reader_already_gone(archive, args):
    """The reading end is closed before the command writes a byte: it dies of SIGPIPE,
    silently, whatever it was about to write."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run([sys.executable, "-m", "archive", *args, "--out", str(archive)],
                                stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)
    assert result.returncode == -signal.SIGPIPE, result.stderr
    assert result.stderr == ""


def test_a_reader_that_stays_gets_everything(archive):
    """The handling changes nothing when the pipe stays open."""
    result = subprocess.run(f'"{sys.executable}" -m archive export --out "{archive}" | wc -l',
                            shell=True, capture_output=True, text=True, timeout=60)
    assert int(result.stdout) == 51
    assert result.stderr == ""
