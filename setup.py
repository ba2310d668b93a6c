# For scrapyd-deploy, which builds its egg with `python setup.py bdist_egg`: everything else
# (packages, dependencies, the Scrapy settings entry point) is in pyproject.toml.
from setuptools import setup

setup()
