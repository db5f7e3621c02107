"""Every command a committed report or the README names runs a module that still exists.

A report says the command that made it (`python -m eval.experiments.am_claims`,
`rllc bench ...`); once a module is renamed or removed that line points
nowhere. This test reads README.md, the docs site's pages (docs/*.md) and
every .md, .html and .tex under reports/ (never importing the project) and
checks:

- each `python -m MODULE`, wherever it is written (prose, code, a caption,
  wrapped over two lines), names a module that exists: a project module's file
  is under rllc/, tasks/ or eval/; another top-level module is found by
  `importlib.util.find_spec`;
- each dotted project path (`eval.cli`, `tasks.registry.get_task`) in a command
  line, that is a line or code span that starts with `python` or `rllc`, with
  its backslash continuations, names a project module, or a name bound at the
  top level of one.

A path in prose (`run when that module was rllc.analysis.order`) is history,
not a command, and is not checked.
"""

import ast
import functools
import html
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rllc", "tasks", "eval")
SUFFIXES = (".md", ".html", ".tex")

PYTHON_M = re.compile(r"\bpython[\d.]*\s+-m\s+([A-Za-z_][\w.]*\w)")
COMMAND_START = re.compile(r"^(?:\$\s*)?(?:cd \S+ && )?(?:\S*/)?(?:python[\d.]*|rllc)(?:\s|$)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
PROJECT_PATH = re.compile(rf"(?<![\w./-])(?:{'|'.join(PACKAGES)})(?:\.[A-Za-z_]\w*)+")


def documents() -> list[Path]:
  reports = sorted(p for p in (ROOT / "reports").rglob("*") if p.suffix in SUFFIXES)
  docs = sorted(p for p in (ROOT / "docs").rglob("*.md") if not _built(p))
  return [ROOT / "README.md", *docs, *reports]


def _built(path: Path) -> bool:
  """Whether a docs page is made by the build (docs/_build, docs/_generated), not written."""
  return bool({"_build", "_generated"} & set(path.relative_to(ROOT / "docs").parts))


def plain_text(path: Path) -> str:
  """The document's text as a reader sees it: LaTeX's `\\_` and HTML's entities undone."""
  text = path.read_text(encoding="utf-8")
  if path.suffix == ".tex":
    text = text.replace("\\_", "_")
  if path.suffix == ".html":
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
  return text


def command_lines(text: str) -> list[str]:
  """The command lines of `text`: lines and code spans that start with python or rllc."""
  candidates = [*text.splitlines(), *CODE_SPAN.findall(text)]
  commands, continued = [], False
  for line in candidates:
    stripped = line.strip()
    if continued or COMMAND_START.match(stripped):
      commands.append(stripped)
    continued = (continued or bool(COMMAND_START.match(stripped))) and stripped.endswith("\\")
  return commands


def _module_file(module: str) -> Path | None:
  base = ROOT.joinpath(*module.split("."))
  for path in (base.with_suffix(".py"), base / "__init__.py"):
    if path.is_file():
      return path
  return None


@functools.cache
def _top_level_names(path: Path) -> frozenset[str]:
  names = set()
  for node in ast.parse(path.read_text(encoding="utf-8")).body:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
      names.add(node.name)
    elif isinstance(node, ast.Assign | ast.AnnAssign):
      targets = node.targets if isinstance(node, ast.Assign) else [node.target]
      names.update(t.id for t in targets if isinstance(t, ast.Name))
    elif isinstance(node, ast.Import | ast.ImportFrom):
      names.update((a.asname or a.name).partition(".")[0] for a in node.names)
  return frozenset(names)


def module_exists(module: str) -> bool:
  """Whether `python -m module` finds a module (the project's by its file, never imported)."""
  top = module.partition(".")[0]
  if top in PACKAGES:
    return _module_file(module) is not None
  return importlib.util.find_spec(top) is not None


def project_path_exists(dotted: str) -> bool:
  """Whether a dotted project path is a module, or a name bound at the top level of one."""
  if _module_file(dotted) is not None:
    return True
  parent, _, name = dotted.rpartition(".")
  path = _module_file(parent)
  return path is not None and name in _top_level_names(path)


def stale_names(text: str) -> list[str]:
  """The modules and project paths that the commands in `text` name and that do not exist."""
  stale = [m for m in PYTHON_M.findall(text) if not module_exists(m)]
  for line in command_lines(text):
    stale += [p for p in PROJECT_PATH.findall(line) if not project_path_exists(p)]
  return sorted(set(stale))


@pytest.mark.parametrize("path", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_commands_of_a_committed_document_name_existing_modules(path):
  stale = stale_names(plain_text(path))
  assert not stale, f"{path.relative_to(ROOT)} names modules that no longer exist: {stale}"


@pytest.mark.parametrize(
  ("text", "stale"),
  [
    ("Made by `python -m eval.experiments.am_claims`.", []),
    ("Made by `python -m eval.am_claims`.", ["eval.am_claims"]),
    ("(`python -m\neval.experiments.gone --quick`)", ["eval.experiments.gone"]),
    ("python3.12 -m pytest tests -q", []),
    ("python -m no_such_tool_anywhere", ["no_such_tool_anywhere"]),
    ('python -c "from eval.cli import main"', []),
    ('python -c "from eval.gone import main"', ["eval.gone"]),
    ("rllc bench mnist-mlp --task tasks.registry.get_task", []),
    ("rllc bench mnist-mlp \\\n  --task tasks.registry.gone_name", ["tasks.registry.gone_name"]),
    ("`rllc report --module rllc.analysis.order`", ["rllc.analysis.order"]),
    ("run when that module was `rllc.analysis.order`", []),
  ],
)
def test_a_stale_module_in_a_command_is_found(text, stale):
  assert stale_names(text) == stale


def test_latex_and_html_escapes_are_undone(tmp_path):
  tex, page = tmp_path / "r.tex", tmp_path / "r.html"
  tex.write_text(r"\texttt{python -m eval.experiments.bench\_update}")
  page.write_text("<code>python -m eval.experiments.gone&#95;away</code>")
  assert stale_names(plain_text(tex)) == []
  assert stale_names(plain_text(page)) == ["eval.experiments.gone_away"]


def test_the_docs_pages_are_checked_and_built_ones_are_not():
  checked = documents()
  assert ROOT / "docs" / "bench.md" in checked
  assert not any(_built(p) for p in checked if ROOT / "docs" in p.parents)
