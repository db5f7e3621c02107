"""The training code: the source that determines a record's bits, and its hash.

A record's key includes `code_version()`, so an edit to this code makes every
run new, and an edit elsewhere (a figure, the report, the command line, the
memory analysis) leaves the store valid. The code is:

- `rllc/` but `rllc/analysis/` (no run uses the memory analysis), and
  `tasks/`, whole: their modules reach each other through names in strings
  too (rllc's lazy exports, factories named in the catalog), which no import
  graph sees;
- the training function, `eval.run.bench.train_job`: its own source and that
  of the definitions of its module it uses, followed name by name (not the
  rest of bench.py: its planning and executors make no bits);
- every eval module that function reaches, whole, with their imports in turn
  (eval.run.engine, eval.store.records, ...): found from the source, so a
  module the training path starts to import is covered without a list to
  update.
"""

import ast
import hashlib
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
WHOLE = ("rllc", "tasks")
EXCLUDED = ("rllc/analysis",)
ENTRY = ("eval.run.bench", "train_job")


def _path(root: Path, module: str) -> Path | None:
  """The source file of a project module under `root`, or None (not a module there)."""
  base = root.joinpath(*module.split("."))
  for path in (base.with_suffix(".py"), base / "__init__.py"):
    if path.is_file():
      return path
  return None


def _bindings(tree: ast.Module, module: str, root: Path) -> dict[str, str]:
  """Names bound by imports anywhere in `tree` -> the module each brings in."""
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
  return names


def _eval_modules(tree: ast.Module, module: str, root: Path) -> set[str]:
  return {m for m in _bindings(tree, module, root).values() if m.partition(".")[0] == "eval"}


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


def _used_names(node: ast.stmt) -> set[str]:
  """Names read by a definition's body and decorators (not its annotations: they make no bits)."""
  parts = [*getattr(node, "decorator_list", []), *getattr(node, "body", [node])]
  return {n.id for part in parts for n in ast.walk(part) if isinstance(n, ast.Name)}


def _entry_sources(root: Path) -> tuple[list[tuple[str, str]], set[str]]:
  """The training function's definitions (label, source) and the eval modules they use."""
  module, function = ENTRY
  path = _path(root, module)
  source = path.read_text()
  tree = ast.parse(source)
  definitions, bindings = _definitions(tree), _bindings(tree, module, root)
  lines = source.splitlines(keepends=True)
  segments, modules, todo, seen = [], set(), [function], set()
  while todo:
    name = todo.pop()
    if name in seen:
      continue
    seen.add(name)
    node = definitions[name]
    start = min([d.lineno for d in getattr(node, "decorator_list", [])] + [node.lineno])
    segments.append(
      (f"{path.relative_to(root)}:{name}", "".join(lines[start - 1 : node.end_lineno]))
    )
    for used in _used_names(node):
      if used in definitions:
        todo.append(used)
      elif used in bindings and bindings[used].partition(".")[0] == "eval":
        modules.add(bindings[used])
  return sorted(segments), modules


def training_sources(root: Path = PROJECT) -> list[tuple[str, bytes]]:
  """Every piece of the training code under `root`: (label, source bytes), sorted by label."""
  files = {
    path
    for part in WHOLE
    for path in (root / part).rglob("*.py")
    if not any(path.is_relative_to(root / excluded) for excluded in EXCLUDED)
  }
  segments, todo = _entry_sources(root)
  seen = {ENTRY[0]}
  while todo:
    module = todo.pop()
    if module in seen:
      continue
    seen.add(module)
    path = _path(root, module)
    if path is None:  # a name of a package's __init__, e.g. `from eval import x` of a variable
      continue
    files.add(path)
    todo.update(_eval_modules(ast.parse(path.read_text()), module, root))
  pieces = [(str(p.relative_to(root)), p.read_bytes()) for p in files]
  return sorted(pieces + [(label, text.encode()) for label, text in segments])


def code_version(root: Path = PROJECT) -> str:
  """SHA-256 over the training code (each piece's label and bytes), first 16 hex digits."""
  h = hashlib.sha256()
  for label, text in training_sources(root):
    h.update(label.encode() + b"\0" + text + b"\0")
  return h.hexdigest()[:16]
