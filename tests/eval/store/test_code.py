"""The code part of a record key (eval.store.code) is the code a run executes, normalized.

Each test edits a copy of the project's source in a temporary directory and
checks whether a job's code hash, or a planned job's record keys, moved: they
must for an edit to what runs (an update's arithmetic, the model, the engine,
the training function), and must not for a docstring, a comment, a message, a
new catalog entry, a protocol's defaults, or code the job does not run.
"""

import shutil
from pathlib import Path

import pytest

from eval.run import bench
from eval.run import protocol as protocol_lib
from eval.store import code
from rllc import catalog

PACKAGES = ("rllc", "tasks", "eval")
ENV = {"versions": {"jax": "x"}, "backend": "cpu", "devices": 1}  # a fixed environment
PROFILE = """
base = "quick"
name = "keyed"
tasks = ["digits-mlp"]
seeds = 1
steps = 20

[optimizers.sgd]
learning_rate = [0.1]

[optimizers."M(0.9)+M(0)"]
learning_rate = [0.1]
law_learning_rate = [0.01]
"""


@pytest.fixture
def tree(tmp_path) -> Path:
  for package in PACKAGES:
    shutil.copytree(
      code.PROJECT / package,
      tmp_path / package,
      ignore=shutil.ignore_patterns("*.pyc", "__pycache__"),
    )
  return tmp_path


def edit(path: Path, old: str, new: str) -> None:
  source = path.read_text()
  assert old in source, f"{path} no longer holds {old!r}: update this test's edit"
  path.write_text(source.replace(old, new, 1))


def append(path: Path, text: str) -> None:
  path.write_text(path.read_text() + text)


def job(task: str, optimizer: str, root: Path) -> dict[str, str]:
  return code.job_code(task, catalog.lookup(optimizer), root)


@pytest.fixture
def planned_keys(tree, tmp_path, monkeypatch):
  """The record keys bench.plan gives a small protocol, the code read from `tree`."""
  monkeypatch.setattr(code, "PROJECT", tree)
  profile = tmp_path / "keyed.toml"
  profile.write_text(PROFILE)

  def keys() -> dict[str, tuple[str, ...]]:
    jobs = bench.plan(protocol_lib.resolve(str(profile)), ENV)
    return {j.optimizer: j.keys for j in jobs}

  return keys


# The four cases the issue names, on a planned job's record keys.


def test_a_docstring_edit_in_memory_keeps_the_planned_keys(tree, planned_keys):
  before = planned_keys()
  edit(
    tree / "rllc/memory.py",
    '"""Linear memory with a fixed or a self-correcting (RLLC) learning law.',
    '"""Linear memory, fixed or self-correcting (RLLC): an edited docstring.',
  )
  append(tree / "rllc/memory.py", "\n# a comment\n")
  assert planned_keys() == before


def test_a_new_catalog_entry_keeps_the_planned_keys(tree, planned_keys):
  before = planned_keys()
  sgd = catalog.DEFAULT["sgd"]
  extra = type(sgd)(**{**vars(sgd), "name": "sgd-twin"})
  append(tree / "rllc/catalog.py", "\n\nNEW_ENTRY = None  # a new entry's text\n")
  with catalog.using(catalog.DEFAULT.extended(extra)):
    assert planned_keys() == before


def test_a_change_of_protocol_defaults_keeps_the_planned_keys(tree, planned_keys):
  before = planned_keys()
  edit(tree / "eval/run/protocol.py", '"steps": 1000 if quick', '"steps": 2000 if quick')
  edit(tree / "eval/run/protocol.py", '"seeds": (0, 1) if quick', '"seeds": (0, 1, 2) if quick')
  assert planned_keys() == before


def test_a_change_to_an_update_s_arithmetic_changes_the_planned_keys(tree, planned_keys):
  before = planned_keys()
  edit(tree / "rllc/memory.py", "gg * jnp.outer(a, a)", "2 * gg * jnp.outer(a, a)")
  after = planned_keys()
  assert set(after["M(0.9)+M(0)"]).isdisjoint(before["M(0.9)+M(0)"])
  assert after["sgd"] == before["sgd"]  # optax's sgd runs none of rllc/memory.py


# What the normalization ignores, and what it does not.


def test_a_message_or_reformat_keeps_the_hash(tree):
  before = job("digits-mlp", "M(0.9)", tree)
  path = tree / "rllc/memory.py"
  source = path.read_text()
  assert "raise ValueError(" in source
  path.write_text(source.replace("raise ValueError(", "raise ValueError(  # reworded\n'' + ", 1))
  assert job("digits-mlp", "M(0.9)", tree) == before


def test_a_changed_exception_type_changes_the_hash(tree):
  before = job("digits-mlp", "M(0.9)", tree)
  edit(tree / "rllc/memory.py", "raise ValueError(", "raise TypeError(")
  assert job("digits-mlp", "M(0.9)", tree)["optimizer"] != before["optimizer"]


# Each part covers its own code.


@pytest.mark.parametrize(
  "path, old, new, part",
  [
    ("tasks/models.py", "nn.relu", "nn.gelu", "task"),
    ("tasks/data.py", "\ndef ", "\ndef _unused_edit():\n  return 1\n\n\ndef ", "task"),
    ("eval/run/engine.py", "\ndef ", "\ndef _unused_edit():\n  return 1\n\n\ndef ", "runner"),
    ("rllc/tree.py", "\ndef ", "\ndef _unused_edit():\n  return 1\n\n\ndef ", "optimizer"),
  ],
)
def test_an_edit_to_what_a_job_runs_changes_its_part(tree, path, old, new, part):
  before = job("digits-mlp", "M(0.9)", tree)
  edit(tree / path, old, new)
  after = job("digits-mlp", "M(0.9)", tree)
  assert after[part] != before[part] and after["code"] != before["code"]
  assert {p for p in before if after[p] != before[p]} == {part, "code"}


@pytest.mark.parametrize(
  "path",
  [
    "rllc/analysis/corrections.py",  # the memory analysis, but the effective step's
    "rllc/catalog.py",
    "rllc/lion.py",  # another optimizer's module
    "tasks/registry.py",
    "eval/run/protocol.py",
    "eval/run/suggest.py",
    "eval/store/tidy.py",
    "eval/report/figures.py",
    "eval/cli/commands.py",
  ],
)
def test_an_edit_to_what_a_job_does_not_run_keeps_its_hash(tree, path):
  before = job("digits-mlp", "M(0.9)", tree)
  append(tree / path, "\n\ndef _unused_edit():\n  return 1\n")
  assert job("digits-mlp", "M(0.9)", tree) == before


def test_the_factory_named_by_the_catalog_is_covered(tree):
  lion, adam = job("digits-mlp", "lion-k", tree), job("digits-mlp", "adam", tree)
  append(tree / "rllc/lion.py", "\n\ndef _unused_edit():\n  return 1\n")
  assert job("digits-mlp", "lion-k", tree)["optimizer"] != lion["optimizer"]
  assert job("digits-mlp", "adam", tree) == adam


def test_an_entry_s_pinned_arguments_enter_as_data(tree):
  sgd = catalog.DEFAULT["sgd"]
  pinned = type(sgd)(**{**vars(sgd), "fixed": {"nesterov": True}})
  assert code.job_code("digits-mlp", pinned, tree) != code.job_code("digits-mlp", sgd, tree)


def test_the_training_function_counts_but_the_rest_of_its_module_does_not(tree):
  bench_py = tree / "eval/run/bench.py"
  before = job("digits-mlp", "sgd", tree)
  edit(bench_py, "\ndef run(", "\ndef _unused_edit():\n  return 1\n\n\ndef run(")
  assert job("digits-mlp", "sgd", tree) == before
  edit(bench_py, "def _memory(", "def _memory(*_unused, ")  # a helper train_job calls
  assert job("digits-mlp", "sgd", tree)["runner"] != before["runner"]


def test_a_module_the_engine_starts_to_import_is_covered(tree):
  (tree / "eval/run/kernels.py").write_text("SCALE = 1.0\n")
  append(tree / "eval/run/engine.py", "\nfrom eval.run import kernels  # noqa\n")
  before = job("digits-mlp", "sgd", tree)
  append(tree / "eval/run/kernels.py", "SCALE = 2.0\n")
  assert job("digits-mlp", "sgd", tree)["runner"] != before["runner"]


def test_the_repository_s_parts_are_the_documented_sets():
  parts = code.job_parts("mnist-mlp", catalog.lookup("M(0.9)+M(0)"))
  runner, optimizer, task = (set(parts[p]["sources"]) for p in ("runner", "optimizer", "task"))
  assert {"eval/run/engine.py", "eval/run/bench.py:train_job"} <= runner
  assert "eval/run/bench.py:run" not in runner
  assert {"rllc/memory.py", "rllc/propagator.py"} <= optimizer
  assert {"tasks/models.py", "tasks/image_tasks.py", "tasks/data.py"} <= task
  tables = ("rllc/catalog.py", "tasks/registry.py", "eval/run/protocol.py")
  assert not [s for s in runner | optimizer | task if s.startswith(tables)]
  assert "rllc/analysis/step.py" in runner  # the engine records each run's effective step
  assert "rllc/analysis/corrections.py" not in runner | optimizer | task
  assert parts["optimizer"]["data"] == {
    "factory": "rllc.memory:rllc",
    "fixed": {},
    "convention": None,
  }
  assert parts["task"]["data"]["spec"] == {
    "dataset": "mnist",
    "architecture": "mlp",
    "augment": False,
  }
