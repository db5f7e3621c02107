"""Momentum as an associative memory (nested learning, eqs. 20-22): preconditioned and delta-rule.

Preconditioned momentum, eq. (20), the momentum learning to map gradients
to values P:

  m_{i+1} = alpha m_i - eta P grad_i,      W_{i+1} = W_i + m_{i+1}

with a diagonal P: "identity" (then it is heavy ball, optax.sgd(eta,
momentum=alpha)) or "adam", Adam's bias-corrected second moment,
P = 1 / (sqrt(v_hat) + eps), v = b2 v + (1 - b2) grad^2.

Delta-rule momentum, eqs. (21)-(22), the l2 regression objective instead of
the dot product:

  m_{i+1} = alpha (I - u u^T) m_i - eta P grad_i,   u = grad_i

Our reading, each a named argument: u u^T is applied per leaf without
forming a matrix, as m - u (u . m); u is the leaf's gradient normalized to
unit length (I - u u^T is then a projection: the raw gradient would make it
expansive whenever |grad|^2 > 2), and `delta` in [0, 1] scales the
projection: m - delta u (u . m). delta = 0 is preconditioned momentum; a
zero gradient leaf is not projected (u = 0). Both keep one buffer (m), plus
v for the Adam preconditioner.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

PRECONDITIONERS = ("identity", "adam")


class NestedMomentumState(NamedTuple):
  """State of preconditioned and delta-rule momentum."""

  momentum: optax.Params  # m_i, like the params (the update itself: W += m)
  second_moment: optax.Params  # v for the "adam" preconditioner; () for "identity"
  count: jax.Array  # int32 steps so far (bias correction, schedules)


def delta_momentum(
  learning_rate: optax.ScalarOrSchedule,
  momentum: float = 0.9,
  delta: float = 1.0,
  preconditioner: str = "identity",
  b2: float = 0.999,
  eps: float = 1e-8,
) -> optax.GradientTransformationExtraArgs:
  """Delta-rule momentum (eq. 22); delta = 0 gives preconditioned momentum (eq. 20).

  Args:
    learning_rate: eta, a float or an optax schedule of the step count.
    momentum: alpha.
    delta: the strength of the projection (I - delta u u^T), u the unit gradient of a leaf.
    preconditioner: "identity" or "adam" (the diagonal P).
    b2: decay of Adam's second moment, for "adam".
    eps: added to sqrt(v_hat) for "adam", and the floor of |grad| when normalizing u.

  Returns:
    The transformation; its updates are m_{i+1}, its state NestedMomentumState.
  """
  if preconditioner not in PRECONDITIONERS:
    raise ValueError(
      f"unknown preconditioner {preconditioner!r}; valid: {', '.join(PRECONDITIONERS)}"
    )
  adam = preconditioner == "adam"
  project = not (isinstance(delta, (int, float)) and delta == 0)  # may be traced (a grid)

  def init(params):
    zeros = jax.tree.map(jnp.zeros_like, params)
    second = jax.tree.map(jnp.zeros_like, params) if adam else ()
    return NestedMomentumState(zeros, second, jnp.zeros([], jnp.int32))

  def update(updates, state, params=None, **extra):
    del params, extra
    count = state.count + 1
    eta = learning_rate(state.count) if callable(learning_rate) else learning_rate
    if adam:
      second = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, state.second_moment, updates)
      correction = 1 - b2 ** count.astype(jnp.float32)
      scale = jax.tree.map(lambda v: 1 / (jnp.sqrt(v / correction) + eps), second)
    else:
      second, scale = (), jax.tree.map(lambda _: 1.0, updates)

    def leaf(g, m, p):
      if project:
        norm = jnp.sqrt(jnp.sum(jnp.square(g.astype(jnp.float32))))
        u = g / jnp.maximum(norm, eps).astype(g.dtype)
        m = m - delta * u * jnp.sum(u * m)
      return (momentum * m - eta * p * g).astype(g.dtype)

    new = jax.tree.map(leaf, updates, state.momentum, scale)
    return new, NestedMomentumState(new, second, count)

  return optax.GradientTransformationExtraArgs(init, update)


def preconditioned_momentum(
  learning_rate: optax.ScalarOrSchedule,
  momentum: float = 0.9,
  preconditioner: str = "adam",
  b2: float = 0.999,
  eps: float = 1e-8,
) -> optax.GradientTransformationExtraArgs:
  """Preconditioned momentum (eq. 20): m <- alpha m - eta P grad, W <- W + m."""
  return delta_momentum(learning_rate, momentum, 0.0, preconditioner, b2, eps)
