"""learned_optimization's tasks as engine tasks: built by name, batches, evaluation, user tasks.

The image tasks run on synthetic data of the real shapes (tasks.data.load replaced), so these
tests need no data set.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rllc.compat import lo_compat
from tasks import data as data_lib
from tasks import lo_names, lo_tasks
from tasks.image_tasks import DeviceSplits
from tasks.interface import EngineTask

tasks_base = lo_compat.load("learned_optimization.tasks.base")
datasets_base = lo_compat.load("learned_optimization.tasks.datasets.base")
SHAPES = {"mnist": (28, 28, 1), "fashion_mnist": (28, 28, 1), "cifar10": (32, 32, 3)}


def synthetic(name: str, n=(160, 48, 40)) -> data_lib.ImageData:
  """Random images of a data set's shape, labels 0..9: train, valid, test of n images."""
  rng = np.random.default_rng(0)
  splits = [
    (rng.normal(size=(k,) + SHAPES[name]).astype(np.float32), rng.integers(0, 10, k)) for k in n
  ]
  return data_lib.ImageData(
    name, *splits, num_classes=10, mean=(0.0,), std=(1.0,), source="synthetic"
  )


@pytest.fixture
def fake_data(monkeypatch):
  """tasks.data.load answers every data set with synthetic images."""
  monkeypatch.setattr(data_lib, "load", lambda name, data_dir=None: synthetic(name))


@pytest.mark.parametrize("name", [t.name for t in lo_names.runnable() if t.dataset is None])
def test_every_synthetic_task_builds_trains_and_evaluates(name):
  task = lo_tasks.get_task(name)
  assert isinstance(task, EngineTask) and isinstance(task.task, tasks_base.Task)
  params, state = task.init_with_state(jax.random.key(0))
  batch = task.splits.batch("train", jax.random.key(1), 0)
  loss, grads = jax.value_and_grad(
    lambda p: task.loss_with_state(p, state, jax.random.key(2), batch)[0]
  )(params)
  valid_loss, accuracy = jax.jit(task.evaluate, static_argnums=2)(params, state, "valid")
  assert np.isfinite(loss) and all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
  assert np.isfinite(valid_loss)
  # No accuracy of its own (a quadratic, say), unless it is a classifier: NaN, and it says so.
  assert np.isnan(accuracy) if not task.has_accuracy else 0.0 <= float(accuracy) <= 1.0


@pytest.mark.parametrize(
  "name",
  [
    "lo:ImageMLP_Mnist_128x128x128_Relu",
    "lo:Conv_Cifar10_32x64x64",
    "lo:ImageMLP_Cifar10_128x128x128_BatchNorm_Relu",
    "lo:ImageMLPAE_Mnist_128x32x128_bs128",
  ],
)
def test_fixed_tasks_are_their_own_factories_on_the_suites_data(fake_data, name):
  task = lo_tasks.get_task(name)
  assert isinstance(task.splits, DeviceSplits)
  assert task.splits.arrays["valid"][0].shape == (48,) + SHAPES[lo_names.lookup(name).dataset]
  params, state = task.init_with_state(jax.random.key(0))
  batch = task.splits.batch("train", jax.random.key(1), 0)
  loss, _ = jax.jit(task.loss_with_state)(params, state, jax.random.key(2), batch)
  valid_loss, accuracy = jax.jit(task.evaluate, static_argnums=2)(params, state, "valid")
  assert np.isfinite(loss) and np.isfinite(valid_loss)
  if "AE" in name:  # an autoencoder: no classes, so no accuracy
    assert not task.has_accuracy and np.isnan(accuracy)
  else:
    assert task.has_accuracy and 0.0 <= float(accuracy) <= 1.0


def test_a_quadratic_has_no_accuracy_and_a_classifier_has_one(fake_data):
  assert lo_tasks.get_task("lo:QuadraticTask").has_accuracy is False
  assert lo_tasks.get_task("lo:ImageMLP_Mnist_128x128x128_Relu").has_accuracy is True


def test_evaluation_is_the_whole_split_and_accuracy_comes_from_the_logits(fake_data):
  task = lo_tasks.get_task("lo:ImageMLP_Mnist_128x128x128_Relu")
  params = task.init(jax.random.key(0))
  images, labels = task.splits.arrays["test"]  # 40 images: no full batch of 128, the rest
  mlp = task.task
  logits = mlp._mod.apply(params, jax.random.key(0), images)
  expected = mlp.loss(params, jax.random.key(0), {"image": images, "label": labels})
  loss, accuracy = task.evaluate(params, None, "test")
  np.testing.assert_allclose(loss, expected, rtol=1e-6)
  assert float(accuracy) == pytest.approx(float(jnp.mean(jnp.argmax(logits, -1) == labels)))


def test_whole_split_weights_full_batches_and_the_rest_by_their_examples(fake_data):
  small = DeviceSplits(synthetic("mnist"), batch_size=32)  # valid: 1 batch of 32, 16 left
  task = lo_tasks.get_task("lo:ImageMLP_Mnist_128x128x128_Relu").with_splits(small)
  params = task.init(jax.random.key(0))
  images, labels = small.arrays["valid"]
  expected = task.task.loss(params, jax.random.key(0), {"image": images, "label": labels})
  np.testing.assert_allclose(task.evaluate(params, None, "valid")[0], expected, rtol=1e-6)


def test_the_tasks_own_train_iterator_yields_the_engines_batches_whatever_evaluation_reads(
  fake_data,
):
  key = jax.random.key(5)
  task = lo_tasks.get_task("lo:ImageMLP_Mnist_128x128x128_Relu", train_key=key)
  datasets = task.task.datasets
  for step in range(3):
    next(datasets.split("train"))  # learned_optimization's evaluation of the train split
    batch = next(datasets.train)
    np.testing.assert_array_equal(batch["image"], task.splits.batch("train", key, step)["image"])


class _Counting(tasks_base.Task):
  """A task whose own iterators count: batch i of train is [i, i]."""

  def __init__(self):
    super().__init__()

    def count(start):
      i = start
      while True:
        yield np.full(2, i, np.float32)
        i += 1

    self.datasets = datasets_base.Datasets(count(0), count(100), count(200), count(300))

  def init(self, key):
    return jnp.zeros(2)

  def loss(self, params, key, data):
    return jnp.sum((params - data) ** 2)


def test_own_iterators_are_read_once_and_each_pass_visits_every_batch(monkeypatch):
  monkeypatch.setattr(lo_tasks, "TRAIN_BATCHES", 5)
  splits = lo_tasks.IteratorSplits.read(_Counting().datasets)
  assert splits.arrays["train"].shape == (5, 2)
  assert splits.arrays["valid"][0, 0] == 200  # outer_valid, as single_task_training_curves
  key = jax.random.key(0)
  for start in (0, 5):
    seen = sorted(float(splits.batch("train", key, start + i)[0]) for i in range(5))
    assert seen == [0.0, 1.0, 2.0, 3.0, 4.0]
  first_pass = [float(splits.batch("train", key, i)[0]) for i in range(5)]
  second_pass = [float(splits.batch("train", key, 5 + i)[0]) for i in range(5)]
  assert first_pass != second_pass  # a new order each pass


def test_a_user_task_is_a_subclass_an_instance_or_a_function(tmp_path, monkeypatch):
  (tmp_path / "lo_user_tasks.py").write_text(
    "from learned_optimization.tasks import quadratics\n"
    "Sub = quadratics.QuadraticTask\n"
    "instance = quadratics.QuadraticTask(dim=3)\n"
    "def made():\n  return quadratics.SumQuadraticTask()\n"
    "not_a_task = 3\n"
    "def needs(dim):\n  return quadratics.QuadraticTask(dim)\n"
  )
  monkeypatch.syspath_prepend(str(tmp_path))
  for name in ("Sub", "instance", "made"):
    task = lo_tasks.get_task(f"lo_user_tasks:{name}")
    assert task.name == f"lo_user_tasks:{name}" and isinstance(task.splits, lo_tasks.NoData)
  assert lo_tasks.get_task("lo_user_tasks:instance").init(jax.random.key(0)).shape == (3,)
  with pytest.raises(lo_names.UnknownTaskError, match="is a int, not a learned_optimization Task"):
    lo_tasks.get_task("lo_user_tasks:not_a_task")
  with pytest.raises(lo_names.UnknownTaskError, match=r"needs\(\) fails .*of no arguments"):
    lo_tasks.get_task("lo_user_tasks:needs")
  with pytest.raises(lo_names.UnknownTaskError, match="has no 'Nope'"):
    lo_tasks.get_task("lo_user_tasks:Nope")
  with pytest.raises(lo_names.UnknownTaskError, match="cannot import module 'no_such_module'"):
    lo_tasks.get_task("no_such_module:Task")
