"""learned_optimization's tasks through `rllc bench` and `rllc report`: a quadratic, an image
task on MNIST (skipped without the shared data sets), a user's module:Name Task, bad names."""

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eval.cli import commands as cli

SHARED = Path(__file__).resolve().parents[4] / "shared" / "datasets"
PROFILE = """
base = "quick"
name = "lo-tiny"
tasks = [{tasks}]
seeds = 2
steps = 20
eval_every = 20
log_every = 5

[optimizers.sgd]
learning_rate = [0.1]
"""
RLLC = """
[optimizers."M(0.9)+M(0)"]
learning_rate = [0.05]
law_learning_rate = [0.01]
"""
# A user's own Task, with its own iterators: a least-squares fit of 4 weights to noisy batches.
USER_TASK = """
import jax.numpy as jnp, numpy as np
from learned_optimization.tasks import base
from learned_optimization.tasks.datasets import base as datasets_base


def _batches(seed):
  rng = np.random.default_rng(seed)
  while True:
    x = rng.normal(size=(8, 4)).astype(np.float32)
    yield {"x": x, "y": x @ np.arange(4, dtype=np.float32)}


class TinyRegression(base.Task):
  datasets = datasets_base.Datasets(_batches(0), _batches(1), _batches(2), _batches(3))

  def init(self, key):
    return jnp.zeros(4)

  def loss(self, params, key, data):
    return jnp.mean((data["x"] @ params - data["y"]) ** 2)
"""


@pytest.fixture(autouse=True)
def empty_cache(tmp_path, monkeypatch):
  monkeypatch.setenv("RLLC_CACHE_DIR", str(tmp_path / "cache"))
  monkeypatch.delenv("RLLC_DATA_DIR", raising=False)
  monkeypatch.delenv("TFDS_DATA_DIR", raising=False)


def _run(argv: list[str]) -> tuple[int, str, str]:
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    code = cli.main(argv)
  return code, out.getvalue(), err.getvalue()


def _bench_and_report(tmp_path: Path, task: str, more: str = "") -> tuple[list[dict], str]:
  """Benches PROFILE (and `more` optimizer tables) on one task, reports it: records, report.md."""
  profile = tmp_path / "lo.toml"
  profile.write_text(PROFILE.format(tasks=json.dumps(task)) + more)
  store = tmp_path / "store"
  code, out, err = _run(["bench", "--profile", str(profile), "--out", str(store), "--quiet"])
  assert code == 0, err
  assert f"trained {2 + 2 * more.count('[optimizers')} runs" in out
  code, _, err = _run(["report", str(store), "--format", "md"])
  assert code == 0, err
  records = [json.loads(line) for line in (store / "results.jsonl").read_text().splitlines()]
  return records, (store / "report" / "report.md").read_text()


def test_a_learned_optimization_quadratic_runs_through_bench_and_report(tmp_path):
  records, report = _bench_and_report(tmp_path, "lo:QuadraticTask", RLLC)
  assert {r["task"] for r in records} == {"lo:QuadraticTask"}
  assert all(r["status"] == "ok" for r in records)
  for r in records:  # x -> 0 on sum(x^2): the loss falls
    assert r["final"]["train_loss"] < r["curves"]["train_loss"][0] / 10
  assert "lo:QuadraticTask" in report and "M(0.9)+M(0)" in report
  # A quadratic has no batches: its records say so, not the protocol's 128.
  assert {r["protocol"]["batch_size"] for r in records} == {None}
  assert "steps of the task's own batches" in report
  # It has no accuracy: None in its records, n/a in the report, never 0.00.
  assert all(r["final"]["test_accuracy"] is None for r in records)
  assert "n/a: no accuracy to report on lo:QuadraticTask; read the loss." in report


def test_selecting_by_accuracy_on_a_task_without_one_fails_in_one_line_before_training(tmp_path):
  profile = tmp_path / "lo.toml"
  text = PROFILE.format(tasks=json.dumps("lo:QuadraticTask"))
  profile.write_text(text.replace('base = "quick"', 'base = "quick"\nselect = "valid_accuracy"'))
  store = tmp_path / "store"
  code, _, err = _run(["bench", "--profile", str(profile), "--out", str(store), "--quiet"])
  assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
  assert "task lo:QuadraticTask reports no accuracy, so protocol lo-tiny" in err
  assert 'select = "valid_loss"' in err
  assert not (store / "records").is_dir() or not any((store / "records").iterdir())


def test_a_learned_optimization_image_task_runs_on_mnist_through_bench_and_report(tmp_path):
  if not (SHARED / "mnist").is_dir():
    pytest.skip(f"{SHARED} not found: the shared data sets are only on development machines")
  assert cli.main(["data", "import", "mnist", "--from", str(SHARED)]) == 0
  records, report = _bench_and_report(tmp_path, "lo:ImageMLP_Mnist_128x128x128_Relu")
  assert len(records) == 2 and all(r["status"] == "ok" for r in records)
  # Accuracy from the logits of learned_optimization's own cross-entropy: above chance in 20 steps.
  assert all(r["final"]["test_accuracy"] > 0.3 for r in records)
  assert "lo:ImageMLP\\_Mnist\\_128x128x128\\_Relu" in report


def test_a_users_module_name_task_runs(tmp_path, monkeypatch):
  (tmp_path / "lo_bench_user.py").write_text(USER_TASK)
  monkeypatch.syspath_prepend(str(tmp_path))
  records, report = _bench_and_report(tmp_path, "lo_bench_user:TinyRegression")
  assert {r["task"] for r in records} == {"lo_bench_user:TinyRegression"}
  for r in records:
    assert r["status"] == "ok" and r["final"]["train_loss"] < r["curves"]["train_loss"][0] / 2
  assert "lo\\_bench\\_user:TinyRegression" in report


def test_an_unknown_learned_optimization_task_fails_in_one_line_with_the_valid_ones(tmp_path):
  code, out, err = _run(["bench", "lo:ImageMLP_Mnist", "--steps", "5", "--out", str(tmp_path)])
  assert code == 2 and out == ""
  assert err.count("\n") == 1 and "Traceback" not in err
  assert "unknown learned_optimization task 'lo:ImageMLP_Mnist'; runnable here:" in err
  assert "lo:ImageMLP_Mnist_128x128x128_Relu" in err and "lo:QuadraticTask" in err


def test_a_task_on_data_not_here_fails_at_once_naming_the_data(tmp_path):
  code, out, err = _run(
    ["bench", "lo:ImageMLP_Imagenet16_Relu256x256x256", "--out", str(tmp_path / "s")]
  )
  assert code == 1 and out == "" and not (tmp_path / "s").exists()
  assert "needs imagenet16_datasets (tensorflow-datasets)" in err


def test_a_task_whose_data_is_missing_says_how_to_provide_it(tmp_path):
  code, _, err = _run(["bench", "lo:ImageMLP_Mnist_128x128x128_Relu", "--out", str(tmp_path)])
  assert code == 1
  assert "needs mnist, which is missing: rllc data import mnist --from DIR" in err


def test_rllc_tasks_lists_them_without_jax_tensorflow_or_learned_optimization(tmp_path):
  code = (
    "import sys; from eval.cli import commands; status = commands.main(['tasks']);"
    " print(sorted({m.partition('.')[0] for m in sys.modules}"
    " & {'jax', 'tensorflow', 'learned_optimization'})); sys.exit(status)"
  )
  project = Path(__file__).resolve().parents[3]
  env = {**os.environ, "PYTHONPATH": str(project)}
  done = subprocess.run(
    [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env
  )
  assert done.returncode == 0, done.stderr
  assert "lo:ImageMLP_Mnist_128x128x128_Relu" in done.stdout and "lo:QuadraticTask" in done.stdout
  assert done.stdout.splitlines()[-1] == "[]"
