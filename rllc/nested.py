"""Momentum as an associative memory (nested learning, eqs. 20-22, 24).

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

A non-linear output, eq. (24), W <- W + sigma(m) with sigma the
Newton-Schulz iteration and m a linear memory: Muon. `ns_momentum` applies
it to every matrix-shaped (2-D) leaf, m <- alpha m + grad, update
-eta NS(m); other leaves take -eta m. NS approximates U V^T of
m = U S V^T by the quintic iteration X <- a X + (b A + c A^2) X, A = X X^T,
from X = m / ||m||_F (Muon's coefficients; its singular values end in about
[0.7, 1.2], not exactly 1).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from rllc import schedule

PRECONDITIONERS = ("identity", "adam")
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)  # Muon's quintic (a, b, c)


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
    eta = schedule.value_at(learning_rate, state.count)
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


def newton_schulz(
  x: jax.Array, steps: int = 5, coefficients=NS_COEFFICIENTS, eps: float = 1e-7
) -> jax.Array:
  """The Newton-Schulz orthogonalization of a matrix: about U V^T for x = U S V^T."""
  a, b, c = coefficients
  tall = x.shape[0] > x.shape[1]
  X = (x.T if tall else x).astype(jnp.float32)
  X = X / (jnp.linalg.norm(X) + eps)
  for _ in range(steps):
    A = X @ X.T
    X = a * X + (b * A + c * A @ A) @ X
  return (X.T if tall else X).astype(x.dtype)


class NSMomentumState(NamedTuple):
  """State of Newton-Schulz momentum."""

  momentum: optax.Params  # m, the linear memory: m <- alpha m + grad
  count: jax.Array  # int32 steps so far (schedules)


def ns_momentum(
  learning_rate: optax.ScalarOrSchedule, momentum: float = 0.95, ns_steps: int = 5
) -> optax.GradientTransformationExtraArgs:
  """Eq. (24) with a linear memory and sigma = Newton-Schulz on 2-D leaves (Muon's core)."""

  def init(params):
    return NSMomentumState(jax.tree.map(jnp.zeros_like, params), jnp.zeros([], jnp.int32))

  def update(updates, state, params=None, **extra):
    del params, extra
    eta = schedule.value_at(learning_rate, state.count)
    memory = jax.tree.map(lambda m, g: momentum * m + g, state.momentum, updates)

    def output(m):
      return newton_schulz(m, ns_steps) if m.ndim == 2 else m

    steps = jax.tree.map(lambda m: (-eta * output(m)).astype(m.dtype), memory)
    return steps, NSMomentumState(memory, state.count + 1)

  return optax.GradientTransformationExtraArgs(init, update)
