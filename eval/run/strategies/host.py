"""The host strategy ("host"): one program call per member and step, dispatched from Python.

No loop inside a program: each call is one member's step alone (a unit
member axis, no vmap), the members dealt to the devices in turn and
dispatched asynchronously, so the devices run in parallel. A member's bits
do not depend on the device count or the chunk size.
"""

import functools

import jax
import jax.numpy as jnp

from eval.run.strategies import base


class Host(base.Strategy):
  """Each member its own carry, stepped one step a call from the host."""

  name = "host"

  def prepare(self, splits, lengths: list[int]) -> None:
    del lengths  # one step a call, whatever the interval
    init, interval, evaluate = self.functions
    self.splits = [jax.device_put(splits, d) for d in self.devices]
    self.init = jax.jit(base.unit_axis(init, (0, 0)))
    self.evaluate_program = jax.jit(base.unit_axis(evaluate, (0, None)))
    one_step = functools.partial(interval, length=1, unroll=True)
    self.step = jax.jit(base.unit_axis(one_step, (0, 0, None, None)), donate_argnums=0)
    self.compiled = {}  # device index -> the step compiled ahead of time (compile)

  def _device(self, m: int) -> int:
    """The device of the chunk's member m: dealt in turn."""
    return m % len(self.devices)

  def start(self, hps: dict, seeds: jax.Array) -> base.Chunk:
    chunk = base.Chunk([], [])
    for m in range(len(seeds)):
      member = jax.tree.map(lambda x, m=m: x[m : m + 1], (hps, seeds))
      member = jax.device_put(member, self.devices[self._device(m)])
      chunk.hps.append(member[0])
      chunk.carries.append(self.init(*member))
    return chunk

  def compile(self, chunk: base.Chunk, length: int) -> None:
    del length  # one step a call
    for m, (carry, hp) in enumerate(zip(chunk.carries, chunk.hps, strict=True)):
      d = self._device(m)
      if d not in self.compiled:
        lowered = self.step.lower(carry, hp, jnp.int32(0), self.splits[d])
        self.compiled[d] = lowered.compile()

  def advance(self, chunk: base.Chunk, t0: int, length: int) -> tuple:
    outs = [[] for _ in chunk.carries]
    for t in range(t0, t0 + length):
      for m, hp in enumerate(chunk.hps):  # dispatched, not waited for: the devices overlap
        d = self._device(m)
        step = self.compiled.get(d, self.step)
        chunk.carries[m], out = step(chunk.carries[m], hp, jnp.int32(t), self.splits[d])
        outs[m].append(out)
    jax.block_until_ready(outs)  # before NumPy's conversion: Ctrl-C stops the wait at once
    per_member = [jax.tree.map(lambda *xs: jnp.concatenate(xs, axis=1), *o) for o in outs]
    return base.stack(per_member)

  def evaluate(self, chunk: base.Chunk) -> tuple:
    return base.stack(
      [self.evaluate_program(c, self.splits[self._device(m)]) for m, c in enumerate(chunk.carries)]
    )
