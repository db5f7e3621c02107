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
# Helper D's branch of issue 31 writes rllc/adaptive_memory.py's References and
# Examples; these xfail strictly until it lands, then fail, so the mark goes.
PENDING = "rllc.adaptive_memory"


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


def _marks(factory: str):
  if factory.startswith(PENDING + ":"):
    return pytest.mark.xfail(strict=True, reason="rllc/adaptive_memory.py is helper D's (issue 31)")
  return ()


def _function(factory: str):
  module, _, name = factory.partition(":")
  return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize(
  "factory", [pytest.param(f, marks=_marks(f)) for f in _public_optimizers()]
)
def test_a_public_optimizer_has_a_references_line_and_a_runnable_example(factory):
  doc = inspect.getdoc(_function(factory)) or ""
  references = [line for line in doc.splitlines() if line.strip() == "References:"]
  assert references, f"{factory}: no 'References:' line in its docstring"
  _, _, after = doc.partition("\nReferences:\n")
  assert after.split("\n\n")[0].strip(), f"{factory}: its References section names no paper"
  _, found, example = doc.partition("\nExample:\n")
  assert found and ">>> " in example, f"{factory}: no 'Example:' section with >>> lines"


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
