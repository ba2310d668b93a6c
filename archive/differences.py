"""Where this archive deliberately differs from the reference archive.

The converter reproduces marcus-crane/beehive-markdown byte for byte, except in the
few places listed here, where copying the reference would mean copying a mistake.
This table is the one list of them: the README section "Differences from the
reference archive" is written from it (a test checks that they agree), and
``python -m archive.conformance`` uses it to tell a deliberate difference from a
defect.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

import yaml

__all__ = ["Difference", "DIFFERENCES", "BY_KEY", "explain_front_matter"]


@dataclass(frozen=True)
class Difference:
    key: str
    title: str
    reference: str  # what the reference archive does
    ours: str  # what this archive does instead, and why
    test: str  # the test that pins it: tests/<file>.py::<name>


DIFFERENCES = (
    Difference(
        key="block-pages",
        title="Bot-protection pages are refused",
        reference="stored two Imperva Incapsula block pages as releases dated 0001-01-01",
        ours="a block page is never a release: parsing raises `BlockedPage`, nothing is written, "
        "the run backs off and says so",
        test="tests/test_faults.py::test_the_reference_archive_stored_block_pages_and_we_refuse_them",
    ),
    Difference(
        key="yaml-quoting",
        title="Front matter that YAML can read back",
        reference="writes names and URLs unquoted, even when that is not valid YAML or reads "
        "back as another value (a name `Yes` becomes true, `2020` a number)",
        ours="such a value is double-quoted the way the title is (Go strconv.Quote); every "
        "value that is safe plain stays unquoted",
        test="tests/test_render.py::test_plain_values_stay_unquoted_like_the_reference",
    ),
    Difference(
        key="ministers-list",
        title="Ministers are read from the ministers list",
        reference="one version of its parser took the text of every link whose href contains "
        "`/minister/`, anywhere in the page: a past-government minister (shown without a link) "
        "can be missing, and a body link such as `www.executive.govt.nz/minister/king/` can "
        "stand in the ministers list",
        ours="the names in `ul.meta--ministers` only (current ministers' links, past ministers' "
        "plain names)",
        test="tests/test_differences.py::test_ministers_come_from_the_ministers_list_only",
    ),
    Difference(
        key="slug-collisions",
        title="Two releases never share a file",
        reference="derives the file name from the slug with diacritics and non-ASCII dropped, "
        "so two slugs can fold to one name and the later release overwrites the earlier",
        ours="a release whose file name is already held by another URL is refused (an error for "
        "that release), and the file already there is kept",
        test="tests/test_differences.py::test_a_slug_that_folds_onto_another_releases_file_is_refused",
    ),
    Difference(
        key="safe-paths",
        title="Hostile slugs cannot leave the archive",
        reference="writes `releases/YYYY/MM/YYYY-MM-DD-<slug>.md` with the slug as the page gives it",
        ours="a slug that is not plain lower-case words (.., /, %2F, NUL, over-long) is folded to a "
        "safe name with a short hash; real slugs are unchanged",
        test="tests/test_faults.py::test_a_hostile_canonical_url_cannot_write_outside_releases",
    ),
)

BY_KEY = {d.key: d for d in DIFFERENCES}

_KEY_LINE = re.compile(r"^([a-z]+):(?: (.*))?$")


def _blocks(front: str) -> tuple[list[str], dict[str, list[str]]]:
    """Front matter lines outside the list blocks, and each list block's item lines."""
    flat: list[str] = []
    lists: dict[str, list[str]] = {}
    current = None
    for line in front.split("\n"):
        if current is not None and line.startswith("  - "):
            lists[current].append(line[4:])
            continue
        current = None
        m = _KEY_LINE.match(line)
        if m and m.group(2) is None:
            current = m.group(1)
            lists[current] = []
            flat.append(line)
            continue
        flat.append(line)
    return flat, lists


def _plain_equivalent(expected: str, actual: str) -> bool:
    """actual is expected written as a quoted YAML scalar (the yaml-quoting rule)."""
    if expected == actual or not actual.startswith('"'):
        return False
    try:
        return yaml.safe_load("k: " + actual) == {"k": expected}
    except yaml.YAMLError:
        return False


def _values(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        key, sep, value = line.partition(": ")
        out.append(value if sep else line)
    return out


def explain_front_matter(expected: str, actual: str) -> Optional[list[str]]:
    """The keys of the listed differences that explain every difference between two
    front matters, or None when something is left unexplained (a defect)."""
    if expected == actual:
        return []
    keys: list[str] = []
    exp_flat, exp_lists = _blocks(expected)
    act_flat, act_lists = _blocks(actual)
    if exp_lists.get("ministers") != act_lists.get("ministers"):
        keys.append("ministers-list")
        exp_lists.pop("ministers", None)
        act_lists.pop("ministers", None)
        exp_flat = [line for line in exp_flat if line != "ministers:"]
        act_flat = [line for line in act_flat if line != "ministers:"]
    if len(exp_flat) != len(act_flat) or exp_lists.keys() != act_lists.keys():
        return None
    pairs = list(zip(_values(exp_flat), _values(act_flat)))
    for name in exp_lists:
        if len(exp_lists[name]) != len(act_lists[name]):
            return None
        pairs.extend(zip(exp_lists[name], act_lists[name]))
    quoted = False
    for exp, act in pairs:
        if exp == act:
            continue
        if not _plain_equivalent(exp, act):
            return None
        quoted = True
    if quoted:
        keys.append("yaml-quoting")
    return keys


# for a page that the parser refuses: which listed difference, if any, that is
PAGE_REFUSALS: dict[str, str] = {"BlockedPage": "block-pages"}
