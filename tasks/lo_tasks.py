"""learned_optimization's tasks as tasks of the benchmark engine (tasks.interface.EngineTask).

  task = lo_tasks.get_task("lo:ImageMLP_Mnist_128x128x128_Relu")   # or "lo:QuadraticTask",
  engine.train_grid(task, entry, members, schedule)                # "my_tasks:TinyTask", ...
  task.task                                                        # learned_optimization's Task

`LoTask` wraps one learned_optimization `Task` (tasks.lo_names says which
names there are). What is learned_optimization's own code and what is ours:

- the model, its initialization and its loss are the Task's, called as they
  are: `init_with_state`, `loss_with_state`, `loss_with_state_and_aux`. The
  fixed tasks are built by their own factory functions
  (`ImageMLP_Mnist_128x128x128_Relu()`), with the one data-set call they make
  (`image.mnist_datasets(batch_size=128)`) answered from this suite's offline
  data instead of tensorflow-datasets;
- the batches and the evaluation are ours, in one of three ways.

Batches, by where the task's data comes from:

- the suite's data (the fixed image tasks): `DeviceSplits` (tasks.image_tasks),
  drawn inside the compiled program like every suite task, at the batch size
  the task's factory asks for (the protocol's batch_size does not apply: it
  is part of the task's name). The splits, normalization and epoch order are
  this suite's (tasks.data), not learned_optimization's tfds ones (train 80%,
  validation 10%). No cost over a suite task: no host work per step. The
  Task's own `datasets` iterate over the same splits, for its own loops;
- no data (`datasets` is None, the quadratics): the batch is `()`, as
  learned_optimization's loops pass it;
- the Task's own `datasets` iterators (a user's task, BatchQuadraticTask):
  read once when the task is built into `IteratorSplits`: up to
  `TRAIN_BATCHES` training batches (fewer when they pass `BUFFER_BYTES`),
  visited in a seeded random order per pass, and `EVAL_BATCHES` batches each
  of `outer_valid` and `test`. The cost: that reading, once per job (the
  iterators' own speed), and the buffer's device memory; a run longer than the
  buffer sees its batches again. Every run of a job sees the same buffer, and
  another job reads the iterators anew, so records are reproducible only as
  far as the iterators are.

Evaluation: validation is learned_optimization's `outer_valid` (the split its
`single_task_training_curves` evaluates); a split of the suite's data is
evaluated whole (its full batches, then the rest as one smaller batch), a
buffer over its batches, and a task without data once. The loss is the one
the task trains with, as learned_optimization's loops evaluate it (its tasks
have no inference mode: BatchNorm uses the batch's statistics, dropout is
on); the key is fixed, so an evaluation is deterministic. Accuracy is the task's own aux `accuracy`
when its `loss_with_state_and_aux` gives one; else, for a classifier, the
argmax accuracy of the logits its loss passed to learned_optimization's
`softmax_cross_entropy` (its image tasks report no accuracy); else NaN, and
the task's `has_accuracy` is False (a quadratic or an autoencoder has none:
its loss is the metric; records then hold None, and reports say n/a).
"""

import contextlib
import copy
import functools
import importlib
import os
import sys
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rllc.compat import lo_compat
from tasks import data as data_lib
from tasks import lo_names
from tasks.image_tasks import DeviceSplits

_tasks_base = lo_compat.load("learned_optimization.tasks.base")
_datasets_base = lo_compat.load("learned_optimization.tasks.datasets.base")

TRAIN_BATCHES = 1000  # most training batches read from a task's own iterators
BUFFER_BYTES = 256 << 20  # most bytes of them
EVAL_BATCHES = 20  # batches of outer_valid and test (single_task_training_curves' last eval)
# The engine's evaluation splits -> learned_optimization's.
LO_SPLIT = {"valid": "outer_valid", "test": "test"}
_EVAL_KEY = 0  # seed of the key every evaluation passes to the loss


@jax.tree_util.register_pytree_node_class
class NoData:
  """The splits of a task without data: every batch is `()`."""

  batch_size = 0  # no examples in a batch

  def tree_flatten(self):
    return (), None

  @classmethod
  def tree_unflatten(cls, aux, children):
    return cls()

  def batch(self, split: str, key: jax.Array, step) -> tuple:
    """The empty batch learned_optimization's loops pass to a task without data."""
    return ()


@jax.tree_util.register_pytree_node_class
class IteratorSplits:
  """Batches read from a task's own iterators, stacked on the device (a pytree)."""

  def __init__(self, arrays: dict[str, Any], batch_size: int):
    self.arrays = arrays  # split -> the batches' pytree, a leading batch-number axis
    self.batch_size = batch_size

  def tree_flatten(self):
    return (self.arrays,), self.batch_size

  @classmethod
  def tree_unflatten(cls, aux, children):
    return cls(children[0], aux)

  @classmethod
  def read(cls, datasets) -> "IteratorSplits":
    """Reads the buffers from `datasets` (learned_optimization's Datasets)."""
    first = jax.tree.map(np.asarray, next(datasets.train))
    size = sum(leaf.nbytes for leaf in jax.tree.leaves(first))
    count = max(1, min(TRAIN_BATCHES, BUFFER_BYTES // max(size, 1)))
    arrays = {"train": _stack([first, *_take(datasets.train, count - 1)])}
    for split, lo_split in LO_SPLIT.items():
      arrays[split] = _stack(list(_take(datasets.split(lo_split), EVAL_BATCHES)))
    leaves = jax.tree.leaves(first)
    return cls(arrays, int(leaves[0].shape[0]) if leaves and leaves[0].ndim else 1)

  def batch(self, split: str, key: jax.Array, step) -> Any:
    """Batch `step` of `split`: each pass over the buffer in the order drawn from (key, pass)."""
    buffer = self.arrays[split]
    n = jax.tree.leaves(buffer)[0].shape[0]
    order = jax.random.permutation(jax.random.fold_in(key, step // n), n)
    return jax.tree.map(lambda x: x[order[step % n]], buffer)


def _take(iterator: Iterator, count: int) -> Iterator:
  for _ in range(count):
    yield jax.tree.map(np.asarray, next(iterator))


def _stack(batches: list) -> Any:
  return jax.tree.map(lambda *xs: jnp.asarray(np.stack(xs)), *batches)


class _SuiteDatasets(_datasets_base.Datasets):
  """Datasets whose `split("train")`, which evaluation reads, is not the training iterator.

  learned_optimization's loops evaluate the train split from `split("train")`; here it is an
  iterator of its own, so evaluations take no batch from training: training batch t is the
  engine's batch t, whatever the evaluation schedule.
  """

  def __init__(self, train_eval: Iterator, **datasets):
    super().__init__(**datasets)
    self._train_eval = train_eval

  def split(self, name: str) -> Iterator:
    return self._train_eval if name == "train" else super().split(name)


def suite_datasets(splits: DeviceSplits, train_key: jax.Array):
  """learned_optimization's `Datasets` over the suite's splits: its loops' batches.

  The train iterator yields `splits.batch("train", train_key, t)` for t = 0, 1, ...: the
  engine's batches of a run whose data key is `train_key`. The others (inner_valid,
  outer_valid, test, and the train split as evaluation reads it) are keyed by
  fold_in(train_key, 1), ..., fold_in(train_key, 4).
  """
  get = jax.jit(splits.batch, static_argnums=0)

  def iterate(split: str, key: jax.Array) -> Iterator[dict]:
    step = 0
    while True:
      yield get(split, key, step)
      step += 1

  others = ("valid", "valid", "test", "train")  # inner_valid, outer_valid, test, train eval
  inner_valid, outer_valid, test, train_eval = (
    iterate(split, jax.random.fold_in(train_key, i + 1)) for i, split in enumerate(others)
  )
  abstract = {
    "image": jax.ShapeDtypeStruct((splits.batch_size,) + splits.image_shape, jnp.float32),
    "label": jax.ShapeDtypeStruct((splits.batch_size,), jnp.int32),
  }
  return _SuiteDatasets(
    train_eval,
    train=iterate("train", train_key),
    inner_valid=inner_valid,
    outer_valid=outer_valid,
    test=test,
    extra_info={"num_classes": splits.num_classes},
    abstract_batch=abstract,
  )


@contextlib.contextmanager
def _offline_image_data(provide):
  """learned_optimization's image data-set functions answered by `provide(dataset, **kw)`."""
  image = lo_compat.load("learned_optimization.tasks.datasets.image")
  saved = {fn: getattr(image, fn) for fn in lo_names.SUITE_DATA}
  for fn, dataset in lo_names.SUITE_DATA.items():
    setattr(image, fn, functools.partial(provide, dataset))
  try:
    yield
  finally:
    for fn, original in saved.items():
      setattr(image, fn, original)


@contextlib.contextmanager
def _capturing_logits():
  """The (logits, labels) each `softmax_cross_entropy` call of learned_optimization is given."""
  seen: list[tuple[jax.Array, jax.Array]] = []
  original = _tasks_base.softmax_cross_entropy

  def recording(*, logits, labels):
    seen.append((logits, labels))
    return original(logits=logits, labels=labels)

  _tasks_base.softmax_cross_entropy = recording
  try:
    yield seen
  finally:
    _tasks_base.softmax_cross_entropy = original


class LoTask:
  """A learned_optimization Task with what the engine needs (tasks.interface.EngineTask)."""

  def __init__(self, name: str, task, splits):
    """Wraps a Task.

    Args:
      name: the task's name in records, e.g. "lo:QuadraticTask" or "my_tasks:TinyTask".
      task: the learned_optimization Task (`self.task`).
      splits: DeviceSplits, IteratorSplits or NoData (the module docstring says which).
    """
    self.name = name
    self.task = task
    self.splits = splits

  def with_splits(self, splits) -> "LoTask":
    """The same task over other (e.g. traced) splits of the same shapes."""
    view = copy.copy(self)
    view.splits = splits
    return view

  def init_with_state(self, key: jax.Array) -> tuple[Any, Any]:
    return self.task.init_with_state(key)

  def init(self, key: jax.Array) -> Any:
    return self.init_with_state(key)[0]

  def loss_with_state(self, params, state, key, data) -> tuple:
    return self.task.loss_with_state(params, state, key, data)

  def _loss_and_accuracy(self, params, state, data) -> tuple[jax.Array, jax.Array | None]:
    """The evaluation loss of `data` and its accuracy, None when the task has none."""
    with _capturing_logits() as seen:
      loss, _, aux = self.task.loss_with_state_and_aux(
        params, state, jax.random.key(_EVAL_KEY), data
      )
    if "accuracy" in aux:
      accuracy = jnp.asarray(aux["accuracy"], jnp.float32)
    elif len(seen) == 1:
      logits, labels = seen[0]
      accuracy = jnp.mean(jnp.argmax(logits, -1) == jnp.argmax(labels, -1)).astype(jnp.float32)
    else:
      accuracy = None
    return jnp.asarray(loss, jnp.float32), accuracy

  @functools.cached_property
  def has_accuracy(self) -> bool:
    """Whether evaluation gives an accuracy (see the module docstring); traced, not computed."""
    found = []

    def probe(key):
      params, state = self.init_with_state(key)
      found.append(self._loss_and_accuracy(params, state, self.splits.batch("valid", key, 0))[1])

    jax.eval_shape(probe, jax.random.key(0))
    return found[0] is not None

  def _evaluated(self, params, state, data) -> tuple[jax.Array, jax.Array]:
    loss, accuracy = self._loss_and_accuracy(params, state, data)
    return loss, jnp.float32(jnp.nan) if accuracy is None else accuracy

  def evaluate(self, params, state, split: str) -> tuple[jax.Array, jax.Array]:
    """(mean loss, accuracy) over `split`: a whole suite split, a buffer, or once (no data)."""
    if isinstance(self.splits, NoData):
      return self._evaluated(params, state, ())
    if isinstance(self.splits, IteratorSplits):
      groups = [(self.splits.arrays[split], 1)]
    else:
      groups = _whole_split(self.splits, split)
    total = jnp.zeros(2, jnp.float32)
    for batches, weight in groups:
      losses, accuracies = jax.lax.map(lambda b: self._evaluated(params, state, b), batches)
      total += weight * jnp.stack([jnp.sum(losses), jnp.sum(accuracies)])
    count = sum(weight * len(jax.tree.leaves(b)[0]) for b, weight in groups)
    return total[0] / count, total[1] / count


def _whole_split(splits: DeviceSplits, split: str) -> list[tuple[dict, int]]:
  """A suite split as (stacked batches, examples per batch): full batches, then the rest."""
  images, labels = splits.arrays[split]
  size = splits.batch_size
  full = labels.shape[0] // size * size
  groups = []
  if full:
    groups.append(
      (
        {
          "image": images[:full].reshape((-1, size) + images.shape[1:]),
          "label": labels[:full].reshape(-1, size),
        },
        size,
      )
    )
  if full < labels.shape[0]:
    rest = labels.shape[0] - full
    groups.append(({"image": images[None, full:], "label": labels[None, full:]}, rest))
  return groups


def user_task(name: str):
  """The Task a `module:Name` names: a Task, a Task subclass, or a function returning one."""
  module_name, _, attribute = name.partition(":")
  if os.getcwd() not in sys.path:  # as `python -m` would: a module beside the command
    sys.path.insert(0, os.getcwd())
  try:
    module = importlib.import_module(module_name)
  except ImportError as err:
    raise lo_names.UnknownTaskError(
      f"task {name!r}: cannot import module {module_name!r} ({err}); give module:Name of a"
      " learned_optimization Task importable from here or PYTHONPATH"
    ) from None
  made = getattr(module, attribute, None)
  if made is None:
    raise lo_names.UnknownTaskError(f"task {name!r}: module {module_name} has no {attribute!r}")
  expected = "give a Task subclass, an instance, or a function of no arguments returning one"
  if callable(made) and not isinstance(made, _tasks_base.Task):
    try:
      made = made()
    except TypeError as err:
      raise lo_names.UnknownTaskError(
        f"task {name!r}: {attribute}() fails ({err}); {expected}"
      ) from None
  if not isinstance(made, _tasks_base.Task):
    raise lo_names.UnknownTaskError(
      f"task {name!r} is a {type(made).__name__}, not a learned_optimization Task ({expected})"
    )
  return made


def _named_task(spec: lo_names.LoTaskName, data_dir: str | None, train_key: jax.Array):
  """A learned_optimization task by its `lo:` name, and the suite splits it was given."""
  module = lo_compat.load(spec.module)
  made = getattr(module, spec.attribute)
  if spec.sample is not None:
    family = made()
    return family.task_fn(family.sample(jax.random.key(spec.sample))), None
  if spec.dataset is None:
    return made(), None
  given = []

  def provide(dataset: str, batch_size: int, **unused) -> Any:
    splits = DeviceSplits(data_lib.load(dataset, data_dir=data_dir), batch_size)
    given.append(splits)
    return suite_datasets(splits, train_key)

  with _offline_image_data(provide):
    task = made()
  return task, given[0]


def get_task(
  name: str, *, data_dir: str | None = None, train_key: jax.Array | None = None, seed: int = 0
) -> LoTask:
  """Builds a learned_optimization task by name (tasks.lo_names) for the engine.

  Args:
    name: "lo:NAME", "lo:FAMILY@SEED" or "module:Name".
    data_dir: where to look for data files not yet imported (tasks.data).
    train_key: key of the training order of the Task's own iterators over the suite's data
      (its `datasets`, for learned_optimization's loops; default: from `seed`).
    seed: seed of that key when `train_key` is not given.

  Returns:
    A LoTask; `.task` is learned_optimization's Task.

  Raises:
    lo_names.UnknownTaskError: an unknown name, or a `module:Name` that is no Task.
    tasks.data.DataError: its data is missing, or not one this suite has.
  """
  key = jax.random.key(seed) if train_key is None else train_key
  if lo_names.is_user(name):
    task, splits = user_task(name), None
  else:
    task, splits = _named_task(lo_names.lookup(name), data_dir, key)
  if splits is None:
    splits = NoData() if task.datasets is None else IteratorSplits.read(task.datasets)
  return LoTask(name, task, splits)
