"""Every public optimizer's docstring has a References line and an Example that runs.

The anchors' convention (optax's `alias.py`): a factory's docstring names the
paper and equation it implements on a `References:` line, and shows an
`Example:` of `>>>` lines, here a tiny two-parameter update printed rounded,
whose printed values the docstring derives by hand. This file runs every
example of every module of the rllc package as a doctest, and checks that
each public optimizer, a catalog factory of rllc/ or a `scale_by_*`
transformation that `rllc` exports, has both sections.
"""

import doctest
import importlib
import inspect
import re
from pathlib import Path

import pytest

from rllc import _EXPORTS
from rllc import catalog as catalog_lib

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(
  ".".join(path.relative_to(ROOT).with_suffix("").parts)
  for path in (ROOT / "rllc").rglob("*.py")
  if path.name != "__init__.py"
)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
EXAMPLE = re.compile(r"^Examples?:$(.*)", re.MULTILINE | re.DOTALL)  # the section, to the end


def _catalog_factories() -> set[str]:
  catalog = catalog_lib.DEFAULT
  entries = [*catalog.values(), catalog.rllc, catalog.fixed_law]
  return {
    e.factory for e in entries if isinstance(e.factory, str) and e.factory.startswith("rllc.")
  }


def _public_optimizers() -> list[str]:
  """The "module:function" of every public optimizer: catalog factories and exported chains."""
  chains = {
    f"rllc.{module}:{name}" for name, module in _EXPORTS.items() if name.startswith("scale_by_")
  }
  return sorted(_catalog_factories() | chains)


def _function(factory: str):
  module, _, name = factory.partition(":")
  return getattr(importlib.import_module(module), name)


def _section(doc: str, *titles: str) -> str | None:
  """The text of a Google-style section: after its title on the same line, and the lines
  indented under it up to the next blank line; None if the docstring has no such section."""
  lines = doc.splitlines()
  for i, line in enumerate(lines):
    title, colon, rest = line.strip().partition(":")
    if colon and title in titles and not line.startswith(" "):
      body = [rest.strip()]
      for following in lines[i + 1 :]:
        if not following.strip():
          break
        body.append(following.strip())
      return " ".join(b for b in body if b)
  return None


@pytest.mark.parametrize("factory", _public_optimizers())
def test_a_public_optimizer_has_a_references_line_and_a_runnable_example(factory):
  doc = inspect.getdoc(_function(factory)) or ""
  assert _section(doc, "References"), f"{factory}: no 'References:' naming a paper"
  example = EXAMPLE.search(doc)
  assert example and ">>> " in example.group(1), f"{factory}: no 'Example:' with >>> lines"


def test_a_references_section_is_read_on_its_line_or_under_it():
  assert _section("f.\n\nReferences: Smith, eq. (3).", "References") == "Smith, eq. (3)."
  assert _section("f.\n\nReferences:\n  Smith,\n  eq. (3).\n\nExample:", "References") == (
    "Smith, eq. (3)."
  )
  assert _section("f.\n\nReferences:\n\nExample:", "References") == ""
  assert _section("f, with References: inside a line.", "References") is None


@pytest.mark.parametrize("module", MODULES)
def test_the_examples_of_a_module_run_as_doctests(module):
  runner = doctest.DocTestRunner(optionflags=FLAGS)
  for test in doctest.DocTestFinder().find(importlib.import_module(module)):
    runner.run(test)
  result = runner.summarize(verbose=False)
  assert result.failed == 0, f"{module}: {result.failed} of {result.attempted} examples failed"


def test_a_failing_example_is_caught():
  def wrong():
    """>>> 1 + 1
    3
    """

  runner = doctest.DocTestRunner(optionflags=FLAGS)
  for test in doctest.DocTestFinder().find(wrong, "wrong", globs={}):
    runner.run(test, out=lambda _: None)
  assert runner.summarize(verbose=False) == (1, 1)


def test_the_public_optimizers_include_every_catalog_factory_of_rllc():
  factories = _public_optimizers()
  for expected in ("rllc.memory:rllc", "rllc.lion:lion_k", "rllc.nested:deep_momentum"):
    assert expected in factories
  assert "rllc.memory:scale_by_rllc" in factories
