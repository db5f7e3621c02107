"""The batched strategies: a chunk's members in one program per interval, sharded over devices.

- "vmap" (Vmapped): vmap over the members, lax.scan over the steps of an
  interval; the member axis sharded over the devices (a 1-D mesh "grid").
- "map" (Mapped): the same with lax.map in place of vmap, so each member's
  step is its unbatched program, the members of a device one after another
  (each device maps over its own members, by shard_map).

A chunk of one member on one device is the member's own function with a
unit axis around it, not vmap, whose layouts cost a lone run about 13%
(measured by eval.experiments.bench_engine's one-run rows).
"""

import abc
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from eval.run.strategies import base


class Batched(base.Strategy):
  """One program per interval over the whole chunk; `over` says how it covers the members."""

  @abc.abstractmethod
  def over(self, f: Callable, in_axes: tuple) -> Callable:
    """f of one member as a function of the chunk's members (a leading axis)."""

  def shard(self, f: Callable, in_axes: tuple, mesh: Mesh) -> Callable:
    """`over` on several devices: by default the jit's shardings split the member axis."""
    del mesh  # the input's and output's shardings carry it
    return self.over(f, in_axes)

  def prepare(self, splits, lengths: list[int]) -> None:
    init, interval, evaluate = self.functions
    lone = self.width == 1 and len(self.devices) == 1
    over = base.unit_axis if lone else self.over
    self.splits = jax.device_put(splits, self.devices[0])
    self.member_axis = None
    jit = jax.jit
    if len(self.devices) > 1:
      mesh = Mesh(np.array(self.devices), ("grid",))
      self.member_axis = NamedSharding(mesh, PartitionSpec("grid"))
      self.splits = jax.device_put(splits, NamedSharding(mesh, PartitionSpec()))
      over = functools.partial(self.shard, mesh=mesh)
      jit = functools.partial(jax.jit, out_shardings=self.member_axis)
    self.init = jit(over(init, (0, 0)))
    self.evaluate_program = jit(over(evaluate, (0, None)))
    self.interval = {
      length: jit(
        over(functools.partial(interval, length=length), (0, 0, None, None)), donate_argnums=0
      )
      for length in lengths
    }
    self.compiled = {}  # length -> the interval program compiled ahead of time (compile)

  def start(self, hps: dict, seeds: jax.Array) -> base.Chunk:
    hps, seeds = jax.device_put((hps, seeds), self.member_axis or self.devices[0])
    return base.Chunk([self.init(hps, seeds)], [hps])

  def compile(self, chunk: base.Chunk, length: int) -> None:
    lowered = self.interval[length].lower(chunk.carries[0], chunk.hps[0], jnp.int32(0), self.splits)
    self.compiled[length] = lowered.compile()

  def advance(self, chunk: base.Chunk, t0: int, length: int) -> tuple:
    program = self.compiled.get(length, self.interval[length])
    chunk.carries[0], out = program(chunk.carries[0], chunk.hps[0], jnp.int32(t0), self.splits)
    return out

  def evaluate(self, chunk: base.Chunk) -> tuple:
    return self.evaluate_program(chunk.carries[0], self.splits)


class Vmapped(Batched):
  """The members batched by vmap: larger matmuls, one program for all."""

  name = "vmap"

  def over(self, f: Callable, in_axes: tuple) -> Callable:
    return jax.vmap(f, in_axes=in_axes)


class Mapped(Batched):
  """The members one after another by lax.map inside one program, each its unbatched step."""

  name = "map"

  def over(self, f: Callable, in_axes: tuple) -> Callable:
    return _sequential(f, in_axes)

  def shard(self, f: Callable, in_axes: tuple, mesh: Mesh) -> Callable:
    """Each device maps over its own members (shard_map of the lax.map)."""
    specs = tuple(PartitionSpec("grid") if a == 0 else PartitionSpec() for a in in_axes)
    return jax.shard_map(
      self.over(f, in_axes), mesh=mesh, in_specs=specs, out_specs=PartitionSpec("grid")
    )


def _sequential(f: Callable, in_axes: tuple) -> Callable:
  """f over a member axis by lax.map: one member after another, each its own unbatched program."""

  def g(*args):
    mapped = [a for a, axis in zip(args, in_axes, strict=True) if axis == 0]

    def one(xs):
      rest = iter(xs)
      return f(*[next(rest) if axis == 0 else a for a, axis in zip(args, in_axes, strict=True)])

    return jax.lax.map(one, mapped)

  return g
