"""Datasette plugins loaded by ``beehive serve`` (--plugins-dir); a package so that
``pip install .`` ships them."""
