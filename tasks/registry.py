"""The task registry: short names, as the command line, TOML files and reports use them.

The RLLC paper's seven tasks (section 6, appendix A.5) and two embedded ones
that need no download:

  mnist-mlp, mnist-conv, fmnist-mlp, fmnist-conv,
  cifar10-mlp, cifar10-conv, cifar10-resnet20,
  digits-mlp, digits-conv          (scikit-learn's 8x8 digits, shipped with it)

and learned_optimization's own tasks (tasks.lo_names, tasks.lo_tasks): its
fixed tasks by their own factories on the same offline data, so results can
sit beside its published baselines, its synthetic quadratics, and a user's
Task as `module:Name`; three of them are the suite's named examples:

  lo:ImageMLP_Mnist_128x128x128_Relu, lo:ImageMLP_Cifar10_128x128x128_Relu,
  lo:Conv_Cifar10_32x64x64

(their data pipeline is this suite's: the same splits and normalization as
the tasks above, not learned_optimization's tfds one).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from tasks import data as data_lib
from tasks import lo_names


@dataclasses.dataclass(frozen=True)
class TaskSpec:
  """What a task name stands for.

  The network is named, not held, so that listing the tasks (`rllc tasks`, a
  protocol's checks, a report) imports neither flax nor JAX.
  """

  dataset: str  # a name of tasks.data.DATASETS
  architecture: str  # a network of tasks.models: mlp, conv or resnet20
  augment: bool = False  # the ResNet-20 augmentation of appendix A.5.3

  @property
  def model(self) -> Callable:
    """num_classes -> flax module (imports flax)."""
    from tasks import models

    return getattr(models, self.architecture)


TASKS: dict[str, TaskSpec] = {
  "mnist-mlp": TaskSpec("mnist", "mlp"),
  "mnist-conv": TaskSpec("mnist", "conv"),
  "fmnist-mlp": TaskSpec("fashion_mnist", "mlp"),
  "fmnist-conv": TaskSpec("fashion_mnist", "conv"),
  "cifar10-mlp": TaskSpec("cifar10", "mlp"),
  "cifar10-conv": TaskSpec("cifar10", "conv"),
  "cifar10-resnet20": TaskSpec("cifar10", "resnet20", augment=True),
  "digits-mlp": TaskSpec("digits", "mlp"),
  "digits-conv": TaskSpec("digits", "conv"),
}


# learned_optimization's tasks that the suite names among its own (any other runs too).
LO_EXAMPLES = (
  "lo:ImageMLP_Mnist_128x128x128_Relu",
  "lo:ImageMLP_Cifar10_128x128x128_Relu",
  "lo:Conv_Cifar10_32x64x64",
)


def task_names() -> list[str]:
  """The suite's tasks and its named learned_optimization examples."""
  return list(TASKS) + list(LO_EXAMPLES)


def dataset_of(name: str) -> str | None:
  """The data set a task name needs (None: a learned_optimization task without the suite's).

  Raises:
    ValueError: an unknown name (lo_names.UnknownTaskError for an `lo:` one).
    tasks.data.DataError: an `lo:` task on data this suite has no offline copy of.
  """
  if name in TASKS:
    return TASKS[name].dataset
  if lo_names.is_lo(name):
    return lo_names.dataset_of(name)
  raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(task_names())}")


def batch_size_of(name: str, protocol_batch_size: int) -> int | None:
  """The batch size a task trains with under a protocol's: the protocol's for the suite's
  tasks; a learned_optimization task's own (tasks.lo_names.batch_size_of)."""
  return lo_names.batch_size_of(name) if lo_names.is_lo(name) else protocol_batch_size


def check_lo(name: str) -> None:
  """Raises unless a learned_optimization name (`lo:NAME`, `module:Name`) names a task here.

  An `lo:` name is looked up in learned_optimization's source (no import); a `module:Name`
  is imported and built.

  Raises:
    lo_names.UnknownTaskError: an unknown name (listing the valid ones), or no Task.
    tasks.data.DataError: an `lo:` task on data this suite has no offline copy of.
  """
  if lo_names.is_user(name):
    from tasks import lo_tasks

    lo_tasks.user_task(name)
  else:
    lo_names.lookup(name)


def get_task(name: str, *, batch_size: int = 128, data_dir: str | None = None, seed: int = 0):
  """Builds a task by name, loading its data (offline; see tasks.data).

  Args:
    name: a key of TASKS, or a learned_optimization task: "lo:NAME" or "module:Name"
      (tasks.lo_names).
    batch_size: examples per batch (128 in the RLLC paper); a learned_optimization task
      keeps its own.
    data_dir: where to look for data files not yet imported.
    seed: seed of the learned_optimization iterators.

  Returns:
    An ImageTask (a learned_optimization Task) for the suite's own names, a
    tasks.lo_tasks.LoTask (whose `.task` is one) for the others; both have the engine's
    interface (tasks.interface.EngineTask).

  Raises:
    ValueError: an unknown name; tasks.data.DataError when the data is missing.
  """
  # Here, not at the top: they import JAX, flax and learned_optimization (with TensorFlow).
  if lo_names.is_lo(name):
    from tasks import lo_tasks

    return lo_tasks.get_task(name, data_dir=data_dir, seed=seed)
  from tasks import augment as augment_lib
  from tasks.image_tasks import ImageTask

  data = data_lib.load(dataset_of(name), data_dir=data_dir)
  spec = TASKS[name]
  return ImageTask(
    name,
    data,
    spec.model(data.num_classes),
    batch_size=batch_size,
    augment=augment_lib.augment if spec.augment else None,
    seed=seed,
  )
