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


def newton_schulz_float64(x, steps=5, coefficients=(3.4445, -4.7750, 2.0315), eps=1e-7):
  """The iteration rllc.nested wrote itself before it used optax's, in float64 NumPy."""
  a, b, c = coefficients
  tall = x.shape[0] > x.shape[1]
  X = np.asarray(x, np.float64)
  X = X.T if tall else X
  X = X / (np.linalg.norm(X) + eps)
  for _ in range(steps):
    A = X @ X.T
    X = a * X + (b * A + c * A @ A) @ X
  return X.T if tall else X


@pytest.mark.parametrize("shape", [(12, 7), (7, 12), (20, 20), (64, 33), (1, 5), (5, 1)])
@pytest.mark.parametrize("steps", [1, 5])
def test_newton_schulz_is_the_former_iteration(shape, steps):
  # optax's Muon orthogonalization, with its "standard" coefficients, is the
  # quintic this module used to write out: the same numbers up to float32
  # rounding, for wide, tall (transposed inside) and square matrices.
  assert nested.NS_COEFFICIENTS == (3.4445, -4.7750, 2.0315)
  x = jax.random.normal(jax.random.key(shape[0] * 100 + shape[1]), shape)
  ours = nested.newton_schulz(x, steps)
  assert ours.shape == shape and ours.dtype == x.dtype
  np.testing.assert_allclose(ours, newton_schulz_float64(x, steps), rtol=0, atol=3e-6)
  np.testing.assert_allclose(nested.newton_schulz(x.T, steps), ours.T, rtol=0, atol=1e-6)


def test_newton_schulz_of_bfloat16_iterates_in_float32():
  x = jax.random.normal(jax.random.key(3), (9, 4)).astype(jnp.bfloat16)
  ours = nested.newton_schulz(x)
  assert ours.dtype == jnp.bfloat16
  # Only the final rounding to bfloat16 (half an ulp at 1 is 2^-8); iterating
  # in bfloat16 is about ten times further off.
  reference = newton_schulz_float64(np.asarray(x, np.float32))
  np.testing.assert_allclose(np.asarray(ours, np.float32), reference, rtol=0, atol=2**-8)


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


def test_deep_momentum_without_mlp_steps_is_heavy_ball():
  # mlp_rate = 0 keeps phi at zero: b <- alpha b - eta g, W <- W + b (eq. 20, P = I).
  ours = nested.deep_momentum(0.05, momentum=0.9, mlp_rate=0.0)
  assert_same(trajectory(ours), trajectory(optax.sgd(0.05, momentum=0.9)), rtol=1e-5, atol=1e-6)


def test_deep_momentum_with_newton_schulz_output_and_linear_memory_is_ns_momentum():
  # Eq. (24): sigma = Newton-Schulz over a linear memory is Muon's core.
  params = {"a": jnp.arange(5.0), "w": jnp.reshape(jnp.arange(12.0) / 7, (4, 3))}
  ours = nested.deep_momentum(0.1, momentum=0.8, mlp_rate=0.0, sigma="newton_schulz")
  reference = nested.ns_momentum(0.1, momentum=0.8)
  for tx in (ours, reference):
    state, steps = tx.init(params), []
    for i in range(6):
      update, state = tx.update(gradients(params, i), state)
      steps.append(update)
    if tx is ours:
      mine = steps
  for a, b in zip(mine, steps, strict=True):
    assert_same(a, b, rtol=1e-4, atol=1e-6)


def deep_momentum_float64(grads, eta, alpha, hidden, rate, normalize, eps=1e-8):
  """Eq. (23) as documented in rllc.nested, re-derived in NumPy with hand-written gradients."""
  w1_0 = np.ones(hidden)
  c_0 = 2.0 * (2.0 * np.arange(hidden) + 1.0 - hidden) / hidden
  w2_0 = np.zeros(hidden)
  w1, c, w2 = w1_0.copy(), c_0.copy(), w2_0.copy()
  b = np.zeros(grads[0].size)
  steps = []
  for g in grads:
    u = np.asarray(g, np.float64).ravel()
    x = u / max(np.sqrt(np.mean(u * u)), eps) if normalize else u
    t = np.tanh(np.outer(x, w1) + c)  # (n, hidden)
    slope = 1.0 - t * t
    # d/dtheta of mean_j u_j h^{-1/2} sum_k w2_k tanh(w1_k x_j + c_k)
    g_w2 = np.mean(u[:, None] * t, axis=0) / np.sqrt(hidden)
    g_c = w2 * np.mean(u[:, None] * slope, axis=0) / np.sqrt(hidden)
    g_w1 = w2 * np.mean((u * x)[:, None] * slope, axis=0) / np.sqrt(hidden)
    w1 = w1_0 + alpha * (w1 - w1_0) - rate * eta * g_w1
    c = c_0 + alpha * (c - c_0) - rate * eta * g_c
    w2 = w2_0 + alpha * (w2 - w2_0) - rate * eta * g_w2
    b = alpha * b - eta * u
    steps.append(b + np.tanh(np.outer(x, w1) + c) @ w2 / np.sqrt(hidden))
  return steps


@pytest.mark.parametrize("normalize", [True, False])
def test_deep_momentum_matches_a_float64_rederivation_of_eq_23(normalize):
  eta, alpha, hidden, rate = 0.3, 0.7, 4, 5.0
  rng = np.random.default_rng(3)
  # Gradients of changing scale and sign, so the MLP's weights all move.
  grads = [rng.normal(size=(6, 5)) * scale for scale in (1.0, 0.3, 2.0, 0.5)]
  tx = nested.deep_momentum(eta, alpha, hidden=hidden, mlp_rate=rate, normalize=normalize)
  state = tx.init({"w": jnp.zeros((6, 5))})
  expected = deep_momentum_float64(grads, eta, alpha, hidden, rate, normalize)
  for g, want in zip(grads, expected, strict=True):
    update, state = tx.update({"w": jnp.asarray(g, jnp.float32)}, state)
    np.testing.assert_allclose(np.ravel(update["w"]), want, rtol=2e-5, atol=1e-6)
  # The MLP took part: the steps are not heavy ball's.
  heavy_ball = deep_momentum_float64(grads, eta, alpha, hidden, 0.0, normalize)
  assert np.abs(expected[-1] - heavy_ball[-1]).max() > 1e-2


def test_deep_momentum_state_is_one_buffer_and_three_times_hidden_numbers_per_leaf():
  params = {"a": jnp.zeros(7), "w": jnp.zeros((30, 20))}
  state = nested.deep_momentum(0.1, hidden=24).init(params)
  assert_same(state.momentum, params)
  assert [m.shape for m in jax.tree.leaves(state.mlp)] == [(3, 24), (3, 24)]


def test_deep_momentum_bad_choices_name_the_valid_ones():
  with pytest.raises(ValueError, match="unknown sigma 'relu'; valid: identity, newton_schulz"):
    nested.deep_momentum(0.1, sigma="relu")
  with pytest.raises(ValueError, match="hidden must be a positive integer, got 0"):
    nested.deep_momentum(0.1, hidden=0)
