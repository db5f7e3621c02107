"""One member's program: initialization, an interval of steps, and an evaluation.

A member is one (hyperparameter setting, seed) of a grid. The functions here
are of one member; a strategy (eval.run.strategies) lays several out over
programs and devices. One member's step is the usual one: draw the batch by
index gather (`task.splits.batch`, tasks.image_tasks), value and gradient of
the loss, `tx.update(grads, state, params, value=loss)`, apply. The seed s
gives three keys, `split(key(s), 3)`: initialization, data order, per-step
randomness (augmentation); so members with the same seed share their
initialization and batches (common random numbers across the grid).

A member with the hyperparameter `ema` carries the exponential moving
average of its parameters,

  EMA_0 = theta_0,   EMA_t = decay EMA_{t-1} + (1 - decay) theta_t,

and is evaluated at it too, beside the raw iterate.
"""

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from eval.store import records as records_lib
from rllc import catalog
from tasks.interface import EngineTask

# Optimizer-state fields reported as curves, where an optimizer has them.
QUANTITIES = ("law", "beta")
EVAL_SPLITS = ("valid", "test")
# The curves and final metrics of the parameters' EMA carry this prefix: ema_valid_loss, ...
EMA_PREFIX = records_lib.EMA_PREFIX


class Carry(NamedTuple):
  """One member's training state between steps (a leading member axis when batched)."""

  params: Any  # model parameters
  model_state: Any  # BatchNorm statistics, or None
  opt_state: Any  # the optimizer's state (optax.with_extra_args_support wrapped)
  data_key: jax.Array  # key of the batch order
  step_key: jax.Array  # key of per-step randomness (augmentation)
  diverged_at: jax.Array  # int32: first step with a non-finite loss, -1 while finite
  ema: Any = None  # the parameters' exponential moving average, or None (no `ema` hyperparameter)


class MemberFunctions(NamedTuple):
  """The three functions of one member (member_functions), to be laid out by a strategy."""

  init: Callable  # (hp, seed) -> Carry
  interval: Callable  # (carry, hp, t0, splits, length, unroll) -> (Carry, (losses, quantities))
  evaluate: Callable  # (carry, splits) -> ({split: (loss, accuracy)}, parameters all finite)


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


def member_functions(task: EngineTask, optimizer: catalog.Entry, static: dict) -> MemberFunctions:
  """init(hp, seed), interval(carry, hp, t0, splits, length), evaluate(carry, splits): one member.

  Args:
    task: a task of the engine's interface (tasks.interface.EngineTask).
    optimizer: its catalog entry.
    static: hyperparameters that are the same for every member of the program.

  Returns:
    Three functions of one member, to be laid out by a strategy: `init` ->
    Carry; `interval` -> (Carry, (per-step losses, per-step quantities)), its
    `length` steps a lax.scan or, with `unroll=True`, unrolled; `evaluate` ->
    per split (loss, accuracy), and whether the parameters are all finite.
    The data comes in as `splits` (task.splits, a pytree), an argument rather
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
    step = functools.partial(_step, task.with_splits(splits), transformation(hp), decay(hp))
    if not unroll:
      return jax.lax.scan(step, carry, t0 + jnp.arange(length))
    # Unrolled: no while loop at all (a scan's unroll=True keeps one of one
    # trip, which cost a conv step with JAX's own gradients 10x on XLA:CPU).
    outs = []
    for i in range(length):
      carry, out = step(carry, t0 + i)
      outs.append(out)
    return carry, jax.tree.map(lambda *xs: jnp.stack(xs), *outs)

  return MemberFunctions(init, interval, functools.partial(_evaluate, task))


def _step(on: EngineTask, tx, decay, carry: Carry, t) -> tuple[Carry, tuple]:
  """One training step of one member on the task `on` (its splits bound): (Carry, outputs)."""
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
    ema=_ema_step(carry.ema, params, decay),
  )
  return new, (loss, find_quantities(opt_state))


def _evaluate(task: EngineTask, carry: Carry, splits) -> tuple[dict, jax.Array]:
  """Per split (loss, accuracy) of the parameters (and of their EMA), and whether all finite."""
  on = task.with_splits(splits)
  metrics = {split: on.evaluate(carry.params, carry.model_state, split) for split in EVAL_SPLITS}
  if carry.ema is not None:  # the average, beside the raw iterate (the same model state)
    for split in EVAL_SPLITS:
      metrics[f"{EMA_PREFIX}{split}"] = on.evaluate(carry.ema, carry.model_state, split)
  finite = jnp.all(jnp.array([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(carry.params)]))
  return metrics, finite


def _ema_step(ema, params, decay):
  """EMA_t = decay EMA_{t-1} + (1 - decay) theta_t; None stays None (no EMA)."""
  if ema is None:
    return None
  return jax.tree.map(lambda e, p: decay * e + (1 - decay) * p, ema, params)
