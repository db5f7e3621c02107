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

Deep Momentum GD, eq. (23), the memory a neural network:

  W_{i+1} = W_i + sigma(m_{i+1}(u_i)),   m_{i+1} = alpha m_i - eta grad L2(m_i; u_i)

with u_i the gradient and L2 the memory's internal objective, the dot-product
similarity of its output with its key. The text leaves the details open; our
reading, each choice a named argument of `deep_momentum`:
- The memory of a leaf is m(u)_j = b_j + phi(x_j): b a parameter-sized linear
  (value-less) memory, the one momentum buffer, and phi an MLP from R to R
  applied to every coordinate, phi(x) = h^{-1/2} sum_k w2_k tanh(w1_k x + c_k)
  with h = `hidden` units whose 3 h weights the leaf's coordinates share
  (the h^{-1/2} keeps its kernel, and so its share of the step, from growing
  with h; without it 16 units diverge where heavy ball converges). Its
  input is the gradient scaled to unit RMS over the leaf (`normalize`), so
  the same weights serve leaves of any gradient scale.
- The objective L2 = <m(u), u>. Its gradient in b_j is u_j, so b takes
  b <- alpha b - eta u: without the MLP this is heavy ball, eq. (20) with
  P = I. The shared weights take the gradient of its mean over the leaf's
  coordinates, (1 / n) sum_j u_j dphi(x_j)/dtheta (the sum would grow their
  step with the leaf's size), scaled by `mlp_rate`: mlp_rate = 0 is heavy ball.
- Forgetting: theta <- theta_0 + alpha (theta - theta_0) - mlp_rate eta grad,
  decay toward the initial weights theta_0, not toward zero, which would
  collapse the hidden layer (its gradient is tiny) within a few 1 / (1 - alpha)
  steps. For b and w2, which start at zero, this is the paper's rule. theta_0:
  w1 = 1, c evenly spread in (-2, 2), w2 = 0, so phi starts at zero.
- The output uses the updated memory on the current gradient, m_{i+1}(u_i).
  sigma is "identity" (eq. 23) or "newton_schulz" (eq. 24) on 2-D leaves,
  scaled by eta because the iteration forgets its input's scale: with
  mlp_rate = 0 this is `ns_momentum`, Muon's core. Other leaves take m(u).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from optax.contrib import _muon  # orthogonalize_via_newton_schulz, not exported

from rllc import schedule
from rllc import tree as tree_lib

PRECONDITIONERS = ("identity", "adam")
NS_COEFFICIENTS = _muon._DEFAULT_NS_COEFFS  # Muon's quintic (a, b, c), optax's "standard"
NS_EPS = 1e-7  # added to ||m||_F before the iteration


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

  References:
    Behrouz, Razaviyayn, Zhong and Mirrokni, "Nested Learning: The Illusion of Deep
    Learning Architectures" (NeurIPS 2025), section "momentum as an associative memory",
    eqs. (21)-(22), with eq. (20) at delta = 0.

  Example:
    The first step is -eta g (m_0 = 0). The second projects m_1 off the unit
    gradient u = (1, 0) before the decay: (I - u u^T) m_1 = (0, 0.1), so
    m_2 = 0.9 (0, 0.1) - 0.1 (1, 0), where heavy ball gives (-0.145, 0.09):

    >>> import jax.numpy as jnp
    >>> from rllc import nested
    >>> tx = nested.delta_momentum(learning_rate=0.1)
    >>> state = tx.init(jnp.zeros(2))
    >>> for g in ([0.5, -1.0], [1.0, 0.0]):
    ...   updates, state = tx.update(jnp.array(g), state)
    ...   print([round(float(u), 4) for u in updates])
    [-0.05, 0.1]
    [-0.1, 0.09]
  """
  if preconditioner not in PRECONDITIONERS:
    raise ValueError(
      f"unknown preconditioner {preconditioner!r}; valid: {', '.join(PRECONDITIONERS)}"
    )
  adam = preconditioner == "adam"
  project = not (isinstance(delta, (int, float)) and delta == 0)  # may be traced (a grid)

  def init(params):
    zeros = optax.tree.zeros_like(params)
    second = optax.tree.zeros_like(params) if adam else ()
    return NestedMomentumState(zeros, second, jnp.zeros([], jnp.int32))

  def update(updates, state, params=None, **extra):
    del params, extra
    count = optax.safe_increment(state.count)
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
  """Preconditioned momentum (eq. 20): m <- alpha m - eta P grad, W <- W + m.

  Args:
    learning_rate: eta, a float or an optax schedule of the step count.
    momentum: alpha.
    preconditioner: "adam", P = 1 / (sqrt(v_hat) + eps), or "identity" (heavy ball).
    b2: decay of Adam's second moment, for "adam".
    eps: added to sqrt(v_hat), for "adam".

  Returns:
    `delta_momentum` with delta = 0; its state is NestedMomentumState.

  References:
    Behrouz, Razaviyayn, Zhong and Mirrokni, "Nested Learning: The Illusion of Deep
    Learning Architectures" (NeurIPS 2025), section "momentum as an associative memory",
    eq. (20).

  Example:
    With Adam's preconditioner the first step is -eta g / (|g| + eps), about
    -eta sign(g) (v_hat = g^2 after its bias correction):

    >>> import jax.numpy as jnp
    >>> from rllc import nested
    >>> tx = nested.preconditioned_momentum(learning_rate=0.1)
    >>> updates, _ = tx.update(jnp.array([0.5, -1.0]), tx.init(jnp.zeros(2)))
    >>> print([round(float(u), 4) for u in updates])
    [-0.1, 0.1]
  """
  return delta_momentum(learning_rate, momentum, 0.0, preconditioner, b2, eps)


def newton_schulz(x: jax.Array, steps: int = 5) -> jax.Array:
  """sigma of eq. (24): about U V^T for x = U S V^T, by optax's Muon orthogonalization.

  optax.contrib's Newton-Schulz iteration with Muon's quintic coefficients
  (its "standard" preset), computed in float32 whatever the dtype of x.
  """
  orthogonal = _muon.orthogonalize_via_newton_schulz(
    x.astype(jnp.float32), jnp.asarray(NS_COEFFICIENTS), steps, eps=NS_EPS
  )
  return orthogonal.astype(x.dtype)


class NSMomentumState(NamedTuple):
  """State of Newton-Schulz momentum."""

  momentum: optax.Params  # m, the linear memory: m <- alpha m + grad
  count: jax.Array  # int32 steps so far (schedules)


def ns_momentum(
  learning_rate: optax.ScalarOrSchedule, momentum: float = 0.95, ns_steps: int = 5
) -> optax.GradientTransformationExtraArgs:
  """Eq. (24) with a linear memory and sigma = Newton-Schulz on 2-D leaves (Muon's core).

  m <- alpha m + grad, then the update -eta NS(m) on a matrix-shaped leaf and
  -eta m on any other leaf (`newton_schulz`).

  Args:
    learning_rate: eta, a float or an optax schedule of the step count.
    momentum: alpha.
    ns_steps: Newton-Schulz iterations.

  Returns:
    The transformation; its state is NSMomentumState.

  References:
    Behrouz, Razaviyayn, Zhong and Mirrokni, "Nested Learning: The Illusion of Deep
    Learning Architectures" (NeurIPS 2025), section "momentum as an associative memory",
    eq. (24); Muon's Newton-Schulz coefficients, via optax.contrib.

  Example:
    A vector leaf takes the memory itself: -eta g, then -eta (0.95 g_1 + g_2):

    >>> import jax.numpy as jnp
    >>> from rllc import nested
    >>> tx = nested.ns_momentum(learning_rate=0.1)
    >>> state = tx.init(jnp.zeros(2))
    >>> for g in ([0.5, -1.0], [1.0, 0.0]):
    ...   updates, state = tx.update(jnp.array(g), state)
    ...   print([round(float(u), 4) for u in updates])
    [-0.05, 0.1]
    [-0.1475, 0.095]
  """

  def init(params):
    return NSMomentumState(optax.tree.zeros_like(params), jnp.zeros([], jnp.int32))

  def update(updates, state, params=None, **extra):
    del params, extra
    eta = schedule.value_at(learning_rate, state.count)
    memory = jax.tree.map(lambda m, g: momentum * m + g, state.momentum, updates)

    def output(m):
      return newton_schulz(m, ns_steps) if m.ndim == 2 else m

    steps = jax.tree.map(lambda m: (-eta * output(m)).astype(m.dtype), memory)
    return steps, NSMomentumState(memory, optax.safe_increment(state.count))

  return optax.GradientTransformationExtraArgs(init, update)


DEEP_OUTPUTS = ("identity", "newton_schulz")


class DeepMomentumState(NamedTuple):
  """State of Deep Momentum GD."""

  momentum: optax.Params  # b, the linear memory, like the params (b <- alpha b - eta u)
  mlp: optax.Params  # per leaf a float32 (3, hidden) array: rows w1, c, w2 of phi
  count: jax.Array  # int32 steps so far (schedules)


def _mlp_init(hidden: int) -> jax.Array:
  """theta_0: slopes 1, offsets evenly spread in (-2, 2), output weights 0 (phi = 0)."""
  offsets = 2.0 * (2.0 * jnp.arange(hidden) + 1.0 - hidden) / hidden
  return jnp.stack([jnp.ones(hidden), offsets, jnp.zeros(hidden)]).astype(jnp.float32)


def _mlp(theta: jax.Array, x: jax.Array) -> jax.Array:
  """phi(x) = h^{-1/2} sum_k w2_k tanh(w1_k x + c_k), for every coordinate of a 1-D x."""
  w1, c, w2 = theta
  return jnp.tanh(x[:, None] * w1 + c) @ w2 / jnp.sqrt(w2.shape[0])


def deep_momentum(
  learning_rate: optax.ScalarOrSchedule,
  momentum: float = 0.9,
  hidden: int = 16,
  mlp_rate: float = 1.0,
  sigma: str = "identity",
  normalize: bool = True,
  ns_steps: int = 5,
  eps: float = 1e-8,
) -> optax.GradientTransformationExtraArgs:
  """Deep Momentum GD (eqs. 23-24): an elementwise MLP memory beside a momentum buffer.

  Args:
    learning_rate: eta, a float or an optax schedule of the step count.
    momentum: alpha, the memory's forgetting.
    hidden: the MLP's hidden units; the state keeps 3 x hidden numbers per leaf.
    mlp_rate: the MLP weights' step relative to eta; 0 freezes phi at zero (heavy ball).
    sigma: the output non-linearity, "identity" (eq. 23) or "newton_schulz" (eq. 24).
    normalize: feed the MLP the gradient scaled to unit RMS over its leaf.
    ns_steps: Newton-Schulz iterations, for sigma = "newton_schulz".
    eps: the floor of a leaf's gradient RMS when normalizing.

  Returns:
    The transformation; its updates are sigma(m_{i+1}(u_i)), its state DeepMomentumState.

  References:
    Behrouz, Razaviyayn, Zhong and Mirrokni, "Nested Learning: The Illusion of Deep
    Learning Architectures" (NeurIPS 2025), section "momentum as an associative memory",
    eqs. (23)-(24).

  Example:
    With mlp_rate = 0 phi stays zero and the rule is heavy ball,
    b <- alpha b - eta g, W <- W + b:

    >>> import jax.numpy as jnp
    >>> from rllc import nested
    >>> tx = nested.deep_momentum(learning_rate=0.1, mlp_rate=0.0)
    >>> state = tx.init(jnp.zeros(2))
    >>> for g in ([0.5, -1.0], [1.0, 0.0]):
    ...   updates, state = tx.update(jnp.array(g), state)
    ...   print([round(float(u), 4) for u in updates])
    [-0.05, 0.1]
    [-0.145, 0.09]
  """
  if sigma not in DEEP_OUTPUTS:
    raise ValueError(f"unknown sigma {sigma!r}; valid: {', '.join(DEEP_OUTPUTS)}")
  if not isinstance(hidden, int) or hidden < 1:
    raise ValueError(f"hidden must be a positive integer, got {hidden!r}")
  theta_0 = _mlp_init(hidden)

  def init(params):
    return DeepMomentumState(
      optax.tree.zeros_like(params),
      jax.tree.map(lambda _: jnp.array(theta_0), params),  # a buffer per leaf: donatable
      jnp.zeros([], jnp.int32),
    )

  def update(updates, state, params=None, **extra):
    del params, extra
    eta = schedule.value_at(learning_rate, state.count)

    def leaf(g, b, theta):
      u = g.astype(jnp.float32).reshape(-1)
      x = u / jnp.maximum(jnp.sqrt(jnp.mean(u * u)), eps) if normalize else u
      grad_theta = jax.grad(lambda th: jnp.mean(u * _mlp(th, x)))(theta)
      theta = theta_0 + momentum * (theta - theta_0) - mlp_rate * eta * grad_theta
      b = momentum * b - eta * g
      step = b + _mlp(theta, x).reshape(g.shape)
      if sigma == "newton_schulz" and g.ndim == 2:
        step = eta * newton_schulz(step, ns_steps)
      return step.astype(g.dtype), b.astype(g.dtype), theta

    steps, memory, mlp = tree_lib.map_leaves(leaf, updates, state.momentum, state.mlp)
    return steps, DeepMomentumState(memory, mlp, optax.safe_increment(state.count))

  return optax.GradientTransformationExtraArgs(init, update)
