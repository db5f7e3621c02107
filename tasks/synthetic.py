"""Deterministic synthetic tasks in learned_optimization's ``Task`` interface.

These tasks hold their data in memory (``datasets`` is None), so they run
offline and fast, which makes them suitable for tests and demos of the
optimizers.
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rllc.compat import lo_compat

_tasks_base = lo_compat.load("learned_optimization.tasks.base")


class QuadraticTask(_tasks_base.Task):
  """Ill-conditioned, noise-free linear least squares.

  The loss is ``0.5 * mean((X @ w - y) ** 2)`` over a fixed design matrix
  ``X`` of shape ``(num_examples, dim)`` whose Hessian ``X.T @ X / n`` has
  eigenvalues spaced geometrically from 1 down to ``1 / condition_number``
  (in a random orthogonal basis). Targets are ``y = X @ w_star``, so the
  minimum loss is 0. Because the largest curvature is 1, plain gradient
  descent is stable for learning rates below 2, and the small eigenvalues
  make progress in the remaining directions slow, which separates optimizers.

  Everything is a function of ``(dim, condition_number, seed)``: the problem
  is generated with NumPy from ``seed`` and parameters start at zero, so the
  PRNG keys passed by learned_optimization do not affect the trajectory.

  Parameters are the pytree ``{"w": float32[dim]}``; batches are ignored
  (``datasets`` is None, so learned_optimization passes ``()``).
  """

  def __init__(
    self,
    dim: int = 10,
    seed: int = 0,
    condition_number: float = 100.0,
    num_examples: int | None = None,
  ):
    """Generates the problem.

    Args:
      dim: Number of parameters.
      seed: Seed of the NumPy generator building ``X`` and ``w_star``.
      condition_number: Ratio of largest to smallest Hessian eigenvalue.
      num_examples: Rows of ``X``; defaults to ``2 * dim``. Must be >= dim so
        the Hessian has full rank.
    """
    num_examples = 2 * dim if num_examples is None else num_examples
    if dim < 1 or num_examples < dim:
      raise ValueError(
        f"Need 1 <= dim <= num_examples, got dim={dim}, num_examples={num_examples}."
      )
    if condition_number < 1:
      raise ValueError(f"condition_number must be >= 1, got {condition_number}.")
    self.dim = dim
    self.seed = seed
    self.condition_number = condition_number

    rng = np.random.default_rng(seed)
    left, _ = np.linalg.qr(rng.normal(size=(num_examples, dim)))
    right, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    eigenvalues = np.geomspace(1.0, 1.0 / condition_number, dim)
    # Singular values sqrt(n * eig) make X.T @ X / n have exactly `eigenvalues`.
    singular_values = np.sqrt(num_examples * eigenvalues)
    design = (left * singular_values) @ right.T
    w_star = rng.normal(size=dim)

    self._design = design.astype(np.float32)
    self._w_star = w_star.astype(np.float32)
    self._targets = (design @ w_star).astype(np.float32)
    # Loss at the zero initialization: the scale used by `normalizer`.
    self._initial_loss = float(0.5 * np.mean(self._targets.astype(np.float64) ** 2))

  @property
  def name(self) -> str:
    """Identifier including every constructor argument that shapes the task."""
    return f"QuadraticTask_dim{self.dim}_cond{self.condition_number:g}_seed{self.seed}"

  def init(self, key: jax.Array) -> dict[str, jax.Array]:
    """Returns zero parameters; ``key`` is unused to keep runs deterministic."""
    del key
    return {"w": jnp.zeros((self.dim,), jnp.float32)}

  def loss(self, params: dict[str, jax.Array], key: jax.Array, data: Any) -> jax.Array:
    """Mean squared residual (halved); ``key`` and ``data`` are unused."""
    del key, data
    residual = self._design @ params["w"] - self._targets
    return 0.5 * jnp.mean(jnp.square(residual))

  def normalizer(self, loss: jax.Array) -> jax.Array:
    """Loss relative to its value at initialization (1 = no progress)."""
    return loss / self._initial_loss

  def optimal_params(self) -> dict[str, jax.Array]:
    """The minimizer ``{"w": w_star}``, where the loss is 0."""
    return {"w": jnp.asarray(self._w_star)}
