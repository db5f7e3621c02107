"""The optimizer table of the docs, generated from the catalog (rllc.catalog) at build time.

On `builder-inited` Sphinx calls `write_table`, which writes
`_generated/optimizer_table.md` (ignored by git) from the active catalog;
`optimizers.md` includes it. A new catalog entry therefore shows up in the
docs without anyone editing them, and a removed one disappears. Reading the
catalog imports neither JAX nor optax (factories are imported on their
first build), so the table costs the build nothing noticeable.
"""

from pathlib import Path

from rllc import catalog as catalog_lib

HEADER = ("name", "family", "factory", "hyperparameters [defaults]", "buffers", "quick grid")
GENERATED = Path("_generated") / "optimizer_table.md"


def _factory(entry: catalog_lib.Entry) -> str:
  """`module:function`, with the arguments the entry pins (e.g. `optax:sgd` nesterov=True)."""
  factory = entry.factory if isinstance(entry.factory, str) else entry.factory.__qualname__
  pinned = " ".join(f"{k}={v!r}" for k, v in entry.fixed.items())
  return f"`{factory}`" + (f" {pinned}" if pinned else "")


def _buffers(entry: catalog_lib.Entry) -> str:
  """Parameter-sized buffers at the defaults; k (its units) for a propagator spec."""
  if entry.buffer_count == catalog_lib.UNITS:
    return "k"
  return str(entry.buffers(entry.defaults()))


def rows(catalog: catalog_lib.Catalog) -> list[tuple[str, ...]]:
  """One row per entry of `catalog`, then its two spec templates (RLLC, fixed law)."""
  entries = [*catalog.values(), catalog.rllc, catalog.fixed_law]
  names = {
    catalog.rllc.name: "a spec, e.g. `M(0.9)+M(0)`",
    catalog.fixed_law.name: "`lm:` + a spec",
  }
  return [
    (
      names.get(entry.name, f"`{entry.name}`"),
      entry.family,
      _factory(entry),
      catalog_lib.describe_hyperparameters(entry),
      _buffers(entry),
      catalog_lib.describe_grid(entry.quick),
    )
    for entry in entries
  ]


def markdown(table: list[tuple[str, ...]]) -> str:
  """A MyST (GitHub-flavoured) table; a `|` inside a cell is escaped."""
  lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
  for row in table:
    lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
  return "\n".join(lines) + "\n"


def write_table(app) -> None:
  """Writes the table of the active catalog under the source directory, if it changed."""
  path = Path(app.srcdir) / GENERATED
  text = markdown(rows(catalog_lib.active()))
  path.parent.mkdir(exist_ok=True)
  if not path.exists() or path.read_text(encoding="utf-8") != text:
    path.write_text(text, encoding="utf-8")


def setup(app):
  app.connect("builder-inited", write_table)
  return {"parallel_read_safe": True, "parallel_write_safe": True}
