"""The cross-check: learned_optimization's own training loop against the engine."""

import csv

import numpy as np
import pytest

from eval.experiments import lo_crosscheck
from tasks import data as data_lib

TINY_ITERATORS = """
import jax.numpy as jnp, numpy as np
from learned_optimization.tasks import base
from learned_optimization.tasks.datasets import base as datasets_base


def _batches(seed):
  rng = np.random.default_rng(seed)
  while True:
    yield rng.normal(size=(8, 4)).astype(np.float32)


class Noisy(base.Task):
  datasets = datasets_base.Datasets(_batches(0), _batches(1), _batches(2), _batches(3))

  def init(self, key):
    return jnp.ones(4)

  def loss(self, params, key, data):
    return jnp.mean((data - params) ** 2)
"""


@pytest.mark.parametrize(
  "optimizer,hparams",
  [
    ("M(0.9)+M(0)", {"learning_rate": 0.1, "law_learning_rate": 0.01}),
    ("am-sgd", {"learning_rate": 0.1}),
  ],
)
def test_both_loops_agree_to_float32_rounding_on_a_deterministic_task(optimizer, hparams):
  c = lo_crosscheck.compare("lo:QuadraticTask", optimizer, hparams, steps=25)
  assert c.same_batches and c.lo.shape == c.engine.shape == (1, 25)
  assert c.lo[0, -1] < c.lo[0, 0] / 10  # it trained
  np.testing.assert_allclose(c.lo, c.engine, rtol=1e-6)


def test_an_image_task_sees_the_engines_batches_and_start_in_learned_optimizations_loop(
  monkeypatch,
):
  rng = np.random.default_rng(0)
  splits = [
    (rng.normal(size=(k, 28, 28, 1)).astype(np.float32), rng.integers(0, 10, k))
    for k in (512, 64, 64)
  ]
  fake = data_lib.ImageData(
    "mnist", *splits, num_classes=10, mean=(0.0,), std=(1.0,), source="synthetic"
  )
  monkeypatch.setattr(data_lib, "load", lambda name, data_dir=None: fake)
  c = lo_crosscheck.compare(
    "lo:ImageMLP_Mnist_128x128x128_Relu", "sgd", {"learning_rate": 0.1}, steps=6
  )
  assert c.same_batches
  np.testing.assert_allclose(c.lo, c.engine, rtol=1e-5)


def test_a_task_reading_its_own_iterators_is_compared_over_seeds(tmp_path, monkeypatch):
  (tmp_path / "lo_check_user.py").write_text(TINY_ITERATORS)
  monkeypatch.syspath_prepend(str(tmp_path))
  c = lo_crosscheck.compare(
    "lo_check_user:Noisy", "sgd", {"learning_rate": 0.1}, steps=30, seeds=(0, 1, 2)
  )
  assert not c.same_batches  # each loop reads the iterators on its own
  lo, ours = c.finals()
  assert lo.shape == ours.shape == (3,)
  text = "\n".join(lo_crosscheck.differ_section(c))
  assert "batch orders differ" in text and "the seed spread" in text


def test_main_writes_the_report_and_every_step_of_the_curves(tmp_path):
  out = tmp_path / "check.md"
  argv = ["--task", "lo:QuadraticTask", "--optimizer", "sgd", "--hp", "learning_rate=0.1"]
  assert lo_crosscheck.main([*argv, "--steps", "5", "--out", str(out)]) == 0
  report = out.read_text()
  assert "lo:QuadraticTask, SGD_lr0.1, seed 0: same batches" in report
  assert "none, the curves are the same bit for bit" in report
  rows = list(csv.DictReader((tmp_path / "check_curves.csv").open()))
  assert [int(r["step"]) for r in rows] == list(range(5))
  assert all(float(r["lo"]) == float(r["engine"]) for r in rows)
