"""Which of learned_optimization's tasks the benchmark can run, read from its source.

`rllc bench` takes three kinds of learned_optimization task (tasks.lo_tasks
builds them):

  lo:ImageMLP_Mnist_128x128x128_Relu   a fixed task of learned_optimization.tasks.fixed,
                                       on this suite's offline copy of its data set
  lo:QuadraticTask                     a synthetic task of learned_optimization.tasks.quadratics
  lo:FixedDimQuadraticFamily@3         the task a quadratic family samples from seed 3
  my_tasks:TinyTask                    a user's Task (subclass, instance or a function of no
                                       arguments returning one), imported from module my_tasks

The fixed tasks are found by parsing learned_optimization's source, not by
importing it (which imports TensorFlow): each public function of no arguments
in `learned_optimization/tasks/fixed/*.py` that builds its data with one call
`image.NAME_datasets(batch_size=B, ...)` is a task on data set NAME with batch
B. It runs here when NAME is one this suite has offline (MNIST, Fashion-MNIST,
CIFAR-10) at its own image size; the others (ImageNet, resized images) are
listed as needing data this suite cannot provide.

Everything here is light: listing (`rllc tasks`), checking a name (a
protocol) and naming a task's data import neither JAX nor learned_optimization.
"""

import ast
import dataclasses
import functools
import importlib.util
from pathlib import Path

from tasks import data as data_lib

PREFIX = "lo:"
# learned_optimization's data-set functions -> this suite's offline data sets.
SUITE_DATA = {
  "mnist_datasets": "mnist",
  "fashion_mnist_datasets": "fashion_mnist",
  "cifar10_datasets": "cifar10",
}
QUADRATICS = "learned_optimization.tasks.quadratics"
# Synthetic tasks of QUADRATICS whose constructors need no argument, and their data.
SYNTHETIC = {
  "QuadraticTask": "no data",
  "BatchQuadraticTask": "its own iterators of random batches, which its loss ignores",
  "LogQuadraticTask": "no data",
  "SumQuadraticTask": "no data",
}
# Task families of QUADRATICS whose constructors need no argument: a name takes @SEED.
FAMILIES = {"FixedDimQuadraticFamily": "no data"}


class UnknownTaskError(ValueError):
  """A task name that is neither the suite's, nor learned_optimization's, nor importable."""


@dataclasses.dataclass(frozen=True)
class LoTaskName:
  """What an `lo:` name stands for."""

  name: str  # as rllc bench takes it, e.g. "lo:ImageMLP_Mnist_128x128x128_Relu"
  module: str  # the learned_optimization module defining it
  attribute: str  # the function (fixed tasks) or class (synthetic tasks, families) there
  dataset: str | None = None  # the suite's data set it trains on (None: synthetic)
  needs: str | None = None  # data this suite cannot provide, when it cannot run here
  sample: int | None = None  # a family's sample seed
  batch_size: int | None = None  # a fixed task's own, from its factory's data-set call

  @property
  def synthetic_data(self) -> str | None:
    """What data a synthetic task or family sample has (None: a fixed task)."""
    return {**SYNTHETIC, **FAMILIES}.get(self.attribute) if self.module == QUADRATICS else None


def _package_root() -> Path:
  spec = importlib.util.find_spec("learned_optimization")  # finds it without importing it
  if spec is None or not spec.submodule_search_locations:
    raise UnknownTaskError("learned_optimization is not installed (see the README's install)")
  return Path(next(iter(spec.submodule_search_locations)))


def _dataset_call(function: ast.FunctionDef) -> ast.Call | None:
  """The one `image.NAME_datasets(...)` call of a fixed task's factory, if exactly one."""
  calls = [
    node
    for node in ast.walk(function)
    if isinstance(node, ast.Call)
    and isinstance(node.func, ast.Attribute)
    and isinstance(node.func.value, ast.Name)
    and node.func.value.id == "image"
    and node.func.attr.endswith("_datasets")
  ]
  return calls[0] if len(calls) == 1 else None


def _fixed_task(module: str, function: ast.FunctionDef) -> LoTaskName | None:
  """A fixed task's name and data from its factory's source, or None if not one."""
  if function.name.startswith("_") or function.args.args or function.args.vararg:
    return None
  call = _dataset_call(function)
  if call is None:
    return None
  source = call.func.attr
  keywords = {k.arg for k in call.keywords}
  name = PREFIX + function.name
  if source not in SUITE_DATA:
    return LoTaskName(name, module, function.name, needs=f"{source} (tensorflow-datasets)")
  if keywords - {"batch_size"}:
    return LoTaskName(
      name, module, function.name, needs=f"{ast.unparse(call)}: resized images, not offline here"
    )
  batch = [k.value.value for k in call.keywords if isinstance(k.value, ast.Constant)]
  return LoTaskName(
    name, module, function.name, dataset=SUITE_DATA[source], batch_size=(batch or [None])[0]
  )


@functools.cache
def known() -> dict[str, LoTaskName]:
  """Every `lo:` name: the fixed tasks found in the source, the synthetic ones, a family sample.

  Families are listed by their sample 0; `lookup` takes any `@SEED`.
  """
  names: dict[str, LoTaskName] = {}
  fixed = _package_root() / "tasks" / "fixed"
  for path in sorted(fixed.glob("*.py")):
    if path.name == "__init__.py" or path.stem.endswith("_test"):
      continue
    module = f"learned_optimization.tasks.fixed.{path.stem}"
    for node in ast.parse(path.read_text()).body:
      if isinstance(node, ast.FunctionDef) and (task := _fixed_task(module, node)):
        names[task.name] = task
  for cls in SYNTHETIC:
    names[PREFIX + cls] = LoTaskName(PREFIX + cls, QUADRATICS, cls)
  for cls in FAMILIES:
    names[f"{PREFIX}{cls}@0"] = LoTaskName(f"{PREFIX}{cls}@0", QUADRATICS, cls, sample=0)
  return names


def runnable() -> list[LoTaskName]:
  """The `lo:` tasks this suite can run (given their data set, for the fixed ones)."""
  return [t for t in known().values() if t.needs is None]


def is_lo(name: str) -> bool:
  """Whether a task name is learned_optimization's (`lo:NAME`) or a user's (`module:Name`)."""
  return ":" in name


def is_user(name: str) -> bool:
  """Whether a task name is a user's `module:Name`."""
  return ":" in name and not name.startswith(PREFIX)


def lookup(name: str) -> LoTaskName:
  """The `lo:` name's task, or an error naming the valid ones or the data it needs.

  Raises:
    UnknownTaskError: not one of learned_optimization's tasks (the message lists them).
    tasks.data.DataError: a task on data this suite cannot provide.
  """
  base, at, sample = name.partition("@")
  if at and base.removeprefix(PREFIX) in FAMILIES and sample.isdigit():
    return LoTaskName(name, QUADRATICS, base.removeprefix(PREFIX), sample=int(sample))
  task = known().get(name)
  if task is None:
    valid = ", ".join(t.name for t in runnable())
    raise UnknownTaskError(
      f"unknown learned_optimization task {name!r}; runnable here: {valid} (a family takes"
      " any @SEED; rllc tasks lists them with their data)"
    )
  if task.needs is not None:
    raise data_lib.DataError(
      f"task {name} needs {task.needs}, which this suite has no offline copy of; the tasks"
      " runnable here are in rllc tasks"
    )
  return task


def dataset_of(name: str) -> str | None:
  """The suite data set an `lo:` or `module:Name` task trains on (None: none of the suite's)."""
  return None if is_user(name) else lookup(name).dataset


def batch_size_of(name: str) -> int | None:
  """A fixed `lo:` task's batch size, which its name sets; None for the others, whose batches
  are their own iterators' (a user's task, BatchQuadraticTask) or absent (the quadratics)."""
  return None if is_user(name) else lookup(name).batch_size
