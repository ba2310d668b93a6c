"""``beehive verify``, end to end through the command line."""

from __future__ import annotations

import sqlite3

import pytest

from tests.offline_archive import copy_archive, run, sha256, tree


@pytest.fixture
def archive(tmp_path_factory, tmp_path):
    return copy_archive(tmp_path_factory, tmp_path)


def test_verify_passes_on_a_clean_archive(archive):
    result = run("verify", "--out", archive)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "OK: 51 releases, files and ledger agree\n"


def test_verify_catches_an_edited_a_deleted_and_a_stray_file(archive):
    files = sorted(tree(archive))
    (archive / files[0]).write_text((archive / files[0]).read_text() + "\nedited by hand\n")
    (archive / files[1]).unlink()
    (archive / "releases" / "2019" / "stray.md").write_text("---\ntitle: x\n---\n")
    (archive / "releases" / "2019" / ".tmp-abc123").write_text("half")

    result = run("verify", "--out", archive)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 4, result.stdout
    assert any(line.startswith(f"modified: {files[0]}: sha256 ") for line in lines)
    assert any(line.startswith(f"missing: {files[1]} (https://") for line in lines)
    assert "stray: releases/2019/stray.md (not in the ledger)" in lines
    assert ("temporary file left by an interrupted write: releases/2019/.tmp-abc123"
            in lines)
    assert "4 problems (51 releases in the ledger)" in result.stderr


def test_verify_catches_front_matter_that_does_not_parse(archive):
    path = sorted(tree(archive))[2]
    broken = b'---\ntitle: "unterminated\ndate: [\n---\n\nbody'
    (archive / path).write_bytes(broken)
    with sqlite3.connect(archive / "ledger.db") as db:  # the hash agrees; YAML does not
        db.execute("update releases set sha256 = ? where path = ?", [sha256(broken), path])
    result = run("verify", "--out", archive)
    assert result.returncode == 1
    assert result.stdout.startswith(f"unparseable: {path}: ")
    assert len(result.stdout.splitlines()) == 1


def test_verify_through_environment_variables(archive, tmp_path):
    result = run("verify", env={"BEEHIVE_OUT": str(archive)})
    assert result.returncode == 0, result.stdout
    result = run("verify", env={"BEEHIVE_OUT": str(tmp_path / "empty"),
                                "BEEHIVE_DB": str(archive / "ledger.db")})
    assert result.returncode == 1  # the ledger names 51 files that are not in that folder
    assert len(result.stdout.splitlines()) == 51
    assert all(line.startswith("missing: ") for line in result.stdout.splitlines())
