"""Image classification tasks on learned_optimization's Task API, from in-memory data.

`ImageTask` is a flax model over `DeviceSplits`, each split of an
`ImageData` held on the device. Batches come two ways:

- `task.splits.batch(split, key, step)`: a pure, jittable gather, for training inside one
  compiled program (scanned, vmapped over seeds). Each epoch visits the split
  in the order of a random affine permutation i -> (a i + b) mod n, with a
  coprime to n and (a, b) drawn from (key, epoch): every example once per
  epoch, deterministic from the key, O(batch) work per step and no Python
  iterator.
- `datasets`: learned_optimization's `Datasets` of Python iterators, for its
  own loops. The mapping of splits: `train` -> train, `inner_valid` and
  `outer_valid` -> validation, `test` -> test.

Every task reports accuracy as an auxiliary output (`loss_with_state_and_aux`),
which learned_optimization's own tasks do not. BatchNorm models keep their
running statistics as the task's model state (`init_with_state`,
`loss_with_state`).
"""

import copy
import math
from collections.abc import Iterator
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rllc.compat import lo_compat
from tasks import data as data_lib

_tasks_base = lo_compat.load("learned_optimization.tasks.base")
_datasets_base = lo_compat.load("learned_optimization.tasks.datasets.base")

SPLITS = ("train", "valid", "test")
_LO_SPLITS = {"train": "train", "inner_valid": "valid", "outer_valid": "valid", "test": "test"}


def _coprime_multipliers(n: int) -> np.ndarray:
  """Some multipliers a with gcd(a, n) = 1, for the affine epoch permutations."""
  candidates = np.arange(1, min(n, 4096))
  return candidates[np.gcd(candidates, n) == 1]


@jax.tree_util.register_pytree_node_class
class DeviceSplits:
  """The splits of an ImageData on the device, and batches drawn from them.

  A pytree whose leaves are the arrays: a compiled program can take the data
  as an argument (eval.run.engine does) instead of baking it in as a constant.
  """

  def __init__(self, data: data_lib.ImageData, batch_size: int):
    self.batch_size = batch_size
    self.num_classes = data.num_classes
    self.arrays = {
      split: (jnp.asarray(images), jnp.asarray(labels, jnp.int32))
      for split, (images, labels) in zip(SPLITS, (data.train, data.valid, data.test), strict=True)
    }
    self._multipliers = {
      split: jnp.asarray(_coprime_multipliers(len(y))) for split, (_, y) in self.arrays.items()
    }

  def tree_flatten(self):
    return (self.arrays, self._multipliers), (self.batch_size, self.num_classes)

  @classmethod
  def tree_unflatten(cls, aux, children):
    splits = object.__new__(cls)
    splits.batch_size, splits.num_classes = aux
    splits.arrays, splits._multipliers = children
    return splits

  @property
  def image_shape(self) -> tuple[int, ...]:
    return tuple(self.arrays["train"][0].shape[1:])

  def batch(self, split: str, key: jax.Array, step) -> dict[str, jax.Array]:
    """The batch at `step` of the epoch-wise shuffled `split`; jittable.

    Args:
      split: "train", "valid" or "test".
      key: the PRNG key of this run's data order.
      step: the step number (may be traced).

    Returns:
      {"image": (batch, H, W, C) float32, "label": (batch,) int32}.
    """
    images, labels = self.arrays[split]
    n = labels.shape[0]
    per_epoch = max(n // self.batch_size, 1)
    epoch, within = step // per_epoch, step % per_epoch
    choice_key, shift_key = jax.random.split(jax.random.fold_in(key, epoch))
    a = jax.random.choice(choice_key, self._multipliers[split])
    b = jax.random.randint(shift_key, (), 0, n)
    positions = within * self.batch_size + jnp.arange(self.batch_size)
    idx = (a * positions + b) % n
    return {"image": images[idx], "label": labels[idx]}

  def lo_datasets(self, seed: int):
    """learned_optimization's `Datasets`: an iterator over the same batches per split."""
    key = jax.random.key(seed)
    get = jax.jit(self.batch, static_argnums=0)

    def iterate(split: str, index: int) -> Iterator[dict]:
      step = 0
      while True:
        yield get(split, jax.random.fold_in(key, index), step)
        step += 1

    iterators = {
      lo_name: iterate(split, i) for i, (lo_name, split) in enumerate(_LO_SPLITS.items())
    }
    abstract = {
      "image": jax.ShapeDtypeStruct((self.batch_size,) + self.image_shape, jnp.float32),
      "label": jax.ShapeDtypeStruct((self.batch_size,), jnp.int32),
    }
    return _datasets_base.Datasets(
      **iterators, extra_info={"num_classes": self.num_classes}, abstract_batch=abstract
    )


class ImageTask(_tasks_base.Task):
  """A classification task: a flax model, softmax cross-entropy, accuracy."""

  def __init__(
    self,
    name: str,
    data: data_lib.ImageData,
    model: nn.Module,
    *,
    batch_size: int = 128,
    augment=None,
    seed: int = 0,
  ):
    """Puts the splits on the device.

    Args:
      name: the registry name, e.g. "mnist-mlp".
      data: the normalized splits.
      model: a flax module `model(x, train=...)` returning logits.
      batch_size: examples per batch (128 in the RLLC paper).
      augment: optional `augment(key, images) -> images`, applied to training
        batches only (ResNet-20).
      seed: seed of the iterators of `datasets`.
    """
    super().__init__()
    self._name = name
    self.model = model
    self.splits = DeviceSplits(data, batch_size)
    self.num_classes = data.num_classes
    self._augment = augment
    example = jnp.zeros((1,) + self.splits.image_shape, jnp.float32)
    shapes = jax.eval_shape(model.init, jax.random.key(0), example)
    self.has_state = "batch_stats" in shapes  # BatchNorm running statistics
    self.datasets = self.splits.lo_datasets(seed)

  @property
  def name(self) -> str:
    return self._name

  def with_splits(self, splits: DeviceSplits) -> "ImageTask":
    """The same task over other (e.g. traced) splits of the same shapes."""
    view = copy.copy(self)
    view.splits = splits
    return view

  # The Task API --------------------------------------------------------------

  def init_with_state(self, key: jax.Array) -> tuple[Any, Any]:
    """Parameters and model state (BatchNorm statistics, or None)."""
    variables = self.model.init(key, jnp.zeros((1,) + self.splits.image_shape, jnp.float32))
    state = variables.get("batch_stats")
    return variables["params"], state

  def init(self, key: jax.Array) -> Any:
    return self.init_with_state(key)[0]

  def _logits(self, params, state, key, images, train: bool):
    if train and self._augment is not None:
      images = self._augment(key, images)
    if not self.has_state:
      return self.model.apply({"params": params}, images, train=train), None
    variables = {"params": params, "batch_stats": state}
    if not train:
      return self.model.apply(variables, images, train=False), state
    logits, updates = self.model.apply(variables, images, train=True, mutable=["batch_stats"])
    return logits, updates["batch_stats"]

  def loss_with_state_and_aux(self, params, state, key, data):
    """Mean cross-entropy of a training step, new model state, {"accuracy"}."""
    logits, state = self._logits(params, state, key, data["image"], train=True)
    return self._loss(logits, data["label"]), state, {"accuracy": self._accuracy(logits, data)}

  def loss_with_state(self, params, state, key, data):
    loss, state, _ = self.loss_with_state_and_aux(params, state, key, data)
    return loss, state

  def loss(self, params, key, data):
    if self.has_state:
      raise ValueError(f"{self.name} has BatchNorm state: use loss_with_state")
    loss, _ = self.loss_with_state(params, None, key, data)
    return loss

  def evaluate(self, params, state, split: str, max_examples: int | None = None):
    """Loss and accuracy of the model in inference mode over a whole split.

    Args:
      params: model parameters.
      state: model state (None without BatchNorm).
      split: "train", "valid" or "test".
      max_examples: evaluate the first this many examples only.

    Returns:
      (mean loss, accuracy) as scalars; jittable.
    """
    images, labels = self.splits.arrays[split]
    batch_size = self.splits.batch_size
    n = labels.shape[0] if max_examples is None else min(max_examples, labels.shape[0])
    chunks = math.ceil(n / batch_size)
    pad = chunks * batch_size - n
    idx = jnp.concatenate([jnp.arange(n), jnp.zeros(pad, jnp.int32)]).reshape(chunks, -1)
    weight = (jnp.arange(chunks * batch_size) < n).reshape(chunks, -1)

    def chunk(args):
      rows, w = args
      logits, _ = self._logits(params, state, None, images[rows], train=False)
      losses = self._losses(logits, labels[rows])
      correct = jnp.argmax(logits, -1) == labels[rows]
      return jnp.sum(w * losses), jnp.sum(w * correct)

    losses, correct = jax.lax.map(chunk, (idx, weight))
    return jnp.sum(losses) / n, jnp.sum(correct) / n

  def normalizer(self, loss):
    """As learned_optimization's image tasks: clipped to [0, 1.5 log(classes)]."""
    top = 1.5 * np.log(self.num_classes)
    return jnp.nan_to_num(jnp.clip(loss, 0, top), nan=top, posinf=top, neginf=top)

  def _losses(self, logits, labels):
    return -jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=1)[:, 0]

  def _loss(self, logits, labels):
    return jnp.mean(self._losses(logits, labels))

  def _accuracy(self, logits, data):
    return jnp.mean(jnp.argmax(logits, -1) == data["label"])
