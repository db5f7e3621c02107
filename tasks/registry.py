"""The task registry: short names, as the command line, TOML files and reports use them.

The RLLC paper's seven tasks (section 6, appendix A.5) and two embedded ones
that need no download:

  mnist-mlp, mnist-conv, fmnist-mlp, fmnist-conv,
  cifar10-mlp, cifar10-conv, cifar10-resnet20,
  digits-mlp, digits-conv          (scikit-learn's 8x8 digits, shipped with it)

and learned_optimization's own fixed tasks, built from its own model code on
the same offline data, so results can sit beside its published baselines:

  lo:ImageMLP_Mnist_128x128x128_Relu, lo:ImageMLP_Cifar10_128x128x128_Relu,
  lo:Conv_Cifar10_32x64x64

(their data pipeline is this suite's: the same splits and normalization as
the tasks above, not learned_optimization's tfds one).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from tasks import data as data_lib

if TYPE_CHECKING:
  from tasks.image_tasks import DeviceSplits


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


def _lo_mlp(splits: DeviceSplits, seed: int):
  from rllc import lo_compat

  image_mlp = lo_compat.load("learned_optimization.tasks.fixed.image_mlp")
  return image_mlp._MLPImageTask(splits.lo_datasets(seed), [128, 128, 128])


def _lo_conv(splits: DeviceSplits, seed: int):
  import jax

  from rllc import lo_compat

  conv = lo_compat.load("learned_optimization.tasks.fixed.conv")
  loss_fn = conv._cross_entropy_pool_loss([32, 64, 64], jax.nn.relu, num_classes=10)
  return conv._ConvTask(loss_fn, splits.lo_datasets(seed))


# "lo:" name -> (data set, builder from the device splits).
LO_TASKS: dict[str, tuple[str, Callable]] = {
  "lo:ImageMLP_Mnist_128x128x128_Relu": ("mnist", _lo_mlp),
  "lo:ImageMLP_Cifar10_128x128x128_Relu": ("cifar10", _lo_mlp),
  "lo:Conv_Cifar10_32x64x64": ("cifar10", _lo_conv),
}


def task_names() -> list[str]:
  return list(TASKS) + list(LO_TASKS)


def dataset_of(name: str) -> str:
  """The data set a task name needs."""
  if name in TASKS:
    return TASKS[name].dataset
  if name in LO_TASKS:
    return LO_TASKS[name][0]
  raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(task_names())}")


def get_task(name: str, *, batch_size: int = 128, data_dir: str | None = None, seed: int = 0):
  """Builds a task by name, loading its data (offline; see tasks.data).

  Args:
    name: a key of TASKS or LO_TASKS.
    batch_size: examples per batch (128 in the RLLC paper).
    data_dir: where to look for data files not yet imported.
    seed: seed of the learned_optimization iterators.

  Returns:
    A learned_optimization Task (an ImageTask for the suite's own names).

  Raises:
    ValueError: an unknown name; tasks.data.DataError when the data is missing.
  """
  # Here, not at the top: they import JAX, flax and learned_optimization (with TensorFlow).
  from tasks import augment as augment_lib
  from tasks.image_tasks import DeviceSplits, ImageTask

  data = data_lib.load(dataset_of(name), data_dir=data_dir)
  if name in LO_TASKS:
    return LO_TASKS[name][1](DeviceSplits(data, batch_size), seed)
  spec = TASKS[name]
  return ImageTask(
    name,
    data,
    spec.model(data.num_classes),
    batch_size=batch_size,
    augment=augment_lib.augment if spec.augment else None,
    seed=seed,
  )
