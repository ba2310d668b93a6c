"""The eleven governments whose releases the site's search can be filtered by.

The site's search facets releases by government (``government_facet:<id>``); the ids are
the site's own. A government's releases are taken to be those published from its election
day (New Zealand) up to the next one: how ``beehive status`` counts the releases archived
per government. The site may file a release from the days between an election and the
swearing-in under either government, so those counts can differ from the search's by a few.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Government:
    facet: int  # the search's government_facet id
    years: str  # "1999-2002"
    party: str  # "Labour-Alliance"
    elected: str  # UTC date from which releases are counted as this government's

    @property
    def name(self) -> str:
        return f"{self.years} {self.party}"

    @property
    def walk(self) -> str:
        """The name of this government's search walk in the ledger's ``walks`` table."""
        return f"search:{self.facet}"


# Newest first: the order in which a backfill walks them.
GOVERNMENTS = (
    Government(6700, "2023-2026", "National-ACT-NZ First", "2023-10-14"),
    Government(6455, "2020-2023", "Labour", "2020-10-17"),
    Government(6203, "2017-2020", "Labour-NZ First", "2017-09-23"),
    Government(6064, "2014-2017", "National", "2014-09-20"),
    Government(5926, "2011-2014", "National", "2011-11-26"),
    Government(4775, "2008-2011", "National", "2008-11-08"),
    Government(4637, "2005-2008", "Labour", "2005-09-17"),
    Government(4507, "2002-2005", "Labour", "2002-07-27"),
    Government(4376, "1999-2002", "Labour-Alliance", "1999-11-27"),
    Government(4265, "1996-1999", "National-NZ First", "1996-10-12"),
    Government(4194, "1993-1996", "National", "1993-11-06"),
)


def spans():
    """(government, first UTC date, first UTC date of the next or None), newest first."""
    ends = [None] + [g.elected for g in GOVERNMENTS[:-1]]
    return [(government, government.elected, end) for government, end in zip(GOVERNMENTS, ends)]


def government_of(date: str) -> Government | None:
    """The government in office on a UTC date (YYYY-MM-DD…), or None before 1993."""
    for government in GOVERNMENTS:
        if date[:10] >= government.elected:
            return government
    return None
