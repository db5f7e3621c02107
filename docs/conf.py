"""Sphinx configuration of the rllc-suite docs (MyST Markdown, as optax and flax do).

Build: `make docs` (warnings are errors, so a broken link, a missing page or a
stale include fails the build). The optimizer table is generated from the
catalog at build time by `_ext/catalog_table.py`.
"""

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path[:0] = [str(DOCS.parent), str(DOCS / "_ext")]

project = "rllc-suite"
author = "the rllc-suite authors"
copyright = "the rllc-suite authors, Apache-2.0"

extensions = ["myst_parser", "catalog_table"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_generated"]
myst_heading_anchors = 3  # `page.md#a-heading` links are checked against the headings
html_theme = "furo"
html_title = "rllc-suite"
