"""The settings of the stack ``bench/load.py`` runs: the product's, with the URLs of
``bench/_load_urls.py`` (the product's and the baseline view). Never used by the
product itself. Not a benchmark: bench/run.py skips ``_`` files."""

from __future__ import annotations

from config.settings import *  # noqa: F403 - every product setting, unchanged

ROOT_URLCONF = "bench._load_urls"
