"""Adapter exposing any optax transformation as a learned_optimization Optimizer.

learned_optimization's training loops (``eval_training``, ``training``) drive
optimizers through ``init`` / ``update`` / ``get_params`` / ``get_state``.
``OptaxAdapter`` implements that interface once for every optax
transformation, and forwards the training loss as ``value=`` so loss-aware
transformations can use it.
"""

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from rllc.compat import lo_compat

_opt_base = lo_compat.load("learned_optimization.optimizers.base")


class AdapterState(NamedTuple):
  """Optimizer state in the layout learned_optimization expects."""

  # Current model parameters; read back through ``Optimizer.get_params``.
  params: Any
  # Model state (e.g. batch-norm statistics) carried for the task; may be None.
  state: Any
  # State of the wrapped optax transformation.
  optax_opt_state: optax.OptState
  # Number of updates applied so far. An int32 array rather than a Python int
  # so that every call of the jitted ``update`` sees the same abstract type and
  # reuses one compiled program.
  iteration: jax.Array


class OptaxAdapter(_opt_base.Optimizer):
  """Runs an optax transformation inside learned_optimization's loops.

  Example::

    opt = OptaxAdapter(optax.sgd(0.1), "SGD_lr0.1")
    curves = eval_training.single_task_training_curves(task, opt, 100, key)
  """

  def __init__(
    self,
    tx: optax.GradientTransformation | optax.GradientTransformationExtraArgs,
    name: str,
  ):
    """Initializes the adapter.

    Args:
      tx: The transformation producing parameter updates (already scaled by
        the learning rate and sign, as for ``optax.apply_updates``).
      name: Stable identifier used as the results key by learned_optimization.
    """
    super().__init__()
    # Plain transformations get an update that accepts and drops ``value=``,
    # so the loss can be forwarded unconditionally.
    self._tx = optax.with_extra_args_support(tx)
    self._name = name

  @property
  def name(self) -> str:
    """The name given at construction."""
    return self._name

  def init(
    self,
    params: Any,
    model_state: Any = None,
    num_steps: int | None = None,
    key: jax.Array | None = None,
    **kwargs: Any,
  ) -> AdapterState:
    """Builds the initial state; ``num_steps``, ``key`` and kwargs are unused."""
    del num_steps, key, kwargs
    return AdapterState(
      params=params,
      state=model_state,
      optax_opt_state=self._tx.init(params),
      iteration=jnp.asarray(0, dtype=jnp.int32),
    )

  @functools.partial(jax.jit, static_argnums=(0,))
  def update(
    self,
    opt_state: AdapterState,
    grad: Any,
    loss: jax.Array | None = None,
    model_state: Any = None,
    key: jax.Array | None = None,
    **kwargs: Any,
  ) -> AdapterState:
    """Applies one step of the transformation.

    Args:
      opt_state: Current state.
      grad: Gradient of the loss with respect to ``opt_state.params``.
      loss: Loss at ``opt_state.params``; forwarded to the transformation as
        ``value=`` when given.
      model_state: New model state from the loss evaluation. When omitted the
        previous one is kept, so the state's tree structure never changes.
      key: Unused; accepted for interface compatibility.
      **kwargs: Other loop arguments (e.g. ``is_valid``), ignored.

    Returns:
      The state after the update.
    """
    del key, kwargs
    extra_args = {} if loss is None else {"value": loss}
    updates, optax_opt_state = self._tx.update(
      grad, opt_state.optax_opt_state, opt_state.params, **extra_args
    )
    return AdapterState(
      params=optax.apply_updates(opt_state.params, updates),
      state=opt_state.state if model_state is None else model_state,
      optax_opt_state=optax_opt_state,
      iteration=opt_state.iteration + 1,
    )
