"""Datasette plugin loaded by ``beehive serve`` (and only by it, through --plugins-dir).

- a ``year`` facet (``_facet_year=date``): releases per year of an ISO date column;
- the ``path`` of a release links to its Markdown file (served by ``--static releases:…``);
- the ``region`` blob (the compressed page region) is left out of the table views of
  ``releases`` and ``revisions`` unless asked for with ``?_col=region``: it is for
  ``beehive rebuild``, not for reading.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from datasette import hookimpl
from datasette.facets import Facet
from datasette.utils import escape_sqlite, path_with_added_args, path_with_removed_args
from markupsafe import Markup, escape

HIDDEN_COLUMNS = {"releases": "region", "revisions": "region"}


class YearFacet(Facet):
    """Counts by the year (first four characters) of an ISO 8601 date or timestamp."""

    type = "year"

    async def suggest(self):
        return []

    async def facet_results(self):
        results, timed_out = [], []
        args = dict(self.get_querystring_pairs())
        size = self.get_facet_size()
        for source_and_config in self.get_configs():
            config = source_and_config["config"]
            column = config.get("column") or config["simple"]
            sql = (f"select substr({escape_sqlite(column)}, 1, 4) as value, count(*) as count "
                   f"from ({self.sql}) where {escape_sqlite(column)} is not null "
                   f"group by value order by value desc limit {size + 1}")
            try:
                rows = await self.ds.execute(self.database, sql, self.params, truncate=False,
                                             custom_time_limit=self.ds.setting("facet_time_limit_ms"))
            except Exception:  # QueryInterrupted: too slow for the facet time limit
                timed_out.append(column)
                continue
            values = []
            for row in rows.rows[:size]:
                key = f"{column}__startswith"
                selected = args.get(key) == row["value"]
                toggle = (path_with_removed_args(self.request, {key: row["value"]}) if selected
                          else path_with_added_args(self.request, {key: row["value"]}))
                values.append({"value": row["value"], "label": row["value"],
                               "count": row["count"], "selected": selected,
                               "toggle_url": self.ds.absolute_url(self.request, toggle)})
            results.append({
                "name": column, "type": self.type, "results": values,
                "hideable": source_and_config["source"] != "metadata",
                "toggle_url": path_with_removed_args(self.request, {"_facet_year": column}),
                "truncated": len(rows.rows) > size,
            })
        return results, timed_out


@hookimpl
def register_facet_classes():
    return [YearFacet]


@hookimpl
def render_cell(value, column, table, database, datasette):
    if column == "path" and isinstance(value, str) and value.startswith("releases/") \
            and value.endswith(".md"):
        return Markup('<a href="{}">{}</a>').format(datasette.urls.path("/" + value),
                                                   escape(value))
    return None


@hookimpl
def asgi_wrapper(datasette):
    def wrap(app):
        async def hide_columns(scope, receive, send):
            if scope["type"] == "http":
                scope = _without_hidden_columns(scope)
            await app(scope, receive, send)
        return hide_columns
    return wrap


def _without_hidden_columns(scope):
    """A table page of releases or revisions, unless it chooses its columns, gets
    ?_nocol=region."""
    parts = scope["path"].strip("/").split("/")
    if len(parts) != 2:
        return scope
    table = parts[1].split(".", 1)[0]  # releases, releases.json, releases.csv
    column = HIDDEN_COLUMNS.get(table)
    query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    if column is None or any(name in ("_col", "_nocol") for name, _ in query):
        return scope
    query.append(("_nocol", column))
    return {**scope, "query_string": urlencode(query).encode("latin-1")}
