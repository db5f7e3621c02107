"""Vectorized training: many (hyperparameter setting, seed) runs of one optimizer as one program.

  entry = catalog.lookup("M(0.9)+M(0)")
  result = engine.train_grid(task, entry, members, engine.Schedule(1000, 200, 20))

The inputs are typed: `task` satisfies tasks.interface.EngineTask (the
suite's ImageTask does) and the optimizer is a catalog entry
(rllc.catalog.Entry: its transformation built from the members'
hyperparameters, traced or not, and each record's name from the concrete
ones). `members` is a list of (hyperparameters, seed). Every member trains
the same task with the same optimizer; the program is

  vmap over members ( lax.scan over the steps of one evaluation interval ( step ) )

compiled once and called once per evaluation interval, so a grid of 18
settings x 3 seeds costs one compilation and one dispatch per interval, not
54 of each. Hyperparameters that are floats (or tuples of floats) and differ
between members are arrays of the vmapped axis; everything else is a
compile-time constant, and members that differ in a non-float value (a
boolean, an integer count, None) train in separate programs.

One member's step is the usual one: draw the batch by index gather
(`task.splits.batch`, tasks.image_tasks), value and gradient of the loss,
`tx.update(grads, state, params, value=loss)`, apply. The seed s gives three
keys, `split(key(s), 3)`: initialization, data order, per-step randomness
(augmentation); so members with the same seed share their initialization and
batches (common random numbers across the grid).

Divergence. A member whose training loss is NaN or Inf at step t is diverged
at t (a non-finite parameter makes the next loss non-finite). From then on its
curves read None and its final metrics are those of its last evaluation before
t: the record is frozen there. Its arithmetic goes on inside the batch but
nothing crosses members (vmap), so the others are unaffected, bit for bit.
Each evaluation also checks the parameters and validation loss.

Layout (Layout, choose_layout). The program above is strategy "vmap"; the
members of a device may instead run one after another, inside one program
("map", lax.map in place of vmap) or one call per member and step from the
host ("host"). A rule picks the strategy (default_strategy): "map" for a
conv task on a CPU, "vmap" otherwise, from eval.experiments.bench_engine's
rows. The layout is recorded in every record's environment.

Memory and devices. Members are split into chunks of at most `max_members`
(default: as many as fit half the device's memory, from one member's state;
a CPU's share of the host's memory where the device reports none),
each chunk padded to a multiple of the local device count with copies of its
first member (dropped from the results). With several local devices the
member axis is sharded over them (jax.sharding, a 1-D mesh named "grid").

Curves. Per-step training losses and the optimizer's own quantities (RLLC's
learning law `law`, adaptive memory's `beta`: any NamedTuple field of those
names in the optimizer state) come back from each interval and are reduced on
the host to one point per `log_every` steps: the mean training loss over the
window, the quantity at its last step. At each evaluation (every `eval_every`
steps and the last step) validation and test loss and accuracy over the whole
splits, and the effective step of the last update (rllc.analysis.step: lr(t)
times the optimizer's gain, c1(t) W(L_t) for a memory, from the member's
hyperparameters and per-step law on the host: no change to the program).

Iterate averaging. A member with the hyperparameter `ema` (an optimizer named
NAME+ema(DECAY), rllc.schedule) carries the exponential moving average of its
parameters, EMA_0 = theta_0, EMA_t = decay EMA_{t-1} + (1 - decay) theta_t,
and is evaluated at it too: curves and final metrics ema_valid_loss, ...,
beside the raw iterate's, which stay bit for bit what they are without it.
"""

import dataclasses
import functools
import math
import os
import re
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from eval.store import records as records_lib
from rllc import catalog
from rllc.analysis import step as step_lib
from tasks.interface import EngineTask

# Optimizer-state fields reported as curves, where an optimizer has them.
QUANTITIES = ("law", "beta")
EVAL_SPLITS = ("valid", "test")
# The curves and final metrics of the parameters' EMA carry this prefix: ema_valid_loss, ...
EMA_PREFIX = records_lib.EMA_PREFIX
# Chunks are sized so that one member's state, times this factor for the
# step's temporaries, fits the budget below.
_WORKSPACE_FACTOR = 8
# How the members of a device share it (see Programs): batched by vmap, one
# after another by lax.map inside one program, or one after another from the
# host, a program call per member and step.
STRATEGIES = ("vmap", "map", "host")


@dataclasses.dataclass(frozen=True)
class Schedule:
  """How long to train and how often to record."""

  steps: int  # training steps
  eval_every: int  # steps between evaluations of the validation and test splits
  log_every: int  # steps per point of the training-loss and quantity curves

  def __post_init__(self):
    for field in ("steps", "eval_every", "log_every"):
      value = getattr(self, field)
      if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{field} must be a positive integer, got {value!r}")

  def intervals(self) -> list[int]:
    """Lengths of the scanned intervals between evaluations (the last may be shorter)."""
    full, rest = divmod(self.steps, self.eval_every)
    return [self.eval_every] * full + ([rest] if rest else [])


class Carry(NamedTuple):
  """One member's training state between steps (a leading member axis when vmapped)."""

  params: Any  # model parameters
  model_state: Any  # BatchNorm statistics, or None
  opt_state: Any  # the optimizer's state (optax.with_extra_args_support wrapped)
  data_key: jax.Array  # key of the batch order
  step_key: jax.Array  # key of per-step randomness (augmentation)
  diverged_at: jax.Array  # int32: first step with a non-finite loss, -1 while finite
  ema: Any = None  # the parameters' exponential moving average, or None (no `ema` hyperparameter)


@dataclasses.dataclass(frozen=True)
class Layout:
  """How the members of a grid are laid out over programs and devices.

  A member's bits depend on it (XLA compiles a batched step differently from a
  lone one), so it is recorded in every record's environment, and what decides
  it beside the task, optimizer and protocol (the backend and device count)
  enters the record's key (eval.run.bench.plan).
  """

  strategy: str  # one of STRATEGIES
  devices: int  # devices the member axis is sharded over
  max_members: int  # members per program call (a chunk), a multiple of `devices`

  def __str__(self) -> str:
    return f"{self.strategy} over {self.devices} device(s), <= {self.max_members} members a call"


@dataclasses.dataclass
class GridResult:
  """What a grid run gives back, in the order of the members."""

  members: list[dict]  # per member: name, hparams, seed, status, diverged_step, final, curves
  params: Any  # final parameters, a leading member axis (a diverged member's are garbage)
  model_state: Any  # final model state, same layout
  layout: Layout  # how the members were laid out


def one_device_per_core() -> None:
  """Splits the CPU into one XLA device per core, with a thread pool one larger.

  XLA:CPU runs a vmapped grid's small batched matmuls on about one core per
  device; the engine shards the grid's runs over the local devices, so one
  device per core puts every core to work (measured by eval.experiments.bench_engine:
  see the README's Speed section). A device count already in XLA_FLAGS wins.

  The devices share one intra-op thread pool, of one thread per core unless
  PJRT_NPROC says otherwise. jaxlib's batched LAPACK kernels (RLLC's eigh of
  its Gram matrix, vmapped over the members) split a large enough batch into
  chunks queued on that pool and block their thread until the chunks are done.
  When every device runs such a kernel on a pool thread at once, every thread
  waits for chunks that no thread is left to run: the process hangs (jaxlib
  0.10.2 on 2 cores and 2 devices: from k = 16 units with 12 runs per device,
  at k = 32 with 4). With a pool of at least devices + 1 threads one thread is
  always free to run the chunks, so PJRT_NPROC is set to that (unless set by
  hand). That pool gave the same bits as the default one in every record of a
  bench of SGD, Adam, AM-AdamW and RLLC (k = 2 and 4) on digits-mlp and
  mnist-mlp.

  It must run before JAX's first computation, which creates the devices and
  the pool; it does not touch GPUs.
  """
  cores = len(os.sched_getaffinity(0))
  flags = os.environ.get("XLA_FLAGS", "")
  given = re.findall(r"--xla_force_host_platform_device_count=(\d+)", flags)
  devices = int(given[-1]) if given else cores  # XLA reads the last one
  if not given:
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={cores}".strip()
  if "PJRT_NPROC" not in os.environ:
    os.environ["PJRT_NPROC"] = str(max(cores, devices + 1))


def split_hparams(members: Sequence[tuple[dict, int]]) -> tuple[list[list[int]], list[str]]:
  """Groups members that can share one program, and the names that vary as arrays.

  Returns:
    (groups of member indices, names of float hyperparameters that vary).
  """
  names = sorted({name for hp, _ in members for name in hp})
  varying = [n for n in names if len({_freeze(hp.get(n)) for hp, _ in members}) > 1]
  vectorizable = [n for n in varying if all(_is_floaty(hp.get(n)) for hp, _ in members)]
  groups: dict[tuple, list[int]] = {}
  for i, (hp, _) in enumerate(members):
    static = tuple((n, _freeze(hp.get(n))) for n in names if n not in vectorizable and n in hp)
    groups.setdefault(static, []).append(i)
  return list(groups.values()), vectorizable


def _is_floaty(value) -> bool:
  if isinstance(value, bool):
    return False
  if isinstance(value, float):
    return True
  if isinstance(value, (tuple, list)):
    return len(value) > 0 and all(
      isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    )
  return False


def _freeze(value):
  return tuple(value) if isinstance(value, list) else value


def find_quantities(opt_state) -> dict[str, jax.Array]:
  """The fields named in QUANTITIES of the NamedTuples inside an optimizer state.

  A field that is itself a pytree (adaptive memory's per-leaf beta) comes back
  as the vector of its leaves, in tree order.
  """
  found = {}

  def visit(node):
    if isinstance(node, tuple) and hasattr(node, "_fields"):
      for field in QUANTITIES:
        if field in node._fields and field not in found:
          leaves = jax.tree.leaves(getattr(node, field))
          found[field] = leaves[0] if len(leaves) == 1 else jnp.stack(leaves)
    if isinstance(node, (tuple, list)):
      for child in node:
        visit(child)
    elif isinstance(node, dict):
      for child in node.values():
        visit(child)

  visit(opt_state)
  return found


def member_functions(
  task: EngineTask, optimizer: catalog.Entry, static: dict
) -> tuple[Callable, Callable, Callable]:
  """init(hp, seed), interval(carry, hp, t0, splits, length), evaluate(carry, splits): one member.

  Args:
    task: a task of the engine's interface (tasks.interface.EngineTask).
    optimizer: its catalog entry.
    static: hyperparameters that are the same for every member of the program.

  Returns:
    Three functions of one member, to be vmapped: `init` -> Carry; `interval`
    -> (Carry, (per-step losses, per-step quantities)), its `length` steps a
    lax.scan or, with `unroll=True`, unrolled; `evaluate` -> per
    split (loss, accuracy), and whether the parameters are all finite. The
    data comes in as `splits` (task.splits, a pytree), an argument rather
    than a constant compiled into the program.
  """

  def transformation(hp):
    return optax.with_extra_args_support(optimizer.transformation(**static, **hp))

  def decay(hp):  # the EMA's decay (given, or bound by the name), a vmapped value, or None
    return hp.get("ema", static.get("ema", optimizer.options.get("ema")))

  def init(hp, seed):
    init_key, data_key, step_key = jax.random.split(jax.random.key(seed), 3)
    params, model_state = task.init_with_state(init_key)
    opt_state = transformation(hp).init(params)
    ema = None if decay(hp) is None else jax.tree.map(jnp.copy, params)  # EMA_0 = theta_0
    return Carry(params, model_state, opt_state, data_key, step_key, jnp.int32(-1), ema)

  def interval(carry, hp, t0, splits, length, unroll=False):
    tx = transformation(hp)
    on = task.with_splits(splits)

    def step(carry, t):
      batch = on.splits.batch("train", carry.data_key, t)

      def loss_fn(params):
        return on.loss_with_state(
          params, carry.model_state, jax.random.fold_in(carry.step_key, t), batch
        )

      (loss, model_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(carry.params)
      updates, opt_state = tx.update(grads, carry.opt_state, carry.params, value=loss)
      params = optax.apply_updates(carry.params, updates)
      fresh = (carry.diverged_at < 0) & ~jnp.isfinite(loss)
      diverged_at = jnp.where(fresh, t, carry.diverged_at)
      new = carry._replace(
        params=params,
        model_state=model_state,
        opt_state=opt_state,
        diverged_at=diverged_at,
        ema=_ema_step(carry.ema, params, decay(hp)),
      )
      return new, (loss, find_quantities(opt_state))

    if not unroll:
      return jax.lax.scan(step, carry, t0 + jnp.arange(length))
    # Unrolled: no while loop at all (a scan's unroll=True keeps one of one
    # trip, which cost a conv step with JAX's own gradients 10x on XLA:CPU).
    outs = []
    for i in range(length):
      carry, out = step(carry, t0 + i)
      outs.append(out)
    return carry, jax.tree.map(lambda *xs: jnp.stack(xs), *outs)

  def evaluate(carry, splits):
    on = task.with_splits(splits)
    metrics = {split: on.evaluate(carry.params, carry.model_state, split) for split in EVAL_SPLITS}
    if carry.ema is not None:  # the average, beside the raw iterate (the same model state)
      for split in EVAL_SPLITS:
        metrics[f"{EMA_PREFIX}{split}"] = on.evaluate(carry.ema, carry.model_state, split)
    finite = jnp.all(jnp.array([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(carry.params)]))
    return metrics, finite

  return init, interval, evaluate


def _ema_step(ema, params, decay):
  """EMA_t = decay EMA_{t-1} + (1 - decay) theta_t; None stays None (no EMA)."""
  if ema is None:
    return None
  return jax.tree.map(lambda e, p: decay * e + (1 - decay) * p, ema, params)


def _check_task(task) -> None:
  """TypeError unless `task` has what tasks.interface.EngineTask names."""
  if isinstance(task, EngineTask):
    return
  needed = ("name", "splits", "init_with_state", "loss_with_state", "evaluate", "with_splits")
  lacks = [m for m in needed if not hasattr(task, m)]
  raise TypeError(
    f"{type(task).__name__} is not a task the engine can train: it lacks {', '.join(lacks)}"
    " (tasks.interface.EngineTask lists what a task needs)"
  )


def _tree_bytes(tree) -> int:
  return sum(math.prod(x.shape) * x.dtype.itemsize for x in jax.tree.leaves(tree))


def device_memory_bytes(device: jax.Device) -> int:
  """The memory one device has: its allocator's limit where it reports one (GPUs, TPUs).

  A CPU device reports none: it gets an equal share of the host's physical
  memory with the other devices of its platform (one_device_per_core splits
  a CPU into several).
  """
  stats = device.memory_stats() if hasattr(device, "memory_stats") else None
  if stats and stats.get("bytes_limit"):
    return int(stats["bytes_limit"])
  host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
  return host // max(1, len(jax.local_devices(backend=device.platform)))


def default_max_members(init: Callable, hp_example: dict, device: jax.Device) -> int:
  """How many members fit one program: a memory budget over one member's state.

  The budget is half the device's memory (device_memory_bytes); one member
  is counted as `_WORKSPACE_FACTOR` times its Carry.
  """
  carry = jax.eval_shape(init, hp_example, jnp.int32(0))
  budget = device_memory_bytes(device) // 2
  return max(1, budget // max(1, _WORKSPACE_FACTOR * _tree_bytes(carry)))


def _windows(values: np.ndarray, log_every: int, reduce) -> np.ndarray:
  """One point per window of `log_every` steps (the last window may be shorter)."""
  return np.stack([reduce(values[s : s + log_every]) for s in range(0, len(values), log_every)])


def _nullable(x) -> float | None:
  x = float(x)
  return x if math.isfinite(x) else None


def _nullable_values(x):
  """A quantity (scalar or vector) as JSON numbers, None where not finite."""
  x = np.asarray(x)
  return _nullable(x) if x.ndim == 0 else [_nullable(v) for v in x]


def _unit_axis(f: Callable, in_axes: tuple) -> Callable:
  """f over a member axis of length 1, as vmap would be, without vmap's batched layouts."""

  def g(*args):
    args = [
      jax.tree.map(lambda x: x[0], a) if axis == 0 else a
      for a, axis in zip(args, in_axes, strict=True)
    ]
    return jax.tree.map(lambda x: x[None], f(*args))

  return g


def _sequential(f: Callable, in_axes: tuple) -> Callable:
  """f over a member axis by lax.map: one member after another, each its own unbatched program."""

  def g(*args):
    mapped = [a for a, axis in zip(args, in_axes, strict=True) if axis == 0]

    def one(xs):
      rest = iter(xs)
      return f(*[next(rest) if axis == 0 else a for a, axis in zip(args, in_axes, strict=True)])

    return jax.lax.map(one, mapped)

  return g


class Programs:
  """The compiled functions of one group of members, laid out by `strategy`, reused by its chunks.

  Strategies, each member's step being member_functions' own:

  - "vmap": one program per interval, vmap over the members (sharded over
    the devices), lax.scan over the steps;
  - "map": the same with lax.map in place of vmap, so each member's step is
    its unbatched program, the members of a device one after another;
  - "host": no loop inside a program: one call per member and step, of the
    member's step alone (no loop in the program), the members dealt to
    the devices in turn and dispatched asynchronously, so the devices run in
    parallel: a member's bits do not depend on the device count or chunk
    size.

  A program of one member on one device is the member's own function with a
  unit axis around it, not vmap, whose layouts cost a lone run about 13%
  (measured by eval.experiments.bench_engine's one-run rows); "host" uses it
  for every member.
  """

  def __init__(
    self,
    task: EngineTask,
    optimizer: catalog.Entry,
    static: dict,
    schedule: Schedule,
    devices,
    *,
    width: int,
    strategy: str = "vmap",
  ):
    if strategy not in STRATEGIES:
      raise ValueError(f"unknown layout strategy {strategy!r}; valid: {', '.join(STRATEGIES)}")
    init, interval, evaluate = member_functions(task, optimizer, static)
    self.schedule = schedule
    self.strategy = strategy
    self.devices = list(devices)
    if strategy == "host":
      self.splits = [jax.device_put(task.splits, d) for d in self.devices]
      self.init = jax.jit(_unit_axis(init, (0, 0)))
      self.evaluate = jax.jit(_unit_axis(evaluate, (0, None)))
      one_step = functools.partial(interval, length=1, unroll=True)
      self.step = jax.jit(_unit_axis(one_step, (0, 0, None, None)), donate_argnums=0)
      return
    if width == 1 and len(devices) == 1:
      over = _unit_axis
    else:
      over = jax.vmap if strategy == "vmap" else _sequential
    self.splits = jax.device_put(task.splits, self.devices[0])
    self.member_axis = None
    jit = jax.jit
    if len(devices) > 1:
      mesh = Mesh(np.array(devices), ("grid",))
      self.member_axis = NamedSharding(mesh, PartitionSpec("grid"))
      self.splits = jax.device_put(task.splits, NamedSharding(mesh, PartitionSpec()))
      if strategy == "map":  # each device maps over its own members
        inner = over

        def over(f, in_axes):
          specs = tuple(PartitionSpec("grid") if a == 0 else PartitionSpec() for a in in_axes)
          return jax.shard_map(
            inner(f, in_axes), mesh=mesh, in_specs=specs, out_specs=PartitionSpec("grid")
          )

      def jit(f, **kwargs):
        return jax.jit(f, out_shardings=self.member_axis, **kwargs)

    self.init = jit(over(init, in_axes=(0, 0)))
    self.evaluate = jit(over(evaluate, in_axes=(0, None)))
    self.interval = {
      length: jit(
        over(functools.partial(interval, length=length), in_axes=(0, 0, None, None)),
        donate_argnums=0,
      )
      for length in set(schedule.intervals())
    }

  def place(self, hps: dict, seeds: jax.Array) -> tuple[dict, jax.Array]:
    """The members' hyperparameters and seeds, sharded over the devices if several."""
    return jax.device_put((hps, seeds), self.member_axis or self.devices[0])

  def start(self, hps: dict, seeds: jax.Array) -> "_Chunk":
    """A chunk of members initialized on the devices, ready for `advance`."""
    if self.strategy != "host":
      hps, seeds = self.place(hps, seeds)
      return _Chunk([self.init(hps, seeds)], [hps])
    chunk = _Chunk([], [])
    for m in range(len(seeds)):
      member = jax.tree.map(lambda x, m=m: x[m : m + 1], (hps, seeds))
      member = jax.device_put(member, self.devices[m % len(self.devices)])
      chunk.hps.append(member[0])
      chunk.carries.append(self.init(*member))
    return chunk

  def advance(self, chunk: "_Chunk", t0: int, length: int) -> tuple:
    """`length` steps from step t0: the chunk moved on; (per-step losses, quantities)."""
    if self.strategy != "host":
      chunk.carries[0], out = self.interval[length](
        chunk.carries[0], chunk.hps[0], jnp.int32(t0), self.splits
      )
      return out
    outs = [[] for _ in chunk.carries]
    for t in range(t0, t0 + length):
      for m, hp in enumerate(chunk.hps):  # dispatched, not waited for: the devices overlap
        splits = self.splits[m % len(self.devices)]
        chunk.carries[m], out = self.step(chunk.carries[m], hp, jnp.int32(t), splits)
        outs[m].append(out)
    jax.block_until_ready(outs)  # before NumPy's conversion: Ctrl-C stops the wait at once
    per_member = [jax.tree.map(lambda *xs: jnp.concatenate(xs, axis=1), *o) for o in outs]
    return _stack(per_member)

  def measure(self, chunk: "_Chunk") -> tuple:
    """Each member's evaluation: (per split (loss, accuracy), parameters all finite)."""
    if self.strategy != "host":
      return self.evaluate(chunk.carries[0], self.splits)
    devices = len(self.devices)
    return _stack([self.evaluate(c, self.splits[m % devices]) for m, c in enumerate(chunk.carries)])

  def run(self, hps: dict, seeds: jax.Array, progress: Callable[[int], None]) -> tuple[dict, Carry]:
    """Trains one chunk of members (padded to the device count); host arrays out."""
    chunk = self.start(hps, seeds)
    losses, quantities, evals = [], [], []
    t0 = 0
    for length in self.schedule.intervals():
      loss, quantity = self.advance(chunk, t0, length)
      t0 += length
      metrics, finite = self.measure(chunk)
      # The calls above only dispatch. Wait for them here, where Ctrl-C raises
      # KeyboardInterrupt at once (NumPy's conversion below would hold it until
      # the interval's call returned); the process then ends when that call does.
      jax.block_until_ready((loss, quantity, metrics, finite))
      losses.append(np.asarray(loss))
      quantities.append(jax.tree.map(np.asarray, quantity))
      evals.append((t0, jax.tree.map(np.asarray, metrics), np.asarray(finite)))
      progress(length)
    # What train_grid returns of the members: keys and optimizer states stay behind.
    carry = _stack(
      [c._replace(opt_state=None, data_key=None, step_key=None, ema=None) for c in chunk.carries]
    )
    host = {
      "loss": np.concatenate(losses, axis=1),  # (members, steps)
      "quantities": {k: np.concatenate([q[k] for q in quantities], axis=1) for k in quantities[0]},
      "evals": evals,
      "diverged_at": np.asarray(carry.diverged_at),
    }
    return host, carry


@dataclasses.dataclass
class _Chunk:
  """A chunk's members in training: one carry with a member axis, or one per member ("host")."""

  carries: list  # Carry pytrees, each with a leading member axis
  hps: list  # the matching hyperparameter arrays


def _stack(trees: list):
  """Trees with a leading member axis, concatenated along it (on the host if on several devices)."""
  if len(trees) == 1:
    return trees[0]
  return jax.tree.map(lambda *xs: np.concatenate([np.asarray(x) for x in xs]), *trees)


def _member_record(host: dict, i: int, schedule: Schedule, effective: np.ndarray) -> dict:
  """Curves and final metrics of member i of a chunk, frozen at its divergence.

  Step numbers count completed steps. A member diverged at d had finite
  losses at steps 0..d-1: a training-loss window ending at e is kept when
  e <= d, an evaluation after t steps when t < d. `effective` is the
  member's effective step at each evaluation (rllc.analysis.step).
  """
  diverged = int(host["diverged_at"][i])
  for t, metrics, finite in host["evals"]:  # a non-finite parameter or validation loss
    bad = not finite[i] or not math.isfinite(float(metrics["valid"][0][i]))
    if bad and (diverged < 0 or t < diverged):
      diverged = t
      break
  horizon = schedule.steps + 1 if diverged < 0 else diverged

  def last(values):
    return values[-1]

  ends = _windows(np.arange(1, schedule.steps + 1), schedule.log_every, last)
  train = _windows(host["loss"][i], schedule.log_every, np.mean)
  curves: dict[str, list] = {
    "step": ends.tolist(),
    "train_loss": [
      _nullable(v) if e <= horizon else None for e, v in zip(ends, train, strict=True)
    ],
  }
  for name, values in host["quantities"].items():
    points = _windows(values[i], schedule.log_every, last)
    curves[name] = [
      _nullable_values(p) if e <= horizon else None for e, p in zip(ends, points, strict=True)
    ]
  curves["eval_step"] = [t for t, _, _ in host["evals"]]
  ema = [EMA_PREFIX + split for split in EVAL_SPLITS if EMA_PREFIX + split in host["evals"][0][1]]
  evaluated = [*EVAL_SPLITS, *ema]  # the splits, then the EMA's where there is one
  for split in evaluated:
    for j, metric in enumerate(("loss", "accuracy")):
      curves[f"{split}_{metric}"] = [
        _nullable(m[split][j][i]) if t < horizon else None for t, m, _ in host["evals"]
      ]
  curves["effective_step"] = [
    _nullable(v) if t < horizon else None
    for (t, _, _), v in zip(host["evals"], effective, strict=True)
  ]
  final = {}
  for column in ("train_loss", *(f"{s}_{m}" for s in evaluated for m in ("loss", "accuracy"))):
    kept = [v for v in curves[column] if v is not None]
    final[column] = kept[-1] if kept else None
  return {
    "status": "ok" if diverged < 0 else "diverged",
    "diverged_step": None if diverged < 0 else diverged,
    "final": final,
    "curves": curves,
  }


def convolutional(task: EngineTask) -> bool:
  """Whether the task's model has convolutions: a parameter of rank 3 or more (a kernel HWIO)."""
  params, _ = jax.eval_shape(task.init_with_state, jax.random.key(0))
  return any(len(x.shape) >= 3 for x in jax.tree.leaves(params))


def default_strategy(task: EngineTask, backend: str) -> str:
  """How a device runs its members: "map" for convolutions on a CPU, else "vmap".

  On a CPU (eval.experiments.bench_engine's rows, on mnist-mlp and
  mnist-conv: the README's Speed section): dense layers batch into larger
  matmuls, which XLA:CPU runs faster than the members' own ("vmap"); vmap of
  a convolution whose weights differ between members is a grouped
  convolution, which XLA:CPU runs 4-5x slower than the members' own
  convolutions one after another in a compiled loop ("map", 1.3x "host" on
  mnist-conv: no dispatch per step). That loop is fast only because
  tasks.models' convolutions have their gradients in canonical layouts (with
  JAX's own, a conv step in a loop ran 60x slower, and "host" was the rule).
  On other backends batching is what the hardware is for and grouped
  convolutions are native kernels: "vmap" (not measured here; bench_engine's
  rows on that backend say whether the rule holds there).
  """
  return "map" if backend == "cpu" and convolutional(task) else "vmap"


def choose_layout(
  task: EngineTask,
  optimizer: catalog.Entry,
  members: Sequence[tuple[dict, int]],
  devices: Sequence[jax.Device],
  *,
  max_members: int | None = None,
  strategy: str | None = None,
) -> Layout:
  """The layout train_grid uses: a function of the task, optimizer, members, backend and devices.

  Args:
    task, optimizer, members: as train_grid takes them.
    devices: the devices the member axis is sharded over.
    max_members: members per program call (default: a memory estimate over
      one member's state, default_max_members).
    strategy: one of STRATEGIES (default: default_strategy for the backend).
  """
  groups, vectorized = split_hparams(members)
  if max_members is None:
    first = members[groups[0][0]][0]
    init, _, _ = member_functions(
      task, optimizer, {k: v for k, v in first.items() if k not in vectorized}
    )
    example = {k: jnp.float32(first[k]) for k in vectorized}
    max_members = default_max_members(init, example, devices[0])
  size = max(len(devices), max_members - max_members % len(devices))
  # No call holds more than the widest group, padded to the devices: the
  # layout says what a call holds, not only the memory cap.
  widest = max(len(group) for group in groups)
  size = min(size, -(-widest // len(devices)) * len(devices))
  return Layout(strategy or default_strategy(task, devices[0].platform), len(devices), size)


def train_grid(
  task: EngineTask,
  optimizer: catalog.Entry,
  members: Sequence[tuple[dict, int]],
  schedule: Schedule,
  *,
  max_members: int | None = None,
  strategy: str | None = None,
  devices: Sequence[jax.Device] | None = None,
  progress: Callable[[int], None] | None = None,
  on_layout: Callable[[Layout], None] | None = None,
) -> GridResult:
  """Trains every (hyperparameters, seed) member of one optimizer on one task.

  Args:
    task: a task of the engine's interface (tasks.interface.EngineTask), e.g.
      tasks.registry.get_task(...).
    optimizer: its catalog entry (rllc.catalog.lookup(name_or_spec)).
    members: (hyperparameters, seed) pairs; hyperparameters as the entry
      takes them, concrete Python values.
    schedule: steps and recording intervals.
    max_members: members per compiled program (default: a memory estimate).
    strategy: "vmap" or "map" (default: default_strategy for the backend).
    devices: devices to shard the member axis over (default: all local ones).
    progress: called with the member-steps just made (members x steps),
      after every interval of every chunk.
    on_layout: called with the layout (choose_layout) before any training.

  Returns:
    A GridResult, members in the order given.

  Raises:
    TypeError: a task without the engine's interface, naming what it lacks.
    ValueError: an unknown hyperparameter (before any training).
  """
  _check_task(task)
  devices = list(devices if devices is not None else jax.local_devices())
  resolved = [optimizer.resolve(hp) for hp, _ in members]  # validates every member
  layout = choose_layout(
    task, optimizer, members, devices, max_members=max_members, strategy=strategy
  )
  if on_layout is not None:
    on_layout(layout)
  groups, vectorized = split_hparams(members)
  results: list[dict] = [{} for _ in members]
  params_parts, state_parts, order = [], [], []
  size = layout.max_members
  for group in groups:
    first = members[group[0]][0]
    static = {k: v for k, v in first.items() if k not in vectorized}
    programs = Programs(
      task,
      optimizer,
      static,
      schedule,
      devices,
      width=min(size, len(group)),
      strategy=layout.strategy,
    )
    for start in range(0, len(group), size):
      chunk = group[start : start + size]
      padded = chunk + [chunk[0]] * (-len(chunk) % len(devices))
      hps = {k: jnp.asarray([members[i][0][k] for i in padded], jnp.float32) for k in vectorized}
      seeds = jnp.asarray([members[i][1] for i in padded], jnp.int32)

      count = len(chunk)

      def report(length, n=count):
        if progress is not None:
          progress(n * length)

      host, carry = programs.run(hps, seeds, report)
      evals = np.asarray([t for t, _, _ in host["evals"]])
      for j, i in enumerate(chunk):
        _, seed = members[i]
        name = optimizer.result_name(resolved[i])
        results[i] = {"name": name, "hparams": resolved[i], "seed": seed}
        law = host["quantities"].get("law")  # per step: the law of the update evals - 1
        laws = None if law is None else law[j][evals - 1]
        effective = step_lib.effective_steps(optimizer, resolved[i], evals, laws)
        results[i].update(_member_record(host, j, schedule, effective))
      params_parts.append(jax.tree.map(lambda x, n=count: np.asarray(x)[:n], carry.params))
      state_parts.append(jax.tree.map(lambda x, n=count: np.asarray(x)[:n], carry.model_state))
      order.extend(chunk)
  inverse = np.argsort(np.asarray(order))
  params = jax.tree.map(lambda *xs: np.concatenate(xs)[inverse], *params_parts)
  model_state = jax.tree.map(lambda *xs: np.concatenate(xs)[inverse], *state_parts)
  return GridResult(members=results, params=params, model_state=model_state, layout=layout)
