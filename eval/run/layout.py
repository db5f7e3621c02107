"""How a grid's members are laid out over programs and devices: the layout and its rule.

A layout is a strategy (eval.run.strategies: "vmap", "map" or "host"), the
devices the member axis is sharded over, and the members a program call
holds. The strategy comes from RULE, a table keyed by backend and task kind,
measured by eval.experiments.bench_engine (the README's Speed section); a
new measurement changes one line of it.

Why the rule is what it is. On a CPU (bench_engine's rows on mnist-mlp and
mnist-conv), dense layers batch into larger matmuls, which XLA:CPU runs
faster than the members' own ("vmap"); vmap of a convolution whose weights
differ between members is a grouped convolution, which XLA:CPU runs 4-5x
slower than the members' own convolutions one after another in a compiled
loop ("map", 1.3x "host" on mnist-conv: no dispatch per step). That loop is
fast only because tasks.models' convolutions have their gradients in
canonical layouts (with JAX's own, a conv step in a loop ran 60x slower, and
"host" was the rule). On other backends batching is what the hardware is for
and grouped convolutions are native kernels: "vmap" (not measured here;
bench_engine's rows on that backend say whether the rule holds there).

The members a call holds: as many as fit half the device's memory, from one
member's state (a CPU's share of the host's memory where the device reports
none), never more than the widest group padded to the devices.
"""

import dataclasses
import math
import os
import re
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

from eval.run import member as member_lib
from eval.run import strategies
from rllc import catalog
from tasks.interface import EngineTask

CONV = "conv"  # a task whose model has convolutions (convolutional)
DENSE = "dense"  # any other
# (backend, task kind) -> strategy, from eval.experiments.bench_engine's rows.
RULE: dict[tuple[str, str], str] = {
  ("cpu", CONV): "map",
  ("cpu", DENSE): "vmap",
}
# A backend the rule does not name (GPUs, TPUs): batching is what it is for.
OTHERWISE = "vmap"
# Chunks are sized so that one member's state, times this factor for the
# step's temporaries, fits the budget below.
_WORKSPACE_FACTOR = 8


@dataclasses.dataclass(frozen=True)
class Layout:
  """How the members of a grid are laid out over programs and devices.

  A member's bits depend on it (XLA compiles a batched step differently from a
  lone one), so it is recorded in every record's environment, and what decides
  it beside the task, optimizer and protocol (the backend and device count)
  enters the record's key (eval.run.bench.plan).
  """

  strategy: str  # one of strategies.STRATEGIES
  devices: int  # devices the member axis is sharded over
  max_members: int  # members per program call (a chunk), a multiple of `devices`

  def __str__(self) -> str:
    return f"{self.strategy} over {self.devices} device(s), <= {self.max_members} members a call"


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


def convolutional(task: EngineTask) -> bool:
  """Whether the task's model has convolutions: a parameter of rank 3 or more (a kernel HWIO)."""
  params, _ = jax.eval_shape(task.init_with_state, jax.random.key(0))
  return any(len(x.shape) >= 3 for x in jax.tree.leaves(params))


def task_kind(task: EngineTask) -> str:
  """The task's kind as RULE keys it: CONV or DENSE."""
  return CONV if convolutional(task) else DENSE


def default_strategy(task: EngineTask, backend: str) -> str:
  """How a device runs its members: RULE's strategy for the backend and task kind.

  Today's rule: "map" for convolutions on a CPU, else "vmap" (the module
  docstring says why).
  """
  return RULE.get((backend, task_kind(task)), OTHERWISE)


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


def check_strategy(strategy: str) -> None:
  """ValueError unless `strategy` names a layout strategy, listing the valid ones."""
  if strategy not in strategies.BY_NAME:
    raise ValueError(
      f"unknown layout strategy {strategy!r}; valid: {', '.join(strategies.STRATEGIES)}"
    )


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
    task, optimizer, members: as eval.run.engine.train_grid takes them.
    devices: the devices the member axis is sharded over.
    max_members: members per program call (default: a memory estimate over
      one member's state, default_max_members).
    strategy: one of strategies.STRATEGIES (default: default_strategy for the backend).
  """
  groups, vectorized = member_lib.split_hparams(members)
  if max_members is None:
    first = members[groups[0][0]][0]
    init = member_lib.member_functions(
      task, optimizer, {k: v for k, v in first.items() if k not in vectorized}
    ).init
    example = {k: jnp.float32(first[k]) for k in vectorized}
    max_members = default_max_members(init, example, devices[0])
  size = max(len(devices), max_members - max_members % len(devices))
  # No call holds more than the widest group, padded to the devices: the
  # layout says what a call holds, not only the memory cap.
  widest = max(len(group) for group in groups)
  size = min(size, -(-widest // len(devices)) * len(devices))
  return Layout(strategy or default_strategy(task, devices[0].platform), len(devices), size)
