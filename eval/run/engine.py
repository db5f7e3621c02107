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
boolean, an integer count, None) train in separate programs
(eval.run.member.split_hparams). One member's step and evaluation are
eval.run.member's.

Divergence. A member whose training loss is NaN or Inf at step t is diverged
at t (a non-finite parameter makes the next loss non-finite). From then on its
curves read None and its final metrics are those of its last evaluation before
t: the record is frozen there. Its arithmetic goes on inside the batch but
nothing crosses members (vmap), so the others are unaffected, bit for bit.
Each evaluation also checks the parameters and validation loss.

Layout (eval.run.layout). The program above is strategy "vmap"; the members
of a device may instead run one after another, inside one program ("map",
lax.map in place of vmap) or one call per member and step from the host
("host"). Each strategy is a class of eval.run.strategies, built by name
from strategies.BY_NAME; eval.run.layout's rule picks the name per backend
and task kind. The layout is recorded in every record's environment.

Memory and devices. Members are split into chunks of at most `max_members`
(default: as many as fit half the device's memory, eval.run.layout), each
chunk padded to a multiple of the local device count with copies of its
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
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from eval.run import layout as layout_lib
from eval.run import strategies
from eval.run.layout import (
  Layout,
  choose_layout,
  convolutional,
  default_max_members,
  default_strategy,
  device_memory_bytes,
  one_device_per_core,
)
from eval.run.member import (
  EMA_PREFIX,
  EVAL_SPLITS,
  QUANTITIES,
  Carry,
  find_quantities,
  member_functions,
  split_hparams,
)
from eval.run.strategies import STRATEGIES
from rllc import catalog
from rllc.analysis import step as step_lib
from tasks.interface import EngineTask

# The engine's public names, some of them its parts' (eval.run.member, .layout, .strategies).
__all__ = [
  "EMA_PREFIX",
  "EVAL_SPLITS",
  "QUANTITIES",
  "STRATEGIES",
  "Carry",
  "GridResult",
  "Layout",
  "Programs",
  "Schedule",
  "choose_layout",
  "convolutional",
  "default_max_members",
  "default_strategy",
  "device_memory_bytes",
  "find_quantities",
  "member_arrays",
  "member_functions",
  "one_device_per_core",
  "split_hparams",
  "train_grid",
]


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


@dataclasses.dataclass
class GridResult:
  """What a grid run gives back, in the order of the members."""

  members: list[dict]  # per member: name, hparams, seed, status, diverged_step, final, curves
  params: Any  # final parameters, a leading member axis (a diverged member's are garbage)
  model_state: Any  # final model state, same layout
  layout: Layout  # how the members were laid out


class Programs:
  """The compiled functions of one group of members, in one layout, reused by its chunks.

  The `strategy` argument names the layout (eval.run.strategies.BY_NAME);
  the attribute `strategy` is that layout's Strategy object, which compiles
  the group's member functions (member_functions) for it (n members a chunk:
  `width`). `run` trains one chunk through its interface: start, then
  advance and evaluate once per evaluation interval of the schedule.
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
    layout_lib.check_strategy(strategy)
    functions = member_functions(task, optimizer, static)
    self.schedule = schedule
    self.strategy = strategies.BY_NAME[strategy](
      functions, task.splits, schedule.intervals(), devices, width=width
    )

  def run(self, hps: dict, seeds: jax.Array, progress: Callable[[int], None]) -> tuple[dict, Carry]:
    """Trains one chunk of members (padded to the device count); host arrays out."""
    chunk = self.strategy.start(hps, seeds)
    losses, quantities, evals = [], [], []
    t0 = 0
    for length in self.schedule.intervals():
      loss, quantity = self.strategy.advance(chunk, t0, length)
      t0 += length
      metrics, finite = self.strategy.evaluate(chunk)
      # The calls above only dispatch. Wait for them here, where Ctrl-C raises
      # KeyboardInterrupt at once (NumPy's conversion below would hold it until
      # the interval's call returned); the process then ends when that call does.
      jax.block_until_ready((loss, quantity, metrics, finite))
      losses.append(np.asarray(loss))
      quantities.append(jax.tree.map(np.asarray, quantity))
      evals.append((t0, jax.tree.map(np.asarray, metrics), np.asarray(finite)))
      progress(length)
    # What train_grid returns of the members: keys and optimizer states stay behind.
    carry = strategies.base.stack(
      [c._replace(opt_state=None, data_key=None, step_key=None, ema=None) for c in chunk.carries]
    )
    host = {
      "loss": np.concatenate(losses, axis=1),  # (members, steps)
      "quantities": {k: np.concatenate([q[k] for q in quantities], axis=1) for k in quantities[0]},
      "evals": evals,
      "diverged_at": np.asarray(carry.diverged_at),
    }
    return host, carry


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
  resolved: Sequence[dict] | None = None,
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
    strategy: a name of STRATEGIES (default: default_strategy for the backend).
    devices: devices to shard the member axis over (default: all local ones).
    progress: called with the member-steps just made (members x steps),
      after every interval of every chunk.
    on_layout: called with the layout (choose_layout) before any training.
    resolved: each member's hyperparameters as `optimizer.resolve` gives them,
      where the caller has them already (a planned job, eval.run.bench);
      default: resolved here.

  Returns:
    A GridResult, members in the order given.

  Raises:
    TypeError: a task without the engine's interface, naming what it lacks.
    ValueError: an unknown hyperparameter (before any training).
  """
  _check_task(task)
  devices = list(devices if devices is not None else jax.local_devices())
  if resolved is None:
    resolved = [optimizer.resolve(hp) for hp, _ in members]  # validates every member
  elif len(resolved) != len(members):
    raise ValueError(f"{len(resolved)} resolved settings for {len(members)} members")
  layout = choose_layout(
    task, optimizer, members, devices, max_members=max_members, strategy=strategy
  )
  if on_layout is not None:
    on_layout(layout)
  return _train_groups(task, optimizer, members, resolved, schedule, devices, layout, progress)


def _train_groups(task, optimizer, members, resolved, schedule, devices, layout, progress):
  """Each group of members (split_hparams) in its own programs, chunk by chunk: a GridResult."""
  groups, vectorized = split_hparams(members)
  results: list[dict] = [{} for _ in members]
  parts, order = [], []
  size = layout.max_members
  for group in groups:
    first = members[group[0]][0]
    static = {k: v for k, v in first.items() if k not in vectorized}
    width = min(size, len(group))
    programs = Programs(
      task, optimizer, static, schedule, devices, width=width, strategy=layout.strategy
    )
    for start in range(0, len(group), size):
      chunk = group[start : start + size]
      host, carry = _run_chunk(programs, members, chunk, vectorized, len(devices), progress)
      for j, i in enumerate(chunk):
        results[i] = _member_result(optimizer, members[i][1], resolved[i], host, j, schedule)
      count = len(chunk)  # the padding dropped
      kept = (carry.params, carry.model_state)
      parts.append(jax.tree.map(lambda x, n=count: np.asarray(x)[:n], kept))
      order.extend(chunk)
  inverse = np.argsort(np.asarray(order))
  params, model_state = jax.tree.map(lambda *xs: np.concatenate(xs)[inverse], *parts)
  return GridResult(members=results, params=params, model_state=model_state, layout=layout)


def member_arrays(
  members: Sequence[tuple[dict, int]], vectorized: Sequence[str]
) -> tuple[dict, jax.Array]:
  """The members' varying hyperparameters (float32) and seeds, as arrays of the member axis.

  `vectorized`: the names that vary (split_hparams); the others are the
  program's constants.
  """
  hps = {k: jnp.asarray([hp[k] for hp, _ in members], jnp.float32) for k in vectorized}
  return hps, jnp.asarray([seed for _, seed in members], jnp.int32)


def _run_chunk(programs, members, chunk, vectorized, devices, progress) -> tuple[dict, Carry]:
  """One chunk of member indices, padded to a multiple of `devices` with its first, trained."""
  padded = chunk + [chunk[0]] * (-len(chunk) % devices)
  hps, seeds = member_arrays([members[i] for i in padded], vectorized)

  def report(length):
    if progress is not None:
      progress(len(chunk) * length)

  return programs.run(hps, seeds, report)


def _member_result(optimizer, seed, resolved, host: dict, j: int, schedule: Schedule) -> dict:
  """Member j of a trained chunk: name, hyperparameters, seed, then _member_record's fields."""
  evals = np.asarray([t for t, _, _ in host["evals"]])
  law = host["quantities"].get("law")  # per step: the law of the update evals - 1
  laws = None if law is None else law[j][evals - 1]
  effective = step_lib.effective_steps(optimizer, resolved, evals, laws)
  return {
    "name": optimizer.result_name(resolved),
    "hparams": resolved,
    "seed": seed,
    **_member_record(host, j, schedule, effective),
  }
