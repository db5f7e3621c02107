"""Preconditioned and delta-rule momentum (rllc.nested, nested learning eqs. 20-22)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rllc import nested

PARAMS = {"a": jnp.array([1.0, -2.0, 3.0]), "b": jnp.array([[0.5, -0.5], [2.0, 1.0]])}


def gradients(params, i):
  return jax.tree.map(lambda p: jnp.sin(p * (i + 1)) + 0.1 * i, params)


def trajectory(tx, steps=30, grads=gradients):
  params, state = PARAMS, tx.init(PARAMS)
  for i in range(steps):
    updates, state = tx.update(grads(params, i), state, params)
    params = optax.apply_updates(params, updates)
  return params


def assert_same(a, b, **tolerance):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_allclose(x, y, **tolerance)


def test_identity_preconditioner_is_heavy_ball():
  # Eq. (20) with P = I: m <- alpha m - eta g, W <- W + m, which is optax's momentum.
  ours = nested.preconditioned_momentum(0.05, momentum=0.9, preconditioner="identity")
  assert_same(trajectory(ours), trajectory(optax.sgd(0.05, momentum=0.9)), rtol=1e-5, atol=1e-6)


def test_delta_zero_is_preconditioned_momentum():
  for preconditioner in nested.PRECONDITIONERS:
    ours = nested.delta_momentum(0.01, 0.9, delta=0.0, preconditioner=preconditioner)
    reference = nested.preconditioned_momentum(0.01, 0.9, preconditioner=preconditioner)
    assert_same(trajectory(ours), trajectory(reference))


def test_zero_gradient_is_not_projected_and_momentum_decays():
  tx = nested.delta_momentum(0.1, momentum=0.5, delta=1.0)
  state = tx.init(PARAMS)
  _, state = tx.update(gradients(PARAMS, 0), state, PARAMS)
  zeros = jax.tree.map(jnp.zeros_like, PARAMS)
  updates, _ = tx.update(zeros, state, PARAMS)
  assert_same(updates, jax.tree.map(lambda m: 0.5 * m, state.momentum))


def test_one_step_matches_a_float64_rederivation_of_eq_22():
  alpha, eta, delta, b2, eps = 0.9, 0.05, 0.7, 0.99, 1e-8
  tx = nested.delta_momentum(eta, alpha, delta=delta, preconditioner="adam", b2=b2, eps=eps)
  state = tx.init(PARAMS)
  g1, g2 = gradients(PARAMS, 0), gradients(PARAMS, 1)
  _, state = tx.update(g1, state, PARAMS)
  updates, _ = tx.update(g2, state, PARAMS)
  for name in PARAMS:
    a, b = np.asarray(g1[name], np.float64).ravel(), np.asarray(g2[name], np.float64).ravel()
    v1 = (1 - b2) * a * a
    m1 = -eta * a / (np.sqrt(v1 / (1 - b2)) + eps)  # m_0 = 0: no projection matters
    v2 = b2 * v1 + (1 - b2) * b * b
    u = b / np.linalg.norm(b)
    m2 = alpha * (m1 - delta * u * (u @ m1)) - eta * b / (np.sqrt(v2 / (1 - b2**2)) + eps)
    np.testing.assert_allclose(np.ravel(updates[name]), m2, rtol=1e-5, atol=1e-7)


def test_full_projection_removes_the_memory_along_the_gradient():
  # delta = 1, unit u: (I - u u^T) m has no component along u, so with eta = 0
  # the new momentum is orthogonal to the gradient.
  tx = nested.delta_momentum(0.0, momentum=1.0, delta=1.0)
  state = nested.NestedMomentumState(
    {"w": jnp.array([1.0, 2.0, 3.0])}, (), jnp.zeros([], jnp.int32)
  )
  grads = {"w": jnp.array([3.0, 0.0, 4.0])}
  updates, _ = tx.update(grads, state)
  assert abs(float(jnp.dot(updates["w"], grads["w"]))) < 1e-6
  np.testing.assert_allclose(updates["w"], [1.0 - 0.6 * 3.0, 2.0, 3.0 - 0.8 * 3.0], atol=1e-6)


def test_unknown_preconditioner_names_the_valid_ones():
  with pytest.raises(ValueError, match="unknown preconditioner 'hessian'; valid: identity, adam"):
    nested.delta_momentum(0.1, preconditioner="hessian")


def test_newton_schulz_snaps_singular_values_near_one():
  # A 20 x 30 matrix with singular values from 0.1 to 10 (condition number 100).
  rng = np.random.default_rng(0)
  u, _ = np.linalg.qr(rng.normal(size=(20, 20)))
  v, _ = np.linalg.qr(rng.normal(size=(30, 20)))
  x = jnp.asarray((u * np.geomspace(0.1, 10.0, 20)) @ v.T, jnp.float32)
  for matrix in (x, x.T):  # wide and tall
    after = np.linalg.svd(np.asarray(nested.newton_schulz(matrix)), compute_uv=False)
    # Muon's quintic leaves them in about [0.68, 1.13] after 5 steps, not at 1.
    assert after.shape == (20,) and after.min() > 0.6 and after.max() < 1.25


def test_newton_schulz_is_optax_muon_orthogonalization():
  from optax.contrib import _muon

  x = jax.random.normal(jax.random.key(1), (12, 7))
  reference = _muon.orthogonalize_via_newton_schulz(x, jnp.asarray(nested.NS_COEFFICIENTS), 5)
  np.testing.assert_allclose(nested.newton_schulz(x), reference, rtol=1e-4, atol=1e-5)


def test_ns_momentum_orthogonalizes_matrices_and_leaves_vectors_as_momentum():
  tx = nested.ns_momentum(0.1, momentum=0.5)
  state = tx.init(PARAMS)
  g1, g2 = gradients(PARAMS, 0), gradients(PARAMS, 1)
  _, state = tx.update(g1, state)
  updates, state = tx.update(g2, state)
  memory = jax.tree.map(lambda a, b: 0.5 * a + b, g1, g2)
  assert_same(state.momentum, memory)
  np.testing.assert_allclose(updates["a"], -0.1 * memory["a"], rtol=1e-6)
  np.testing.assert_allclose(updates["b"], -0.1 * nested.newton_schulz(memory["b"]), rtol=1e-6)
