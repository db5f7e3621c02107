"""Image tasks and the task registry, on synthetic data of the real shapes and on digits."""

import jax
import numpy as np
import optax
import pytest

import rllc
from rllc.compat import lo_compat
from tasks import augment as augment_lib
from tasks import data as data_lib
from tasks import registry
from tasks.image_tasks import DeviceSplits, ImageTask

SHAPES = {
  "mnist": (28, 28, 1),
  "fashion_mnist": (28, 28, 1),
  "cifar10": (32, 32, 3),
  "digits": (8, 8, 1),
}


def synthetic(dataset: str, n=(128, 48, 48), seed=0) -> data_lib.ImageData:
  """Random images of the data set's shape, labels 0..9."""
  rng = np.random.default_rng(seed)
  splits = [
    (
      rng.normal(size=(k,) + SHAPES[dataset]).astype(np.float32),
      rng.integers(0, 10, size=k).astype(np.int32),
    )
    for k in n
  ]
  return data_lib.ImageData(
    dataset, *splits, num_classes=10, mean=(0.0,), std=(1.0,), source="synthetic"
  )


def build(name: str, batch_size=32) -> ImageTask:
  spec = registry.TASKS[name]
  augment = augment_lib.augment if spec.augment else None
  return ImageTask(
    name, synthetic(spec.dataset), spec.model(10), batch_size=batch_size, augment=augment
  )


@pytest.mark.parametrize("name", list(registry.TASKS))
def test_task_init_loss_accuracy_gradient_and_one_step(name):
  task = build(name, batch_size=16)
  params, state = task.init_with_state(jax.random.key(0))
  batch = task.splits.batch("train", jax.random.key(1), 0)
  assert batch["image"].shape == (16,) + SHAPES[registry.TASKS[name].dataset]

  def loss_fn(p):
    loss, new_state, aux = task.loss_with_state_and_aux(p, state, jax.random.key(2), batch)
    return loss, (new_state, aux)

  value_and_grad = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
  (loss, (new_state, aux)), grads = value_and_grad(params)
  assert np.isfinite(loss) and 0.0 <= float(aux["accuracy"]) <= 1.0
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
  assert (new_state is None) == (not task.has_state)
  # One SGD step lowers the loss on the same batch (same key: same augmentation).
  stepped = optax.apply_updates(params, jax.tree.map(lambda g: -0.05 * g, grads))
  (after, _), _ = value_and_grad(stepped)
  assert float(after) < float(loss)


def test_every_epoch_visits_each_example_once_and_is_deterministic():
  splits = DeviceSplits(synthetic("digits", n=(96, 32, 32)), batch_size=32)
  key = jax.random.key(3)
  labels = np.asarray(splits.arrays["train"][1])
  images = np.asarray(splits.arrays["train"][0]).reshape(96, -1)
  for epoch in range(2):
    seen = np.concatenate(
      [
        np.asarray(splits.batch("train", key, epoch * 3 + s)["image"]).reshape(32, -1)
        for s in range(3)
      ]
    )
    rows = [int(np.flatnonzero((images == row).all(1))[0]) for row in seen]
    assert sorted(rows) == list(range(96))
  first = splits.batch("train", key, 4)
  again = jax.jit(splits.batch, static_argnums=0)("train", key, 4)
  np.testing.assert_array_equal(first["label"], again["label"])
  other = splits.batch("train", jax.random.key(4), 4)
  assert not np.array_equal(first["image"], other["image"])
  assert labels.shape == (96,)


def test_evaluate_matches_a_direct_computation():
  task = build("digits-mlp", batch_size=24)
  params, state = task.init_with_state(jax.random.key(0))
  loss, acc = jax.jit(task.evaluate, static_argnums=2)(params, state, "valid")
  images, labels = task.splits.arrays["valid"]
  logits = task.model.apply({"params": params}, images)
  expected = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  np.testing.assert_allclose(acc, np.mean(np.argmax(logits, -1) == labels), rtol=1e-6)


def test_digits_tasks_need_no_download_and_train_in_learned_optimizations_loop():
  eval_training = lo_compat.load("learned_optimization.eval_training")
  task = registry.get_task("digits-mlp")
  assert task.splits.arrays["train"][0].shape[1:] == (8, 8, 1)
  opt = rllc.optimizer("M(0.9)+M(0)", learning_rate=0.1, law_learning_rate=0.01).lopt()
  curves = eval_training.single_task_training_curves(
    task,
    opt,
    num_steps=60,
    key=jax.random.key(0),
    eval_every=30,
    eval_batches=2,
    last_eval_batches=2,
  )
  losses = np.asarray(curves["train/loss"])
  assert np.all(np.isfinite(losses))
  assert losses[-10:].mean() < losses[:10].mean()
  assert "eval/test/accuracy" in curves


def test_unknown_task_names_the_valid_ones():
  with pytest.raises(ValueError, match="unknown task 'mnist-resnet'.*digits-mlp"):
    registry.get_task("mnist-resnet")
