"""What the benchmark engine needs of a task: a small, documented interface.

The engine (eval.run.engine) trains one task with many optimizer settings in
one compiled program. It reads the task through these methods only, so any
object that has them trains there: the suite's ImageTask (tasks.image_tasks)
does, and an adapter over another framework's task needs only these.

  params, state = task.init_with_state(key)          # state: None without BatchNorm
  batch = task.splits.batch("train", data_key, t)     # batch t of a seeded epoch order
  loss, state = task.loss_with_state(params, state, key, batch)
  loss, accuracy = task.evaluate(params, state, "valid")   # over a whole split
  view = task.with_splits(splits)                     # the same task on traced splits

A task may also say `has_accuracy = False` (a regression, a quadratic, an
autoencoder: its loss is the metric); its `evaluate` then gives NaN for the
accuracy, records hold None, reports say n/a, and a protocol that selects by
validation accuracy refuses it. Without the attribute a task has one
(`has_accuracy(task)`).

The splits are a pytree (jax.tree_util.register_pytree_node_class) passed to
the compiled program as an argument, not baked into it as constants: the data
then lives once in device memory, however many programs use it, and
`with_splits` rebinds a task to the traced copy inside the program.
"""

from typing import Any, Protocol, runtime_checkable

import jax

SPLITS = ("train", "valid", "test")


class Splits(Protocol):
  """A task's data on the device: a pytree of its splits' arrays."""

  batch_size: int

  def batch(self, split: str, key: jax.Array, step: Any) -> dict[str, jax.Array]:
    """Batch number `step` of `split` in the epoch order drawn from `key` (jittable)."""
    ...


@runtime_checkable
class EngineTask(Protocol):
  """A task the engine can train: initialization, a training loss, evaluation over a split."""

  name: str
  splits: Splits

  def init_with_state(self, key: jax.Array) -> tuple[Any, Any]:
    """Parameters and model state (None when the model keeps none)."""
    ...

  def loss_with_state(self, params: Any, state: Any, key: jax.Array, data: Any) -> tuple:
    """(mean training loss of `data`, new model state); `key` for per-step randomness."""
    ...

  def evaluate(self, params: Any, state: Any, split: str) -> tuple[jax.Array, jax.Array]:
    """(mean loss, accuracy) of the model in inference mode over the whole `split`."""
    ...

  def with_splits(self, splits: Splits) -> "EngineTask":
    """The same task over other splits of the same shapes (the program's traced copy)."""
    ...


def has_accuracy(task) -> bool:
  """Whether a task's evaluation gives an accuracy (True unless it says otherwise)."""
  return bool(getattr(task, "has_accuracy", True))
