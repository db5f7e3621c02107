"""The code hash (eval.store.code) covers the training path and nothing else.

Each test edits a copy of the project's source in a temporary directory and
checks whether the hash moved: it must for code that makes a record's bits
(the optimizers, the tasks, the training function, the engine and the record
module, and any module they start to import), and must not for the rest.
"""

import shutil
from pathlib import Path

import pytest

from eval.store import code

PACKAGES = ("rllc", "tasks", "eval")


@pytest.fixture
def tree(tmp_path) -> Path:
  for package in PACKAGES:
    shutil.copytree(
      code.PROJECT / package,
      tmp_path / package,
      ignore=shutil.ignore_patterns("*.pyc", "__pycache__"),
    )
  return tmp_path


def append(path: Path, text: str) -> None:
  path.write_text(path.read_text() + text)


@pytest.mark.parametrize(
  "path",
  [
    "rllc/memory.py",
    "rllc/__init__.py",
    "tasks/data.py",
    "tasks/image_tasks.py",
    "eval/run/engine.py",
    "eval/store/records.py",
  ],
)
def test_an_edit_on_the_training_path_changes_the_hash(tree, path):
  before = code.code_version(tree)
  append(tree / path, "\n# an edit\n")
  assert code.code_version(tree) != before


@pytest.mark.parametrize(
  "path",
  [
    "rllc/analysis/linear.py",
    "eval/report/figures.py",
    "eval/report/selection.py",
    "eval/cli/commands.py",
    "eval/experiments/memory_figure1.py",
    "eval/run/dryrun.py",
    "eval/store/tidy.py",
  ],
)
def test_an_edit_off_the_training_path_keeps_the_hash(tree, path):
  before = code.code_version(tree)
  append(tree / path, "\n# an edit\n")
  assert code.code_version(tree) == before


def test_the_training_function_counts_but_the_rest_of_its_module_does_not(tree):
  bench = tree / "eval/run/bench.py"
  before = code.code_version(tree)
  source = bench.read_text()
  assert "def run(" in source and "def train_job(" in source
  bench.write_text(source.replace("def run(", "def run(  # the executors: no bits\n  ", 1))
  assert code.code_version(tree) == before
  bench.write_text(source.replace("def train_job(", "def train_job(  # an edit\n  ", 1))
  assert code.code_version(tree) != before


def test_a_helper_the_training_function_calls_counts(tree):
  bench = tree / "eval/run/bench.py"
  source = bench.read_text()
  assert "def _memory(" in source
  before = code.code_version(tree)
  bench.write_text(source.replace("def _memory(", "def _memory(  # an edit\n  ", 1))
  assert code.code_version(tree) != before


def test_a_module_the_training_path_starts_to_import_is_covered(tree):
  (tree / "eval/run/kernels.py").write_text("SCALE = 1.0\n")
  engine = tree / "eval/run/engine.py"
  append(engine, "\nfrom eval.run import kernels  # noqa\n")
  before = code.code_version(tree)
  append(tree / "eval/run/kernels.py", "SCALE = 2.0\n")
  assert code.code_version(tree) != before


def test_a_new_module_of_the_optimizers_is_covered_without_being_imported(tree):
  before = code.code_version(tree)
  (tree / "rllc/newopt.py").write_text('"""A new optimizer, named in the catalog by a string."""\n')
  assert code.code_version(tree) != before


def test_the_repository_s_training_code_is_the_documented_set():
  labels = {label for label, _ in code.training_sources()}
  files = {label for label in labels if ":" not in label}
  for package in ("rllc", "tasks"):
    for path in (code.PROJECT / package).rglob("*.py"):
      relative = str(path.relative_to(code.PROJECT))
      assert (relative in files) != relative.startswith("rllc/analysis/"), relative
  assert {"eval/run/engine.py", "eval/store/records.py", "eval/run/bench.py:train_job"} <= labels
  assert "eval/run/bench.py" not in files  # only the training function's definitions
  off_path = ("eval/report/", "eval/cli/", "eval/experiments/", "eval/run/dryrun.py")
  assert not [label for label in labels if label.startswith(off_path)]
