"""The docs site: the optimizer table comes from the catalog, and the README is the front door.

`make docs` (run by `make test`) builds docs/ with warnings as errors, which
catches a broken link between pages, a missing page or a bad include. These
tests check what the build cannot: that the generated table lists every
catalog entry, and that the README stays short and its links lead somewhere.
"""

import importlib.util
import re
from pathlib import Path

from rllc import catalog as catalog_lib

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README_LIMIT = 250  # lines (issue 31: the anchors' READMEs are 81-252)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _extension():
  spec = importlib.util.spec_from_file_location("catalog_table", DOCS / "_ext" / "catalog_table.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _first_column(markdown: str) -> list[str]:
  """The first cell of each body row of a Markdown table."""
  rows = [line for line in markdown.splitlines() if line.startswith("|")][2:]
  return [row.split("|")[1].strip() for row in rows]


def test_the_generated_optimizer_table_lists_every_catalog_entry():
  ext = _extension()
  catalog = catalog_lib.DEFAULT
  names = _first_column(ext.markdown(ext.rows(catalog)))
  assert names[: len(catalog)] == [f"`{name}`" for name in catalog]
  assert len(names) == len(catalog) + 2  # and the two spec templates, RLLC and lm:
  assert "spec" in names[-2] and "`lm:`" in names[-1]


def test_a_new_catalog_entry_shows_up_in_the_table():
  ext = _extension()
  entry = catalog_lib.DEFAULT["sgd"]
  extended = catalog_lib.DEFAULT.extended(
    catalog_lib.Entry(
      "damped-sgd",
      entry.factory,
      "baseline",
      "DampedSGD",
      entry.hyperparameters,
      entry.key,
      0,
      entry.quick,
      entry.paper,
    )
  )
  assert "`damped-sgd`" in _first_column(ext.markdown(ext.rows(extended)))


def test_a_row_shows_the_entry_s_family_defaults_and_buffers():
  ext = _extension()
  rows = {row[0]: row for row in ext.rows(catalog_lib.DEFAULT)}
  name, family, factory, hyperparameters, buffers, _ = rows["`adamw`"]
  assert (family, factory, buffers) == ("baseline", "`optax:adamw`", "2")
  assert "b1 [0.9]" in hyperparameters and "weight_decay [0.0001]" in hyperparameters


def test_the_table_is_written_under_the_docs_source_and_included_by_the_optimizers_page(tmp_path):
  ext = _extension()

  class App:
    srcdir = str(tmp_path)

  ext.write_table(App())
  written = (tmp_path / ext.GENERATED).read_text(encoding="utf-8")
  assert written == ext.markdown(ext.rows(catalog_lib.active()))
  assert f"{{include}} {ext.GENERATED.as_posix()}" in (DOCS / "optimizers.md").read_text()


def test_the_readme_is_short():
  lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
  assert lines < README_LIMIT, f"README.md has {lines} lines; the manual goes in docs/"


def test_the_relative_links_of_the_readme_and_the_docs_lead_to_files():
  broken = []
  for page in [ROOT / "README.md", *DOCS.glob("*.md")]:
    for target in LINK.findall(page.read_text(encoding="utf-8")):
      path = target.partition("#")[0]
      if path and "://" not in path and not (page.parent / path).exists():
        broken.append(f"{page.relative_to(ROOT)}: {target}")
  assert not broken, f"links to nothing: {broken}"
