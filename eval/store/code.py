"""The code part of a record key: the source a run executes, as normalized syntax trees.

A run's key (eval.run.bench.record_key) names the computation: what was
asked (task, optimizer, hyperparameters, seed, the protocol's training
fields, the layout) and the code that makes its bits. `job_code(task, entry)`
is that code, in three parts, each a root module and what it imports from the
project, followed through every import statement of each module:

- the runner: the training function `eval.run.bench.train_job`, with the
  definitions of its module that it uses (followed name by name: bench.py's
  planning and executors make no bits), and the engine, `eval.run.engine`;
- the optimizer: the module of the catalog entry's factory (`rllc.memory`
  for "rllc.memory:rllc"); an optax factory brings no project code (optax's
  version is in the key). The entry itself enters as data: its factory's
  name, the arguments it pins and its initial-law convention;
- the task: `tasks.image_tasks`, `tasks.models` and, for a task that
  augments, `tasks.augment`, with the task's row of the registry as data; a
  learned_optimization task's `tasks.lo_tasks`, and a user's `module:Name`
  task's own module.

Tables are not code here. The catalog (`rllc.catalog`), the task registry
(`tasks.registry`) and the protocols (`eval.run.protocol`) enter a key
through what they resolve to, never through their text: an import of one of
them is not followed. So a new catalog entry, a protocol's default grid, a
message or a did-you-mean alias leaves every key as it was.

A module enters as its syntax tree with its docstrings removed and each
`raise` cut to the exception it raises (a message makes no bits), dumped
without line numbers: a docstring, a comment, a message or a reformat leaves
the hash unchanged, and any change to what runs changes it.
"""

import ast
import copy
import functools
import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[2]
PACKAGES = ("rllc", "tasks", "eval")
TABLES = ("rllc.catalog", "rllc.registry", "tasks.registry", "eval.run.protocol")
RUNNER = ("eval.run.bench", "train_job")
ENGINE = "eval.run.engine"
SUITE_TASK = ("tasks.image_tasks", "tasks.models")
AUGMENT = "tasks.augment"
LO_TASK = "tasks.lo_tasks"


def _path(root: Path, module: str) -> Path | None:
  """The source file of a project module under `root`, or None (not a module there)."""
  base = root.joinpath(*module.split("."))
  for path in (base.with_suffix(".py"), base / "__init__.py"):
    if path.is_file():
      return path
  return None


def _imports(tree: ast.Module, module: str, root: Path) -> dict[str, str]:
  """Names bound by the imports anywhere in `tree` -> the project module each brings in."""
  package = module.rpartition(".")[0]
  names = {}
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for alias in node.names:
        names[alias.asname or alias.name.partition(".")[0]] = alias.name
    elif isinstance(node, ast.ImportFrom):
      parts = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
      source = ".".join(parts + ([node.module] if node.module else []))
      for alias in node.names:
        full = f"{source}.{alias.name}"
        names[alias.asname or alias.name] = full if _path(root, full) else source
  return {
    name: target
    for name, target in names.items()
    if target.partition(".")[0] in PACKAGES and _path(root, target)
  }


_SCOPES = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _strip(tree: ast.AST) -> ast.AST:
  """Drops what makes no bits, in place: docstrings, and the messages of raised exceptions."""
  for node in ast.walk(tree):
    if isinstance(node, _SCOPES) and node.body and isinstance(node.body[0], ast.Expr):
      first = node.body[0].value
      if isinstance(first, ast.Constant) and isinstance(first.value, str):
        node.body = node.body[1:] or [ast.Pass()]
    elif isinstance(node, ast.Raise):
      if isinstance(node.exc, ast.Call):
        node.exc = node.exc.func
      node.cause = None
  return tree


def normalized(node: ast.AST) -> str:
  """The text a definition or module enters the hash as (see the module docstring)."""
  return ast.dump(_strip(copy.deepcopy(node)), include_attributes=False)


@functools.cache
def _module(root: Path, module: str, path: Path, mtime_ns: int) -> tuple[str, tuple[str, ...]]:
  """A module's normalized text and the project modules it imports; parsed again once edited
  (a new mtime)."""
  del mtime_ns  # part of the cache key only
  tree = ast.parse(path.read_text(), filename=str(path))
  return normalized(tree), tuple(sorted(set(_imports(tree, module, root).values())))


def _closure(roots: tuple[str, ...], root: Path) -> dict[str, str]:
  """Each module of `roots` and every project module they import, but tables: label -> text."""
  pieces, todo, seen = {}, list(roots), set()
  while todo:
    module = todo.pop()
    if module in seen or module in TABLES:
      continue
    seen.add(module)
    path = _path(root, module)
    if path is None:
      continue
    text, imported = _module(root, module, path, path.stat().st_mtime_ns)
    pieces[str(path.relative_to(root))] = text
    todo.extend(imported)
  return pieces


def _definitions(tree: ast.Module) -> dict[str, ast.stmt]:
  """The module's top-level functions, classes and assignments, by name."""
  found = {}
  for node in tree.body:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
      found[node.name] = node
    elif isinstance(node, (ast.Assign, ast.AnnAssign)):
      targets = node.targets if isinstance(node, ast.Assign) else [node.target]
      found.update((t.id, node) for t in targets if isinstance(t, ast.Name))
  return found


def _runner(root: Path) -> dict[str, str]:
  """The training function and the definitions of its module it uses, by name, and the engine."""
  path = _path(root, RUNNER[0])
  return {**_training_function(root, path, path.stat().st_mtime_ns), **_closure((ENGINE,), root)}


@functools.cache
def _training_function(root: Path, path: Path, mtime_ns: int) -> dict[str, str]:
  del mtime_ns  # part of the cache key only
  definitions = _definitions(ast.parse(path.read_text(), filename=str(path)))
  pieces, todo = {}, [RUNNER[1]]
  while todo:
    name = todo.pop()
    label = f"{path.relative_to(root)}:{name}"
    if label in pieces:
      continue
    node = definitions[name]
    pieces[label] = normalized(node)
    used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    todo.extend(sorted(used & set(definitions)))
  return pieces


def _module_of(factory: Any) -> str | None:
  """The module a catalog factory lives in: "rllc.memory" for "rllc.memory:rllc"."""
  if isinstance(factory, str):
    return factory.partition(":")[0]
  return getattr(factory, "__module__", None)


def _foreign(module: str) -> dict[str, str]:
  """A module outside the project (a user's task), normalized, if its source can be found."""
  try:
    spec = importlib.util.find_spec(module)
  except (ImportError, ValueError):
    return {}
  if spec is None or not spec.origin or not spec.origin.endswith(".py"):
    return {}
  return {module: normalized(ast.parse(Path(spec.origin).read_text()))}


def _task_part(task: str, root: Path) -> tuple[dict[str, Any], dict[str, str]]:
  """The task's row of the registry (data) and the modules that build it."""
  from tasks import lo_names
  from tasks import registry as task_registry

  if lo_names.is_user(task):
    return {"task": task}, {**_closure((LO_TASK,), root), **_foreign(task.partition(":")[0])}
  if lo_names.is_lo(task):
    return {"task": task}, _closure((LO_TASK,), root)
  spec = task_registry.TASKS[task]
  roots = SUITE_TASK + ((AUGMENT,) if spec.augment else ())
  return {"task": task, "spec": _as_data(vars(spec))}, _closure(roots, root)


def _optimizer_part(entry: Any, root: Path) -> tuple[dict[str, Any], dict[str, str]]:
  """The entry's data (factory name, pinned arguments, convention) and its factory's modules."""
  module = _module_of(entry.factory)
  factory = (
    entry.factory if isinstance(entry.factory, str) else f"{module}:{entry.factory.__name__}"
  )
  data = {"factory": factory, "fixed": _as_data(entry.fixed), "convention": entry.convention}
  package = (module or "").partition(".")[0]
  if package in PACKAGES:
    return data, _closure((module,), root)
  if package in ("", "optax"):  # optax's code: its version is in the key
    return data, {}
  return data, _foreign(module)


def _as_data(value: Any) -> Any:
  """A table's value as JSON-able data (anything else as its repr)."""
  return json.loads(json.dumps(value, sort_keys=True, default=repr))


def job_parts(task: str, entry: Any, root: Path | None = None) -> dict[str, dict]:
  """The three parts of a job's code: {part: {"data": ..., "sources": {label: text}}}.

  `root`: the project tree to read (default: PROJECT, this checkout).
  """
  root = PROJECT if root is None else root
  task_data, task_sources = _task_part(task, root)
  opt_data, opt_sources = _optimizer_part(entry, root)
  return {
    "runner": {"data": {}, "sources": _runner(root)},
    "optimizer": {"data": opt_data, "sources": opt_sources},
    "task": {"data": task_data, "sources": task_sources},
  }


def _digest(part: dict) -> str:
  text = json.dumps(part, sort_keys=True, separators=(",", ":"))
  return hashlib.sha256(text.encode()).hexdigest()[:16]


def job_code(task: str, entry: Any, root: Path | None = None) -> dict[str, str]:
  """The code hash of a job and of each of its parts: {"code", "runner", "optimizer", "task"}.

  `code` enters the record key; the parts are recorded beside it, so that a
  record superseded by another key can say which part moved.
  """
  parts = {name: _digest(part) for name, part in job_parts(task, entry, root).items()}
  return {"code": _digest(parts), **parts}
