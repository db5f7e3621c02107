"""The interface of a layout strategy: how the members of a group share programs and devices.

A strategy is built for one group of members (member_functions' functions
of one static setting, eval.run.member) and reused by its chunks:

  strategy = Strategy(functions, task.splits, schedule.intervals(), devices, width=n)
  chunk = strategy.start(hps, seeds)            # initialized on the devices
  strategy.compile(chunk, length)               # optional: ahead of time
  losses, quantities = strategy.advance(chunk, t0, length)
  metrics, finite = strategy.evaluate(chunk)

Every array that comes back has a leading member axis, in the chunk's order.
The strategies (eval.run.strategies.batched, .host) differ only in how they
lay the members out; a member's step is member_functions' own, but its bits
depend on the layout (XLA compiles a batched step differently from a lone
one), which is why the layout is recorded in every record.
"""

import abc
import dataclasses
from collections.abc import Callable, Sequence
from typing import ClassVar

import jax
import numpy as np

from eval.run import member as member_lib


@dataclasses.dataclass
class Chunk:
  """A chunk's members in training: one carry with a member axis, or one per member."""

  carries: list  # Carry pytrees, each with a leading member axis
  hps: list  # the matching hyperparameter arrays


class Strategy(abc.ABC):
  """Compiles a group's member functions for one layout, then runs its chunks."""

  name: ClassVar[str]  # the layout's name, as records and --strategy give it

  def __init__(
    self,
    functions: member_lib.MemberFunctions,
    splits,
    intervals: Sequence[int],
    devices: Sequence[jax.Device],
    *,
    width: int,
  ):
    """Args: the member functions; the task's splits (a pytree); the interval lengths the
    schedule has (eval.run.engine.Schedule.intervals); the devices; members per chunk."""
    self.functions = functions
    self.devices = list(devices)
    self.width = width
    self.prepare(splits, sorted(set(intervals)))

  @abc.abstractmethod
  def prepare(self, splits, lengths: list[int]) -> None:
    """Places the data and builds (jits) the programs for intervals of these lengths."""

  @abc.abstractmethod
  def start(self, hps: dict, seeds: jax.Array) -> Chunk:
    """A chunk of members initialized on the devices, ready for `advance`."""

  @abc.abstractmethod
  def compile(self, chunk: Chunk, length: int) -> None:
    """Compiles the interval program of `length` steps for this chunk now (ahead of time)."""

  @abc.abstractmethod
  def advance(self, chunk: Chunk, t0: int, length: int) -> tuple:
    """`length` steps from step t0: the chunk moved on; (per-step losses, quantities)."""

  @abc.abstractmethod
  def evaluate(self, chunk: Chunk) -> tuple:
    """Each member's evaluation: (per split (loss, accuracy), parameters all finite)."""


def unit_axis(f: Callable, in_axes: tuple) -> Callable:
  """f over a member axis of length 1, as vmap would be, without vmap's batched layouts."""

  def g(*args):
    args = [
      jax.tree.map(lambda x: x[0], a) if axis == 0 else a
      for a, axis in zip(args, in_axes, strict=True)
    ]
    return jax.tree.map(lambda x: x[None], f(*args))

  return g


def stack(trees: list):
  """Trees with a leading member axis, concatenated along it (on the host if on several devices)."""
  if len(trees) == 1:
    return trees[0]
  return jax.tree.map(lambda *xs: np.concatenate([np.asarray(x) for x in xs]), *trees)
