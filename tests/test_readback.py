"""Every file a crawl of the corpus produces reads back, with python-frontmatter, as
exactly what the ledger recorded: the metadata its fields, the content its body."""

from __future__ import annotations

import json
import sqlite3
from datetime import date

import frontmatter

from archive.parse import SITE, reference_slug
from tests.offline_archive import pristine


def test_every_crawled_file_reads_back_as_its_ledger_row(tmp_path_factory):
    out = pristine(tmp_path_factory)  # the replica's 51 corpus pages, crawled end to end
    with sqlite3.connect(out / "ledger.db") as db:
        db.row_factory = sqlite3.Row
        rows = db.execute("select * from releases order by url").fetchall()
    files = sorted(p.relative_to(out).as_posix() for p in (out / "releases").rglob("*.md"))
    assert len(rows) == 51
    assert sorted(row["path"] for row in rows) == files

    for row in rows:
        post = frontmatter.load(out / row["path"])
        expected = {
            "title": row["title"],
            "date": date.fromisoformat(row["date"]),
            "url": f"{SITE}/release/{reference_slug(row['slug'])}",
        }
        for key in ("ministers", "portfolios", "attachments"):
            values = json.loads(row[key])
            if values:  # empty lists are left out of the file
                expected[key] = values
        assert post.metadata == expected, row["path"]
        assert post.content == row["body"], row["path"]
