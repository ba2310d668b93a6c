"""Score the converter against a reference archive.

    python -m archive.conformance PAGES_DIR EXPECTED_DIR [--show N]

Every ``PAGES_DIR/<rel>.html`` is parsed and rendered and compared byte for byte
with ``EXPECTED_DIR/<rel>.md``: front matter, body and whole file.  Prints the
match rates and the first differing lines of each mismatch.  Exit status 1 when
any page fails to parse (or has no expected file), else 0.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .markdown import body_to_markdown
from .parse import ParseError, parse_release
from .render import render_front_matter

__all__ = ["Mismatch", "Report", "compare", "main"]


@dataclass
class Mismatch:
    rel: str
    part: str  # "front matter" or "body"
    line_no: int
    expected: str
    actual: str


@dataclass
class Report:
    total: int = 0
    front_ok: int = 0
    body_ok: int = 0
    file_ok: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    failed_files: list[str] = field(default_factory=list)

    @staticmethod
    def _pct(n: int, d: int) -> float:
        return 100.0 * n / d if d else 100.0

    @property
    def front_rate(self) -> float:
        return self._pct(self.front_ok, self.total)

    @property
    def body_rate(self) -> float:
        return self._pct(self.body_ok, self.total)

    @property
    def file_rate(self) -> float:
        return self._pct(self.file_ok, self.total)

    def summary(self) -> str:
        return "\n".join(
            [
                f"pages:        {self.total}",
                f"front matter: {self.front_ok}/{self.total} ({self.front_rate:.1f}%)",
                f"body:         {self.body_ok}/{self.total} ({self.body_rate:.1f}%)",
                f"whole file:   {self.file_ok}/{self.total} ({self.file_rate:.1f}%)",
                f"parse errors: {len(self.errors)}",
            ]
        )


def _split(doc: str) -> tuple[str, str]:
    """(front matter incl. closing '---\\n', body after the blank line)."""
    if doc.startswith("---\n"):
        end = doc.find("\n---\n", 3)
        if end >= 0:
            fm = doc[: end + 5]
            rest = doc[end + 5:]
            if rest.startswith("\n"):
                rest = rest[1:]
            return fm, rest
    return "", doc


def _first_diff(a: str, b: str) -> tuple[int, str, str]:
    al = a.split("\n")
    bl = b.split("\n")
    for i in range(max(len(al), len(bl))):
        x = al[i] if i < len(al) else "<missing>"
        y = bl[i] if i < len(bl) else "<missing>"
        if x != y:
            return i + 1, x, y
    return 0, "", ""


def compare(pages_dir, expected_dir) -> Report:
    pages_dir = Path(pages_dir)
    expected_dir = Path(expected_dir)
    report = Report()
    for page in sorted(pages_dir.rglob("*.html")):
        rel = page.relative_to(pages_dir).with_suffix("")
        rel_s = rel.as_posix()
        exp_path = expected_dir / (rel_s + ".md")
        report.total += 1
        if not exp_path.is_file():
            report.errors.append((rel_s, "no expected file"))
            report.failed_files.append(rel_s)
            continue
        expected = exp_path.read_bytes().decode("utf-8")
        try:
            release = parse_release(page.read_bytes())
        except ParseError as exc:
            report.errors.append((rel_s, str(exc)))
            report.failed_files.append(rel_s)
            continue
        fm = render_front_matter(release)
        body = body_to_markdown(release.body_html)
        actual = fm + "\n" + body
        exp_fm, exp_body = _split(expected)
        ok_fm = fm == exp_fm
        ok_body = body == exp_body
        report.front_ok += ok_fm
        report.body_ok += ok_body
        report.file_ok += actual == expected
        if not ok_fm:
            n, e, a = _first_diff(exp_fm, fm)
            report.mismatches.append(Mismatch(rel_s, "front matter", n, e, a))
        if not ok_body:
            n, e, a = _first_diff(exp_body, body)
            report.mismatches.append(Mismatch(rel_s, "body", n, e, a))
        if actual != expected:
            report.failed_files.append(rel_s)
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m archive.conformance", description=__doc__.split("\n\n")[0])
    ap.add_argument("pages_dir")
    ap.add_argument("expected_dir")
    ap.add_argument("--show", type=int, default=20, help="show at most N mismatches (default 20)")
    args = ap.parse_args(argv)
    report = compare(args.pages_dir, args.expected_dir)
    print(report.summary())
    for rel, msg in report.errors:
        print(f"ERROR {rel}: {msg}")
    for m in report.mismatches[: args.show]:
        print(f"\nMISMATCH {m.rel} ({m.part}, line {m.line_no})")
        print(f"  expected: {m.expected!r}")
        print(f"  actual:   {m.actual!r}")
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
