"""Lion-K and signum: momentum passed through the gradient of a convex function K.

Lion-K (Example 1.5 of "How memory in optimization algorithms implicitly
modifies the loss", after Chen et al.), with momentum parameters rho1, rho2
and decoupled weight decay lambda:

  c_n     = rho1 m_{n-1} + (1 - rho1) g_n                 (the interpolated momentum)
  theta  <- theta - eta (grad K(c_n) + lambda theta)
  m_n     = rho2 m_{n-1} + (1 - rho2) g_n

In the paper's form, F = -grad K(m1 + m2) + m3 with m1 + m2 = -c_n; for the
odd gradients below, -grad K(-c) = grad K(c). The kernels:

  "l1"         K = ||x||_1,            grad K = sign(x): Lion itself
  "l1_smooth"  K = ||x||_{1,eps} = sum sqrt(x^2 + eps), grad K = x / sqrt(x^2 + eps)
               (the smooth approximation of section 4 of that paper)
  "l2"         K = ||x||^2 / 2,        grad K = x: with rho1 = rho2 = beta and
               lambda = 0, heavy ball with dampening (1 - beta), i.e.
               optax.sgd(eta (1 - beta), momentum=beta)

Signum (Bernstein et al.) is Lion with rho1 = rho2 = beta (that paper's
section 4): theta <- theta - eta sign(m_n), m_n = beta m_{n-1} + (1 - beta)
g_n. Both keep one buffer. The tests check "l1" against optax.lion, signum
against optax.lion with b1 = b2, and "l2" against heavy ball.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from rllc import schedule
from rllc import tree as tree_lib

KERNELS = ("l1", "l1_smooth", "l2")


class LionKState(NamedTuple):
  """State of Lion-K and signum."""

  momentum: optax.Params  # m_{n-1}, one buffer like the params
  count: jax.Array  # int32 steps so far (the argument of a learning-rate schedule)


def _kernel_gradient(kernel: str, eps: float):
  if kernel == "l1":
    return jnp.sign
  if kernel == "l1_smooth":
    return lambda x: x * jax.lax.rsqrt(x * x + jnp.asarray(eps, x.dtype))
  if kernel == "l2":
    return lambda x: x
  raise ValueError(f"unknown kernel {kernel!r}; valid: {', '.join(KERNELS)}")


def lion_k(
  learning_rate: optax.ScalarOrSchedule,
  b1: float = 0.9,
  b2: float = 0.99,
  weight_decay: float = 0.0,
  kernel: str = "l1_smooth",
  eps: float = 1e-8,
) -> optax.GradientTransformationExtraArgs:
  """Lion-K (Example 1.5) as an optax transformation.

  Args:
    learning_rate: eta, a float or an optax schedule of the step count.
    b1: rho1, the weight of the momentum in the interpolation c_n.
    b2: rho2, the momentum's decay.
    weight_decay: lambda (decoupled, multiplied by eta).
    kernel: "l1" (Lion), "l1_smooth" (grad of ||x||_{1,eps}) or "l2".
    eps: the smoothing of "l1_smooth".

  Returns:
    The transformation; its state is LionKState.

  References:
    Cattaneo and Shigida, "How Memory in Optimization Algorithms Implicitly Modifies the
    Loss", Example 1.5; Chen, Liu, Liang and Liu, "Lion Secretly Solves a Constrained
    Optimization: As Lyapunov Predicts" (ICLR 2024).

  Example:
    From m_0 = 0 the step is -eta grad K((1 - rho1) g) (here about -eta sign(g):
    the smooth kernel's eps is tiny), and the momentum becomes (1 - rho2) g:

    >>> import jax.numpy as jnp
    >>> from rllc import lion
    >>> tx = lion.lion_k(learning_rate=0.1)
    >>> updates, state = tx.update(jnp.array([0.5, -1.0]), tx.init(jnp.zeros(2)))
    >>> print([round(float(u), 4) for u in updates], [round(float(m), 4) for m in state.momentum])
    [-0.1, 0.1] [0.005, -0.01]

    With the "l2" kernel the step is -eta c_1 = -eta (1 - rho1) g:

    >>> tx = lion.lion_k(learning_rate=0.1, kernel="l2")
    >>> updates, _ = tx.update(jnp.array([0.5, -1.0]), tx.init(jnp.zeros(2)))
    >>> print([round(float(u), 4) for u in updates])
    [-0.005, 0.01]
  """
  grad_k = _kernel_gradient(kernel, eps)
  decays = not (isinstance(weight_decay, (int, float)) and weight_decay == 0)  # may be traced

  def init(params):
    return LionKState(optax.tree.zeros_like(params), jnp.zeros([], jnp.int32))

  def update(updates, state, params=None, **extra):
    del extra
    eta = schedule.value_at(learning_rate, state.count)
    if decays and params is None:
      raise ValueError("lion_k with weight_decay needs params in update")

    def leaf(g, m, p):
      c = b1 * m + (1 - b1) * g
      step = grad_k(c)
      if decays:
        step = step + weight_decay * p
      return (-eta * step).astype(g.dtype), (b2 * m + (1 - b2) * g).astype(m.dtype)

    new_updates, momentum = tree_lib.map_leaves(
      leaf, updates, state.momentum, params if params is not None else updates
    )
    return new_updates, LionKState(momentum, optax.safe_increment(state.count))

  return optax.GradientTransformationExtraArgs(init, update)


def signum(
  learning_rate: optax.ScalarOrSchedule, momentum: float = 0.9, weight_decay: float = 0.0
) -> optax.GradientTransformationExtraArgs:
  """Signum: theta <- theta - eta (sign(c_n) + lambda theta), Lion-K with rho1 = rho2.

  With rho1 = rho2 = beta the interpolation c_n = beta m_{n-1} + (1 - beta) g_n
  is the new momentum m_n itself, so the step is the sign of an EMA of the
  gradients (section 4 of the memory paper: Lion with rho1 = rho2 is Signum).

  Args:
    learning_rate: eta, a float or an optax schedule of the step count.
    momentum: beta, the EMA's decay.
    weight_decay: lambda (decoupled, multiplied by eta).

  Returns:
    `lion_k` with b1 = b2 = momentum and the "l1" kernel; its state is LionKState.

  References:
    Bernstein, Wang, Azizzadenesheli and Anandkumar, "signSGD: Compressed Optimisation
    for Non-Convex Problems" (ICML 2018), Signum; Cattaneo and Shigida, "How Memory in
    Optimization Algorithms Implicitly Modifies the Loss", section 4.

  Example:
    >>> import jax.numpy as jnp
    >>> from rllc import lion
    >>> tx = lion.signum(learning_rate=0.1)
    >>> updates, state = tx.update(jnp.array([0.5, -1.0]), tx.init(jnp.zeros(2)))
    >>> print([round(float(u), 4) for u in updates], [round(float(m), 4) for m in state.momentum])
    [-0.1, 0.1] [0.05, -0.1]
  """
  return lion_k(learning_rate, b1=momentum, b2=momentum, weight_decay=weight_decay, kernel="l1")
