"""Lion-K and signum (rllc.lion) against optax's Lion and heavy ball: the paper's reductions."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rllc import lion

PARAMS = {"a": jnp.array([1.0, -2.0, 3.0]), "b": jnp.array([[0.5, -0.5], [2.0, 1.0]])}


def trajectory(tx, steps=30):
  """Parameters after `steps` updates on gradients that change every step (sin of params x step)."""
  params, state = PARAMS, tx.init(PARAMS)
  for i in range(steps):
    grads = jax.tree.map(lambda p, i=i: jnp.sin(p * (i + 1)) + 0.1 * i, params)
    updates, state = tx.update(grads, state, params)
    params = optax.apply_updates(params, updates)
  return params


def assert_same(a, b, **tolerance):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_allclose(x, y, **tolerance)


def test_l1_kernel_is_optax_lion_with_weight_decay():
  ours = lion.lion_k(0.01, b1=0.9, b2=0.99, weight_decay=0.1, kernel="l1")
  assert_same(trajectory(ours), trajectory(optax.lion(0.01, b1=0.9, b2=0.99, weight_decay=0.1)))


def test_signum_is_lion_with_equal_momentum_parameters():
  # Section 4 of the memory paper: Lion with rho1 = rho2 is Signum.
  reference = optax.lion(0.01, b1=0.8, b2=0.8, weight_decay=0.0)
  assert_same(trajectory(lion.signum(0.01, momentum=0.8)), trajectory(reference))


def test_l2_kernel_with_equal_rhos_and_no_decay_is_heavy_ball():
  # Example 1.5: K = |x|^2 / 2, rho1 = rho2 = beta, lambda = 0 gives heavy ball,
  # here with the EMA's dampening: optax.sgd(eta (1 - beta), momentum=beta).
  beta, eta = 0.9, 0.1
  ours = lion.lion_k(eta, b1=beta, b2=beta, kernel="l2")
  reference = optax.sgd(eta * (1 - beta), momentum=beta)
  assert_same(trajectory(ours), trajectory(reference), rtol=1e-5, atol=1e-6)


def test_smooth_l1_kernel_tends_to_lion_as_eps_vanishes():
  # grad ||x||_{1,eps} = x / sqrt(x^2 + eps) -> sign(x): far from zero the steps agree.
  smooth = trajectory(lion.lion_k(0.01, kernel="l1_smooth", eps=1e-12), steps=5)
  sign = trajectory(lion.lion_k(0.01, kernel="l1"), steps=5)
  assert_same(smooth, sign, rtol=1e-5, atol=1e-6)
  wide = trajectory(lion.lion_k(0.01, kernel="l1_smooth", eps=10.0), steps=5)
  assert not np.allclose(wide["a"], sign["a"])


def test_schedule_is_called_with_the_step_count():
  seen = []

  def schedule(count):
    seen.append(count)
    return 0.01

  tx = lion.lion_k(schedule, kernel="l1")
  state = tx.init(PARAMS)
  for _ in range(3):
    _, state = tx.update(PARAMS, state, PARAMS)
  assert [int(c) for c in seen] == [0, 1, 2] and int(state.count) == 3


def test_unknown_kernel_names_the_valid_ones():
  with pytest.raises(ValueError, match="unknown kernel 'l3'; valid: l1, l1_smooth, l2"):
    lion.lion_k(0.01, kernel="l3")


def test_weight_decay_may_be_traced_as_in_a_grid():
  def final_a(wd):
    tx = lion.lion_k(0.01, weight_decay=wd, kernel="l1")
    updates, _ = tx.update(PARAMS, tx.init(PARAMS), PARAMS)
    return updates["a"]

  vmapped = jax.vmap(final_a)(jnp.array([0.0, 0.1]))
  np.testing.assert_allclose(vmapped[0], final_a(0.0))
  np.testing.assert_allclose(vmapped[1], final_a(0.1), rtol=1e-6)
