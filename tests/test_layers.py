"""The import graph has no upward arrow: each package imports only the layers below it.

  rllc.compat < rllc < tasks < eval.store < eval.run < eval.report < eval.experiments < eval.cli

`tasks` sits beside `rllc`, not on it: of `rllc` it imports only `rllc.compat`,
the stack-compat layer below both (learned_optimization's shim).

Every .py file under rllc/, tasks/ and eval/ is parsed (never imported) and
every import of a project module is collected: at module level, inside
functions (the command line imports its machinery there) and under `if
TYPE_CHECKING`, plus `importlib.import_module("...")` with a literal name.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Lowest first; a module belongs to the longest prefix that matches it.
LAYERS = (
  "rllc.compat",
  "rllc",
  "tasks",
  "eval.store",
  "eval.run",
  "eval.report",
  "eval.experiments",
  "eval.cli",
)
PACKAGES = ("rllc", "tasks", "eval")
# Layers below a layer that it still may not import: tasks does not depend on the optimizers.
BESIDE = {"tasks": ("rllc",)}


def layer(module: str) -> int | None:
  """The index in LAYERS of a project module; None outside the project.

  `eval` itself (its docstring only) counts as the lowest eval layer.
  """
  if module == "eval":
    return LAYERS.index("eval.store")
  matches = [i for i, name in enumerate(LAYERS) if module == name or module.startswith(name + ".")]
  return max(matches, key=lambda i: len(LAYERS[i])) if matches else None


def module_name(path: Path) -> str:
  parts = path.relative_to(ROOT).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(source: str, module: str, is_package: bool = False) -> set[str]:
  """The project modules that `source` (the code of `module`) imports, anywhere in it."""
  package = module if is_package else module.rpartition(".")[0]
  found = set()
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Import):
      found.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      if node.level:  # relative: from the importing module's package
        base = package.split(".")[: len(package.split(".")) - node.level + 1]
        target = ".".join(base + ([node.module] if node.module else []))
      else:
        target = node.module
      # `from eval.report import selection` imports eval.report.selection (a module or a name
      # of eval.report: either way of that layer).
      found.update(f"{target}.{alias.name}" for alias in node.names if alias.name != "*")
      found.add(target)
    elif (
      isinstance(node, ast.Call)
      and isinstance(node.func, ast.Attribute)
      and node.func.attr == "import_module"
      and node.args
      and isinstance(node.args[0], ast.Constant)
      and isinstance(node.args[0].value, str)
    ):
      found.add(node.args[0].value)
  return {name for name in found if name.split(".")[0] in PACKAGES}


def upward(source: str, module: str, is_package: bool = False) -> list[str]:
  """The imports of `module` from a layer above its own, or from a layer it sits beside."""
  own = layer(module) or 0
  beside = {LAYERS.index(name) for name in BESIDE.get(LAYERS[own], ())}
  return sorted(
    name
    for name in imports(source, module, is_package)
    if (layer(name) or 0) > own or layer(name) in beside
  )


def project_files() -> list[Path]:
  return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_every_project_module_has_a_layer():
  unplaced = [module_name(p) for p in project_files() if layer(module_name(p)) is None]
  assert not unplaced, f"modules outside every layer of {LAYERS}: {unplaced}"


def test_no_module_imports_a_layer_above_its_own():
  violations = []
  for path in project_files():
    module = module_name(path)
    for name in upward(path.read_text(), module, path.name == "__init__.py"):
      violations.append(f"{module} ({LAYERS[layer(module)]}) imports {name}")
  assert not violations, "upward imports:\n" + "\n".join(violations)


@pytest.mark.parametrize(
  "source",
  [
    "from eval.report import selection",
    "import tasks.registry",
    "def f():\n  from eval.cli import commands",
    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n  from tasks.image_tasks import X",
    "import importlib\nimportlib.import_module('eval.run.engine')",
  ],
)
def test_an_upward_import_is_seen_wherever_it_is_written(source):
  assert upward(source, "rllc.memory"), source


def test_relative_imports_resolve_against_the_package():
  assert imports("from ..report import build", "eval.run.bench") >= {"eval.report.build"}
  assert imports("from . import rules", "eval.store", is_package=True) >= {"eval.store.rules"}
  assert upward("from ..report import build", "eval.run.bench") == [
    "eval.report",
    "eval.report.build",
  ]


@pytest.mark.parametrize(
  "source",
  [
    "from rllc import catalog",
    "import rllc",
    "from rllc.lopt import LOptimizer",
    "def f():\n  import rllc.memory",
  ],
)
def test_tasks_imports_nothing_of_rllc_but_the_compat_layer(source):
  assert upward(source, "tasks.image_tasks"), source
  assert not upward("from rllc.compat import lo_compat", "tasks.image_tasks")


def test_the_compat_layer_imports_nothing_of_the_project_above_it():
  assert layer("rllc.compat.lo_compat") == 0
  assert upward("from rllc import memory", "rllc.compat.lo_compat") == [
    "rllc",
    "rllc.memory",
  ]
  assert upward("from tasks import data", "rllc.compat") == ["tasks", "tasks.data"]


def test_same_and_lower_layers_are_allowed():
  assert not upward(
    "from eval.store import store\nimport rllc\nfrom tasks import data", "eval.run.x"
  )
  assert not upward("import jax\nimport optax", "rllc.memory")
