"""Score the converter against a reference archive.

    python -m archive.conformance PAGES_DIR EXPECTED_DIR [--show N]

Every ``PAGES_DIR/<rel>.html`` is parsed and rendered and compared byte for byte
with ``EXPECTED_DIR/<rel>.md``: front matter, body and whole file.  Prints the
match rates and the first differing lines of each mismatch.  A mismatch that one of
the deliberate differences in :mod:`archive.differences` explains (a block page
refused, a value quoted so that YAML reads it back, ministers read from the
ministers list) is tagged as that choice; every other mismatch is a defect.  Exit
status 1 when any page fails to parse (or has no expected file), else 0.
"""
from __future__ import annotations

import argparse
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .differences import PAGE_REFUSALS, explain_front_matter
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
    # keys of the listed differences that explain it; empty for a defect
    differences: tuple = ()

    @property
    def is_choice(self) -> bool:
        return bool(self.differences)


@dataclass
class Report:
    total: int = 0
    front_ok: int = 0
    body_ok: int = 0
    file_ok: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    failed_files: list[str] = field(default_factory=list)
    # files that differ only where a listed difference says they should: rel -> keys
    choices: dict[str, tuple] = field(default_factory=dict)

    @property
    def defect_files(self) -> list[str]:
        """Files that differ (or fail) for a reason no listed difference gives."""
        return [rel for rel in self.failed_files if rel not in self.choices]

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
                f"differing files that are listed differences: {len(self.choices)}"
                + (f" ({self._choice_counts()})" if self.choices else ""),
                f"differing files that are defects: {len(self.defect_files)}",
            ]
        )

    def _choice_counts(self) -> str:
        counts: dict[str, int] = {}
        for keys in self.choices.values():
            for key in keys:
                counts[key] = counts.get(key, 0) + 1
        return ", ".join(f"{k}: {n}" for k, n in sorted(counts.items()))


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
            refusal = PAGE_REFUSALS.get(type(exc).__name__)
            report.failed_files.append(rel_s)
            if refusal:
                # the reference kept this page as a release; refusing it is the choice
                report.mismatches.append(Mismatch(rel_s, "page", 0, "(a release)", str(exc), (refusal,)))
                report.choices[rel_s] = (refusal,)
            else:
                report.errors.append((rel_s, str(exc)))
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
        explained: Optional[list] = []
        if not ok_fm:
            n, e, a = _first_diff(exp_fm, fm)
            explained = explain_front_matter(exp_fm, fm)
            report.mismatches.append(Mismatch(rel_s, "front matter", n, e, a, tuple(explained or ())))
        if not ok_body:
            n, e, a = _first_diff(exp_body, body)
            report.mismatches.append(Mismatch(rel_s, "body", n, e, a))
        if actual != expected:
            report.failed_files.append(rel_s)
            if ok_body and explained:
                report.choices[rel_s] = tuple(explained)
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
    # defects first: they are what needs fixing
    ordered = sorted(report.mismatches, key=lambda m: m.is_choice)
    for m in ordered[: args.show]:
        tag = "LISTED DIFFERENCE " + ", ".join(m.differences) if m.is_choice else "DEFECT"
        print(f"\n{tag}: {m.rel} ({m.part}, line {m.line_no})")
        print(f"  expected: {m.expected!r}")
        print(f"  actual:   {m.actual!r}")
    return 1 if report.errors else 0


if __name__ == "__main__":
    # `... | head` ends quietly. Only as a program: a process that calls main() (a test
    # run, serving a replica in a thread) must keep Python's own handling of a closed pipe.
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
