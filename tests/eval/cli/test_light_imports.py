"""The light commands run without JAX, TensorFlow and learned_optimization, and `--help`
imports nothing heavy at all.

Each command runs in a fresh Python process whose PYTHONPATH starts with stub
`tensorflow` and `learned_optimization` packages: importing either records the
attempt in a file and raises ImportError, so a command that imports them
(even one that catches the error) is seen.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

STUBBED = ("tensorflow", "learned_optimization")
HEAVY = ("numpy", "jax", "optax", "flax", "tensorflow", "learned_optimization", "scipy")
# What no light command needs: the report reads the store with NumPy, pandas and matplotlib.
NOT_LIGHT = ("jax", "optax", "flax", *STUBBED)
STUB = """import os
with open(os.environ["RLLC_TEST_IMPORT_ATTEMPTS"], "a") as attempts:
  attempts.write(__name__ + "\\n")
raise ImportError(f"{__name__} cannot be imported here (a test stub)")
"""
# Runs the command line in this process, then prints which heavy packages it imported.
RUN = """import json, sys
from eval.cli import commands
try:
  status = commands.main(sys.argv[1:])
except SystemExit as exit:
  status = exit.code
heavy = sorted({m.partition(".")[0] for m in sys.modules} & set(%r))
print("HEAVY " + json.dumps(heavy))
sys.exit(status)
"""


@pytest.fixture
def stubbed(tmp_path):
  """run(*args): `rllc ARGS` -> (completed process, stubs it tried to import, heavy packages
  it imported); run(*args, code=CODE) runs `python -c CODE` instead."""
  stubs = tmp_path / "stubs"
  for name in STUBBED:
    (stubs / name).mkdir(parents=True)
    (stubs / name / "__init__.py").write_text(STUB)
  attempts = tmp_path / "attempts.txt"
  attempts.touch()
  project = Path(__file__).resolve().parents[3]
  env = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([str(stubs), str(project)]),
    "RLLC_TEST_IMPORT_ATTEMPTS": str(attempts),
  }

  def run(*args: str, code: str = RUN % (HEAVY,)):
    done = subprocess.run(
      [sys.executable, "-c", code, *args],
      capture_output=True,
      text=True,
      env=env,
      cwd=tmp_path,
    )
    heavy_lines = [line for line in done.stdout.splitlines() if line.startswith("HEAVY ")]
    heavy = json.loads(heavy_lines[-1].removeprefix("HEAVY ")) if heavy_lines else None
    return done, attempts.read_text().split(), heavy

  return run


def test_the_stubs_stop_and_record_an_import_of_either_package(stubbed):
  """The fixture itself, so that the tests below mean something."""
  done, attempts, _ = stubbed(code="from tasks import registry; registry.get_task('digits-mlp')")
  assert done.returncode != 0 and "a test stub" in done.stderr
  assert attempts == ["learned_optimization"]
  done, attempts, _ = stubbed(
    code="import contextlib\nwith contextlib.suppress(ImportError): import tensorflow"
  )
  assert done.returncode == 0 and attempts == ["learned_optimization", "tensorflow"]


def test_help_imports_no_numpy_jax_tensorflow_or_learned_optimization(stubbed):
  done, attempts, heavy = stubbed("--help")
  assert done.returncode == 0, done.stderr
  assert "usage: rllc" in done.stdout
  assert attempts == [] and heavy == []


def test_report_help_imports_nothing_heavy(stubbed):
  done, attempts, heavy = stubbed("report", "--help")
  assert done.returncode == 0, done.stderr
  assert "from the store alone" in done.stdout
  assert attempts == [] and heavy == []


def test_optimizers_work_without_jax_tensorflow_or_learned_optimization(stubbed):
  done, attempts, heavy = stubbed("optimizers")
  assert done.returncode == 0, done.stderr
  assert "adam" in done.stdout
  assert attempts == [] and not set(heavy) & set(NOT_LIGHT)


def test_report_of_a_store_works_without_jax_tensorflow_or_learned_optimization(
  stubbed, tmp_path, fake_record, fake_store
):
  records = [
    fake_record(task, opt, seed, lr=lr, test_loss=loss + seed / 100, test_accuracy=0.9, units=1)
    for task in ("digits-mlp", "mnist-mlp")
    for opt, loss in (("adam", 0.3), ("sgd", 0.4), ("M(0.9)", 0.2), ("M(0.9)+M2(0.6)", 0.25))
    for lr in (0.1, 0.01)
    for seed in range(2)
  ]
  fake_store(tmp_path / "store", records, {("digits-mlp", "adam"): 5.0})
  done, attempts, heavy = stubbed("report", str(tmp_path / "store"), "--out", str(tmp_path / "r"))
  assert done.returncode == 0, done.stderr
  assert attempts == [] and not set(heavy) & set(NOT_LIGHT)
  assert {"report.md", "report.tex", "report.html"} <= {p.name for p in (tmp_path / "r").iterdir()}
  assert "M(0.9)" in (tmp_path / "r" / "report.md").read_text()
