"""Every command a committed report or the README names runs a module that still exists.

A report says the command that made it (`python -m eval.experiments.am_claims`,
`rllc bench ...`); once a module is renamed or removed that line points
nowhere. This test reads README.md and every .md, .html and .tex under
reports/ (never importing the project) and checks:

- each `python -m MODULE`, wherever it is written (prose, code, a caption,
  wrapped over two lines), names a module that exists: a project module's file
  is under rllc/, tasks/ or eval/; another top-level module is found by
  `importlib.util.find_spec`;
- each dotted project path (`eval.cli`, `tasks.registry.get_task`) in a command
  line, that is a line or code span that starts with `python` or `rllc`, with
  its backslash continuations, names a project module, or a name bound at the
  top level of one.

- each `bash SCRIPT.sh` names a script that exists (relative to the root).

A path in prose (`run when that module was rllc.analysis.order`) is history,
not a command, and is not checked.

Every committed report says the commit and command that made it: each report
(.md or .txt under reports/, not a README) is covered by a row of the index
in reports/README.md, and each row names an existing path, a commit of the
repository's history and a command.
"""

import ast
import functools
import html
import importlib.util
import re
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rllc", "tasks", "eval")
SUFFIXES = (".md", ".html", ".tex")

PYTHON_M = re.compile(r"\bpython[\d.]*\s+-m\s+([A-Za-z_][\w.]*\w)")
COMMAND_START = re.compile(r"^(?:\$\s*)?(?:cd \S+ && )?(?:\S*/)?(?:python[\d.]*|rllc)(?:\s|$)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
PROJECT_PATH = re.compile(rf"(?<![\w./-])(?:{'|'.join(PACKAGES)})(?:\.[A-Za-z_]\w*)+")
BASH_SCRIPT = re.compile(r"\bbash\s+([\w./-]+\.sh)\b")
INDEX = ROOT / "reports" / "README.md"
COMMIT = re.compile(r"[0-9a-f]{7,40}")
COMMAND = re.compile(r"`(?:python|rllc|bash|make)\b[^`]*`")


def documents() -> list[Path]:
  reports = sorted(p for p in (ROOT / "reports").rglob("*") if p.suffix in SUFFIXES)
  return [ROOT / "README.md", *reports]


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
  stale += [s for s in BASH_SCRIPT.findall(text) if not (ROOT / s).is_file()]
  return sorted(set(stale))


class IndexRow(NamedTuple):
  """One row of the reports index: what it covers, the commit, the command cell."""

  paths: list[str]  # relative to reports/; one ending in "/" covers the folder
  commit: str
  command: str


def index_rows(text: str) -> list[IndexRow]:
  """The rows of the table under `## Index` (paths are its first column's code spans)."""
  section = text.partition("\n## Index\n")[2]
  rows = []
  for line in section.splitlines():
    cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
    if len(cells) != 4 or cells[0] in ("Report", "---"):
      continue
    rows.append(IndexRow(CODE_SPAN.findall(cells[0]), cells[2], cells[3]))
  return rows


def report_files(reports: Path) -> list[Path]:
  """Every report under `reports`: .md and .txt files, READMEs aside."""
  return sorted(
    p for p in reports.rglob("*") if p.suffix in (".md", ".txt") and p.name != "README.md"
  )


def uncovered(reports: Path, rows: list[IndexRow]) -> list[str]:
  """The reports under `reports` that no row's path covers, relative to `reports`."""
  paths = [path for row in rows for path in row.paths]
  missing = []
  for report in report_files(reports):
    name = report.relative_to(reports).as_posix()
    if not any(name == p or (p.endswith("/") and name.startswith(p)) for p in paths):
      missing.append(name)
  return missing


def test_every_committed_report_has_a_row_in_the_index():
  missing = uncovered(ROOT / "reports", index_rows(INDEX.read_text(encoding="utf-8")))
  assert not missing, f"reports/README.md's index has no row for {missing}"


@pytest.mark.parametrize(
  "row", index_rows(INDEX.read_text(encoding="utf-8")), ids=lambda r: ",".join(r.paths)
)
def test_an_index_row_names_an_existing_report_a_commit_and_a_command(row):
  assert row.paths
  for path in row.paths:
    assert (ROOT / "reports" / path).exists(), f"index row for a missing report: {path}"
  assert COMMIT.fullmatch(row.commit), f"{row.paths}: {row.commit!r} is not a commit hash"
  assert COMMAND.search(row.command), f"{row.paths}: no command in {row.command!r}"


def _full_history() -> bool:
  """Whether this checkout has git and its whole history (a shallow clone lacks old commits)."""
  try:
    shallow = subprocess.run(
      ["git", "rev-parse", "--is-shallow-repository"], cwd=ROOT, capture_output=True, text=True
    )
  except FileNotFoundError:
    return False
  return shallow.returncode == 0 and shallow.stdout.strip() == "false"


@pytest.mark.skipif(not _full_history(), reason="needs git and the repository's full history")
def test_the_commits_of_the_index_are_in_the_history():
  commits = sorted({row.commit for row in index_rows(INDEX.read_text(encoding="utf-8"))})
  unknown = [
    c
    for c in commits
    if subprocess.run(["git", "cat-file", "-e", f"{c}^{{commit}}"], cwd=ROOT).returncode != 0
  ]
  assert not unknown, f"reports/README.md names commits not in the history: {unknown}"


def test_a_report_with_no_row_is_found(tmp_path):
  for name in ("a/report.md", "a/b/deep.txt", "b.md", "c.md", "d/README.md", "e/data.csv"):
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_text("x")
  index = (
    "# Reports\n\n## Index\n\n| Report | What | Commit | Command |\n| --- | --- | --- | --- |\n"
    "| `a/`, `b.md` | two | 0123abc | `rllc report runs/a --out reports/a` |\n"
  )
  rows = index_rows(index)
  assert rows == [IndexRow(["a/", "b.md"], "0123abc", "`rllc report runs/a --out reports/a`")]
  assert uncovered(tmp_path, rows) == ["c.md"]


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
    ("`bash reports/table1_parts/combine.sh reports/table1`", []),
    ("`bash reports/gone_parts/combine.sh`", ["reports/gone_parts/combine.sh"]),
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
