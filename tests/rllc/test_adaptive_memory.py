"""Tests of the adaptive-memory optimizers AM-MGD, AM-SGD and AM-AdamW, and their baseline.

Every reference below is an independent float64 NumPy re-implementation of
the paper's formulas ("Adaptive Memory Momentum", section 3):

- AM-MGD, eq. (12) and (13) with the overestimation f̂(x_t) = f(x_{t-1}),
  beta clipped to [0, 1] (Algorithm 1, deterministic column);
- AM-SGD, Algorithm 1's stochastic column: f̂(x_t) - f(x_t) replaced by
  eta g_t^T d_t, beta clipped to [0, beta_max];
- both with d_0 = g_0, and the previous beta kept when d_t = g_t (the
  coefficient is then undefined but the step is not);
- the Clip and Reset variants of section 4.5;
- EMA momentum, the fixed-beta baseline: eq. (5) with d_0 = g_0;
- AM-AdamW (section 3.3), with the coefficient derived again from the dual of
  eq. (14) (the weight-decay term carries a minus sign; the paper prints a
  plus). `test_am_adamw_beta_maximizes_the_dual_of_eq_14` checks that
  closed form against a brute-force maximization of the dual, so the sign
  does not rest on anyone's algebra.

The references take the formulas in their direct form (inner products of
d - g), not the expanded sums an implementation may use.
"""

import doctest
import importlib.util
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rllc
import rllc.adaptive_memory

# f(x) = 0.5 x^T A x - b^T x, A SPD with condition number ~8.4.
A = np.array([[6.0, 2.0, 0.5], [2.0, 4.0, 1.0], [0.5, 1.0, 1.2]])
B = np.array([1.0, -2.0, 0.5])
X0 = np.array([1.5, -1.0, 2.0])
SPLIT = 2  # the pytree is {"u": x[:SPLIT], "v": x[SPLIT:]}
GLOBAL = (slice(None),)  # one group of coordinates: global sums


@pytest.fixture
def x64():
  """Runs the test with float64 enabled, restoring the flag afterwards."""
  with jax.enable_x64(True):
    yield


# ---------------------------------------------------------------------------
# Helpers and independent references.


def _loss(x):
  return 0.5 * x @ A @ x - B @ x


def _grad(x, t):
  del t
  return A @ x - B


def _loss_jnp(params):
  """The same loss on the pytree, in JAX (for value_and_grad)."""
  x = jnp.concatenate([params["u"], params["v"]])
  return 0.5 * x @ (jnp.asarray(A, x.dtype) @ x) - jnp.asarray(B, x.dtype) @ x


def _tree(x, split=SPLIT):
  x = np.asarray(x)
  return {"u": jnp.asarray(x[:split]), "v": jnp.asarray(x[split:])}


def _flat(tree):
  return np.concatenate([np.asarray(leaf, np.float64).ravel() for leaf in jax.tree.leaves(tree)])


def _groups(per_leaf, split=SPLIT):
  return (slice(0, split), slice(split, None)) if per_leaf else GLOBAL


def _leaf_betas(beta, per_leaf):
  """state.beta as a list of floats, one per group of `_groups`."""
  if per_leaf:
    return [float(beta["u"]), float(beta["v"])]
  return [float(beta)]


def _policy(
  raw,
  prev,
  *,
  beta_max,
  beta_min=0.0,
  reset_threshold=None,
  reset_high=0.9,
  reset_low=0.1,
):
  """beta_t from the unclipped coefficient: clip, then section 4.5's Clip or Reset.

  raw None means d_t = g_t (zero denominator): the previous beta is kept.
  """
  if raw is None:
    return prev
  beta_am = min(max(raw, 0.0), beta_max)
  if reset_threshold is not None:
    return reset_high if beta_am >= reset_threshold else reset_low
  return max(beta_am, beta_min)


def _am_momentum_raw(d, g, lam, gain):
  """Eq. (12) before clipping; gain = (f̂ - f)/eta. None when d = g."""
  diff = d - g
  den = diff @ diff
  if den == 0.0:
    return None
  return ((lam + 1) * gain - diff @ (g + lam * d)) / den


def _ref_am_momentum(
  grad_fn, x0, steps, *, eta, lam, deterministic, groups=GLOBAL, beta_max=0.9, **policy
):
  """Algorithm 1: AM-MGD (deterministic) or AM-SGD, one beta per group of coordinates.

  Returns one record per step: the unclipped and final betas per group,
  d_{t+1}, x_{t+1} and f(x_t).
  """
  if deterministic:
    beta_max = 1.0
  x, d, f_prev = np.array(x0, np.float64), None, None
  # Before any step beta is 0 (no memory), as the Clip or Reset policy reports it.
  prev = [_policy(0.0, 0.0, beta_max=beta_max, **policy)] * len(groups)
  records = []
  for t in range(steps):
    g = grad_fn(x, t)
    f = _loss(x) if deterministic else None
    if d is None:
      d = g.copy()  # d_0 = g_0
    new_d = np.empty_like(d)
    raws, betas = [], []
    for k, sl in enumerate(groups):
      dk, gk = d[sl], g[sl]
      gain = gk @ dk  # AM-SGD: (f̂ - f)/eta estimated by g^T d
      if deterministic:  # AM-MGD: f̂(x_t) = f(x_{t-1}); unused at the first step (d = g)
        gain = 0.0 if f_prev is None else (f_prev - f) / eta
      raw = _am_momentum_raw(dk, gk, lam, gain)
      beta = _policy(raw, prev[k], beta_max=beta_max, **policy)
      new_d[sl] = ((beta + lam) * dk + (1 - beta) * gk) / (1 + lam)
      raws.append(raw)
      betas.append(beta)
    x = x - eta * new_d
    records.append({"raw": raws, "beta": betas, "d": new_d, "x": x.copy(), "f": f})
    d, prev, f_prev = new_d, betas, f
  return records


def _adam_p(v, t, b1, b2, eps):
  """Diagonal of the paper's P_t = (1 - b1^t) diag(eps + sqrt(v_t / (1 - b2^t)))."""
  return (1 - b1**t) * (eps + np.sqrt(v / (1 - b2**t)))


def _am_adamw_raw(d, g, x, p, lam, mu, eta, exact=True):
  """AM-AdamW's coefficient before clipping, from the dual of eq. (14).

  beta = [(1 + mu eta)(f̂ - f)/eta - <d - g, g + lam P d>_{P̃^-1} - mu <x, d - g>]
         / ||d - g||^2_{P̃^-1},
  P̃ = (I + lam P) P, with f̂ - f estimated by g^T (x_{t-1} - x_t)
  = eta g^T (P^-1 d + mu x). None when d = g. exact=False: the first-order
  (AdamW) form x_{t+1} = x_t - eta (P^-1 d + mu x), whose factor 1 + mu eta is 1.
  """
  w = 1.0 / ((1 + lam * p) * p)
  diff = d - g
  den = np.sum(w * diff * diff)
  if den == 0.0:
    return None
  gain = (1 + mu * eta if exact else 1.0) * (g @ (d / p + mu * x))
  num = gain - np.sum(w * diff * (g + lam * p * d)) - mu * (x @ diff)
  return num / den


def _ref_am_adamw(
  grad_fn,
  x0,
  steps,
  *,
  eta,
  lam,
  mu,
  b1=0.9,
  b2=0.999,
  eps=1e-8,
  groups=GLOBAL,
  exact=True,
  **policy,
):
  """AM-AdamW (section 3.3) with d_0 = 0, v_0 = 0; records as `_ref_am_momentum` plus p, v.

  exact=False: the first-order decay of the paper's footnote 2, as AdamW's.
  """
  x = np.array(x0, np.float64)
  d, v = np.zeros_like(x), np.zeros_like(x)
  # Before any step beta is 0 (no memory), as the Clip or Reset policy reports it.
  prev = [_policy(0.0, 0.0, **{"beta_max": 0.9, **policy})] * len(groups)
  records = []
  for t in range(1, steps + 1):
    g = grad_fn(x, t - 1)
    v = b2 * v + (1 - b2) * g * g
    p = _adam_p(v, t, b1, b2, eps)
    new_d = np.empty_like(d)
    raws, betas = [], []
    for k, sl in enumerate(groups):
      raw = _am_adamw_raw(d[sl], g[sl], x[sl], p[sl], lam, mu, eta, exact)
      beta = _policy(raw, prev[k], **policy)
      new_d[sl] = ((beta + lam * p[sl]) * d[sl] + (1 - beta) * g[sl]) / (1 + lam * p[sl])
      raws.append(raw)
      betas.append(beta)
    x_new = (x - eta * new_d / p) / (1 + mu * eta) if exact else x - eta * (new_d / p + mu * x)
    records.append(
      {"raw": raws, "beta": betas, "d": new_d, "x": x_new, "x_prev": x, "p": p, "v": v}
    )
    x, d, prev = x_new, new_d, betas
  return records


def _run(tx, grad_fn, x0, steps, *, with_loss=False, split=SPLIT):
  """Runs tx from x0, feeding it its own iterates; one (state, params) per step."""
  params = _tree(x0, split)
  state = tx.init(params)
  out = []
  for t in range(steps):
    x = _flat(params)
    extra = {"value": jnp.asarray(_loss(x))} if with_loss else {}
    updates, state = tx.update(_tree(grad_fn(x, t), split), state, params, **extra)
    params = optax.apply_updates(params, updates)
    out.append((state, params))
  return out


def _crafted(state, direction=None, **fields):
  """state with the given fields replaced, e.g. a chosen d_t, v_{t-1}, count or beta.

  AMState also caches each leaf's |d_t|^2 (`direction_sq`); it is set from the
  new direction so that the crafted state is one the optimizer could reach.
  """
  if direction is not None:
    fields["direction"] = direction
    if "direction_sq" in state._fields:
      fields["direction_sq"] = jax.tree.map(lambda d: jnp.sum(d * d), direction)
  return state._replace(**fields)


def _noise_grads(steps, n, seed, *, oscillating=0):
  """Gradient sequence: a common drift plus noise; the first `oscillating`
  coordinates flip sign every step (so their momentum is useless)."""
  rng = np.random.default_rng(seed)
  drift = rng.normal(size=n)
  grads = drift + 0.7 * rng.normal(size=(steps, n))
  grads[:, :oscillating] *= (-1.0) ** np.arange(steps)[:, None] * 3.0
  return grads


# ---------------------------------------------------------------------------
# 1. Hand-derived trajectories on the quadratic.

MOMENTUM_CASES = {
  "am-mgd": dict(eta=0.1, deterministic=True, policy={}),
  "am-sgd": dict(eta=0.15, deterministic=False, policy={}),
  "am-sgd-clip": dict(eta=0.2, deterministic=False, policy={"beta_min": 0.5}),
  "am-sgd-reset": dict(eta=0.15, deterministic=False, policy={"reset_threshold": 0.7}),
}


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("case", list(MOMENTUM_CASES))
def test_am_momentum_matches_hand_derived_steps(case):
  spec = MOMENTUM_CASES[case]
  eta, lam, steps = spec["eta"], 0.1, 8
  ref = _ref_am_momentum(
    _grad, X0, steps, eta=eta, lam=lam, deterministic=spec["deterministic"], **spec["policy"]
  )
  # The case covers both sides of the clipping (or of the Reset threshold).
  defined = [(r["raw"][0], r["beta"][0]) for r in ref if r["raw"][0] is not None]
  assert ref[0]["raw"][0] is None and len(defined) == steps - 1
  if "reset_threshold" in spec["policy"]:
    assert {beta for _, beta in defined} == {0.1, 0.9}
    assert all(abs(min(max(raw, 0.0), 0.9) - 0.7) > 1e-3 for raw, _ in defined)
  else:
    assert any(beta != raw for raw, beta in defined)
    assert any(beta == raw for raw, beta in defined)
  if "beta_min" in spec["policy"]:
    assert any(min(max(raw, 0.0), 0.9) < 0.5 for raw, _ in defined)

  if spec["deterministic"]:
    tx = rllc.am_mgd(eta, lam=lam, **spec["policy"])
  else:
    tx = rllc.am_sgd(eta, lam=lam, **spec["policy"])
  run = _run(tx, _grad, X0, steps, with_loss=spec["deterministic"])
  for t, ((state, params), r) in enumerate(zip(run, ref, strict=True)):
    np.testing.assert_allclose(float(state.beta), r["beta"][0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_flat(state.direction), r["d"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_flat(params), r["x"], rtol=1e-10, atol=1e-12)
    assert int(state.count) == t + 1
    if spec["deterministic"]:
      np.testing.assert_allclose(float(state.prev_loss), r["f"], rtol=1e-12)


def test_first_step_is_gradient_descent():
  """d_0 = g_0, so d_1 = g_0 and x_1 = x_0 - eta g_0 whatever lam, beta_max."""
  params = _tree(X0.astype(np.float32))
  g = _grad(X0, 0)
  for tx in (rllc.am_sgd(0.15, lam=0.3, beta_max=0.5), rllc.am_mgd(0.15, lam=0.3)):
    updates, state = tx.update(_tree(g.astype(np.float32)), tx.init(params), params, value=1.0)
    np.testing.assert_allclose(_flat(updates), -0.15 * g, rtol=1e-6)
    np.testing.assert_allclose(_flat(state.direction), g, rtol=1e-6)
    assert float(state.beta) == 0.0


ADAMW_CASES = {
  "wd0": dict(mu=0.0, policy={}),
  "wd0.5": dict(mu=0.5, policy={}),
  "wd0.5-reset": dict(mu=0.5, policy={"reset_threshold": 0.7}),
}


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("case", list(ADAMW_CASES))
def test_am_adamw_matches_hand_derived_steps(case):
  spec = ADAMW_CASES[case]
  eta, lam, mu, steps = 0.2, 0.1, spec["mu"], 8
  ref = _ref_am_adamw(_grad, X0, steps, eta=eta, lam=lam, mu=mu, beta_max=0.9, **spec["policy"])
  raws_betas = [(r["raw"][0], r["beta"][0]) for r in ref]
  if "reset_threshold" in spec["policy"]:
    assert {beta for _, beta in raws_betas} == {0.1, 0.9}
    assert all(abs(min(max(raw, 0.0), 0.9) - 0.7) > 1e-3 for raw, _ in raws_betas)
  else:
    assert any(beta != raw for raw, beta in raws_betas)  # clipped
    assert any(beta == raw for raw, beta in raws_betas)  # not clipped

  tx = rllc.am_adamw(eta, weight_decay=mu, lam=lam, **spec["policy"])
  run = _run(tx, _grad, X0, steps)
  for t, ((state, params), r) in enumerate(zip(run, ref, strict=True)):
    np.testing.assert_allclose(float(state.beta), r["beta"][0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_flat(state.nu), r["v"], rtol=1e-10)
    np.testing.assert_allclose(_flat(state.direction), r["d"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_flat(params), r["x"], rtol=1e-10, atol=1e-12)
    # P_t as the implementation applied it: x_t - (1 + mu eta) x_{t+1} = eta P^-1 d_{t+1}.
    applied_p = eta * _flat(state.direction) / (r["x_prev"] - (1 + mu * eta) * _flat(params))
    np.testing.assert_allclose(applied_p, r["p"], rtol=1e-8)
    assert int(state.count) == t + 1


@pytest.mark.usefixtures("x64")
def test_am_adamw_sums_every_element_of_matrix_and_scalar_leaves():
  """The global sums of beta count each element of a leaf of any shape once.

  The implementation sums a leaf by columns, then the column sums; the
  reference sums the flat vector. On a quadratic in 9 coordinates held as a
  (2, 3) matrix, a (2, 1) column and a scalar, both give the same iterates.
  """
  rng = np.random.default_rng(3)
  q = rng.normal(size=(9, 9))
  a, b, x0 = q @ q.T / 9 + np.eye(9), rng.normal(size=9), rng.normal(size=9)
  grad = lambda x, t: a @ x - b  # noqa: E731
  eta, lam, mu, steps = 0.2, 0.1, 0.5, 8
  ref = _ref_am_adamw(grad, x0, steps, eta=eta, lam=lam, mu=mu, beta_max=0.9)
  assert any(0.0 < r["beta"][0] < 0.9 for r in ref)  # the sums decide beta, not the clip

  shapes = {"c": (2, 1), "m": (2, 3), "s": ()}  # jax.tree.leaves order: c, m, s
  bounds = np.cumsum([0] + [int(np.prod(s)) for s in shapes.values()])

  def tree(x):
    return {
      name: jnp.asarray(x[lo:hi].reshape(shape))
      for (name, shape), lo, hi in zip(shapes.items(), bounds[:-1], bounds[1:], strict=True)
    }

  tx = rllc.am_adamw(eta, weight_decay=mu, lam=lam)
  params = tree(x0)
  state = tx.init(params)
  for r in ref:
    updates, state = tx.update(tree(grad(_flat(params), 0)), state, params)
    params = optax.apply_updates(params, updates)
    np.testing.assert_allclose(float(state.beta), r["beta"][0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_flat(params), r["x"], rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------
# 2. AM-AdamW's coefficient is the maximizer of the dual of eq. (14).


def _dual(betas, *, f, f_hat, d, g, x, p, lam, mu, eta):
  """The dual of eq. (14) at each beta of `betas`.

  h(beta) = (1-beta) f + beta f̂ - eta/(2(1+mu eta)) ||g + lam P d + mu P̃ x + beta (d-g)||^2_{P̃^-1}
  """
  p_tilde = (1 + lam * p) * p
  r = (g + lam * p * d + mu * p_tilde * x)[None, :] + betas[:, None] * (d - g)[None, :]
  norm2 = np.sum(r * r / p_tilde, axis=1)
  return (1 - betas) * f + betas * f_hat - eta / (2 * (1 + mu * eta)) * norm2


def _adamw_instances(count, seed=0):
  """Random (d, g, x, nu, step, p, lam, mu, eta) whose coefficient is interior to
  [0.05, 0.85] and whose weight-decay term moves it by more than 0.05."""
  rng = np.random.default_rng(seed)
  out = []
  while len(out) < count:
    d, g, x = rng.normal(size=(3, 5))
    nu = rng.uniform(0.05, 3.0, size=5) ** 2
    step = int(rng.integers(1, 30))
    lam, mu, eta = rng.uniform(0.05, 0.5), rng.uniform(0.1, 1.0), rng.uniform(0.05, 0.5)
    p = _adam_p(0.999 * nu + 0.001 * g * g, step + 1, 0.9, 0.999, 1e-8)
    beta = _am_adamw_raw(d, g, x, p, lam, mu, eta)
    den = np.sum((d - g) ** 2 / ((1 + lam * p) * p))
    if 0.05 < beta < 0.85 and abs(2 * mu * (x @ (d - g)) / den) > 0.05:
      out.append(dict(d=d, g=g, x=x, nu=nu, step=step, p=p, lam=lam, mu=mu, eta=eta, beta=beta))
  return out


def test_am_adamw_beta_maximizes_the_dual_of_eq_14():
  """The test-local closed form (`_am_adamw_raw`) is the argmax of h on a fine grid.

  This checks the sign of the weight-decay term without trusting either
  derivation: the paper's printed sign is shown to miss the maximizer.
  """
  grid = np.linspace(-10.0, 10.0, 400_001)  # spacing 5e-5
  for inst in _adamw_instances(6):
    d, g, x, p = inst["d"], inst["g"], inst["x"], inst["p"]
    lam, mu, eta = inst["lam"], inst["mu"], inst["eta"]
    f = 1.3
    f_hat = f + eta * (g @ (d / p + mu * x))  # the first-order estimate of f̂ - f
    h = _dual(grid, f=f, f_hat=f_hat, d=d, g=g, x=x, p=p, lam=lam, mu=mu, eta=eta)
    argmax = grid[np.argmax(h)]
    assert abs(argmax - inst["beta"]) < 1e-4
    # The paper's printed +mu <x, d - g> would miss the maximizer.
    den = np.sum((d - g) ** 2 / ((1 + lam * p) * p))
    assert abs(argmax - (inst["beta"] + 2 * mu * (x @ (d - g)) / den)) > 0.04


@pytest.mark.usefixtures("x64")
def test_am_adamw_step_from_crafted_state_uses_the_dual_maximizer():
  """From a chosen d_t, v_{t-1}, count and x_t, one step gives the dual's maximizer."""
  for inst in _adamw_instances(3, seed=1):
    d, g, x, p = inst["d"], inst["g"], inst["x"], inst["p"]
    lam, mu, eta, beta = inst["lam"], inst["mu"], inst["eta"], inst["beta"]
    tx = rllc.am_adamw(eta, weight_decay=mu, lam=lam, beta_max=0.9)
    params = _tree(x)
    state = _crafted(
      tx.init(params),
      direction=_tree(d),
      nu=_tree(inst["nu"]),
      count=jnp.asarray(inst["step"], jnp.int32),
    )
    updates, state = tx.update(_tree(g), state, params)
    new_d = ((beta + lam * p) * d + (1 - beta) * g) / (1 + lam * p)
    new_x = (x - eta * new_d / p) / (1 + mu * eta)
    np.testing.assert_allclose(float(state.beta), beta, rtol=1e-10)
    np.testing.assert_allclose(_flat(state.direction), new_d, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(_flat(updates), new_x - x, rtol=1e-9, atol=1e-13)


# ---------------------------------------------------------------------------
# 3. Degenerate settings.


@pytest.mark.usefixtures("x64")
def test_am_sgd_without_memory_is_sgd():
  """beta_max = 0 and lam = 0: d_{t+1} = g_t, so AM-SGD is optax.sgd step by step."""
  grads = _noise_grads(12, 3, seed=2)
  grad_fn = lambda x, t: grads[t]  # noqa: E731
  am = _run(rllc.am_sgd(0.1, beta_max=0.0, lam=0.0), grad_fn, X0, 12)
  sgd = _run(optax.sgd(0.1), grad_fn, X0, 12)
  for (_, am_params), (_, sgd_params) in zip(am, sgd, strict=True):
    np.testing.assert_allclose(_flat(am_params), _flat(sgd_params), rtol=1e-13, atol=1e-15)


@pytest.mark.usefixtures("x64")
def test_am_sgd_with_beta_max_zero_keeps_lam_memory():
  """beta = 0, lam = 0.1: d_{t+1} = (lam d_t + g_t)/(1 + lam), d_0 = g_0; not SGD."""
  lam, eta = 0.1, 0.1
  grads = _noise_grads(12, 3, seed=3)
  run = _run(rllc.am_sgd(eta, beta_max=0.0, lam=lam), lambda x, t: grads[t], X0, 12)
  x, d = X0.copy(), grads[0]
  max_gap_to_sgd = 0.0
  for t, (state, params) in enumerate(run):
    d = (lam * d + grads[t]) / (1 + lam)
    max_gap_to_sgd = max(max_gap_to_sgd, np.max(np.abs(d - grads[t])))
    x = x - eta * d
    assert float(state.beta) == 0.0
    np.testing.assert_allclose(_flat(state.direction), d, rtol=1e-12)
    np.testing.assert_allclose(_flat(params), x, rtol=1e-12)
  assert max_gap_to_sgd > 0.05


@pytest.mark.usefixtures("x64")
def test_am_adamw_with_identity_preconditioner_gives_am_sgd_beta():
  """P = I, mu = 0: the AM-AdamW coefficient and step are AM-SGD's."""
  b1, b2, eps, lam, eta, count = 0.9, 0.999, 1e-8, 0.1, 0.05, 4
  t = count + 1
  rng = np.random.default_rng(4)
  for _ in range(3):
    while True:
      d, g = rng.normal(size=(2, 3))
      raw = _am_momentum_raw(d, g, lam, g @ d)
      if 0.05 < raw < 0.85:
        break
    # nu such that v_t = b2 nu + (1 - b2) g^2 makes P_t = I.
    v_t = ((1 / (1 - b1**t)) - eps) ** 2 * (1 - b2**t)
    nu = (v_t - (1 - b2) * g * g) / b2
    assert np.all(nu > 0)
    np.testing.assert_allclose(_adam_p(b2 * nu + (1 - b2) * g * g, t, b1, b2, eps), 1.0, rtol=1e-14)

    params = _tree(X0)
    adamw = rllc.am_adamw(eta, b1=b1, b2=b2, eps=eps, weight_decay=0.0, lam=lam)
    adamw_state = _crafted(
      adamw.init(params), direction=_tree(d), nu=_tree(nu), count=jnp.asarray(count, jnp.int32)
    )
    adamw_updates, adamw_state = adamw.update(_tree(g), adamw_state, params)
    sgd = rllc.am_sgd(eta, lam=lam)
    sgd_state = _crafted(sgd.init(params), direction=_tree(d), count=jnp.asarray(count, jnp.int32))
    sgd_updates, sgd_state = sgd.update(_tree(g), sgd_state, params)

    np.testing.assert_allclose(float(adamw_state.beta), raw, rtol=1e-10)
    np.testing.assert_allclose(float(sgd_state.beta), raw, rtol=1e-10)
    np.testing.assert_allclose(_flat(adamw_updates), _flat(sgd_updates), rtol=1e-10)


@pytest.mark.parametrize("adamw", [False, True])
def test_reset_variant_reports_only_high_or_low(adamw):
  """Over a noisy run every beta is reset_high or reset_low, both occur.

  That includes the first AM-SGD step (d_0 = g_0, no coefficient defined), which
  reports the initial beta as the policy maps it: 0 -> reset_low.
  """
  steps = 40
  grads = jnp.asarray(_noise_grads(steps, 3, seed=5), jnp.float32)
  if adamw:
    tx = rllc.am_adamw(0.05, weight_decay=0.01, reset_threshold=0.7)
  else:
    tx = rllc.am_sgd(0.05, reset_threshold=0.7)
  params = _tree(X0.astype(np.float32))
  update = jax.jit(tx.update)
  state, betas = tx.init(params), []
  for t in range(steps):
    updates, state = update(_tree(grads[t]), state, params)
    params = optax.apply_updates(params, updates)
    betas.append(float(state.beta))
  assert set(betas) == {np.float32(0.9), np.float32(0.1)}


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("adamw", [False, True])
def test_reset_threshold_is_inclusive(adamw):
  """beta_AM = theta exactly (beta_max = theta, raw above it) resets to reset_high."""
  d, g = np.array([1.0, 0.5, -0.2]), np.array([0.9, 0.7, -0.1])
  params = _tree(X0)
  if adamw:
    tx = rllc.am_adamw(0.1, beta_max=0.7, reset_threshold=0.7, reset_high=0.95)
    p = _adam_p((1 - 0.999) * g * g, 4, 0.9, 0.999, 1e-8)
    raw = _am_adamw_raw(d, g, X0, p, 0.1, 0.0, 0.1)
  else:
    tx = rllc.am_sgd(0.1, beta_max=0.7, reset_threshold=0.7, reset_high=0.95)
    raw = _am_momentum_raw(d, g, 0.1, g @ d)
  assert raw > 0.7
  state = _crafted(tx.init(params), direction=_tree(d), count=jnp.asarray(3, jnp.int32))
  _, state = tx.update(_tree(g), state, params)
  assert float(state.beta) == 0.95


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("kind", ["am-sgd", "am-mgd", "am-adamw"])
def test_zero_denominator_keeps_previous_beta_and_steps_finitely(kind):
  """d_t = g_t: beta_t = beta_{t-1}, d_{t+1} = g_t, no NaN."""
  eta, mu, lam = 0.1, 0.3, 0.1
  g = np.array([0.4, -1.2, 0.7])
  params = _tree(X0)
  if kind == "am-sgd":
    tx = rllc.am_sgd(eta, lam=lam)
  elif kind == "am-mgd":
    tx = rllc.am_mgd(eta, lam=lam)
  else:
    tx = rllc.am_adamw(eta, lam=lam, weight_decay=mu)
  state = _crafted(
    tx.init(params), direction=_tree(g), beta=jnp.asarray(0.37), count=jnp.asarray(3, jnp.int32)
  )
  if kind == "am-mgd":
    state = state._replace(prev_loss=jnp.asarray(2.0))
  updates, state = tx.update(_tree(g), state, params, value=jnp.asarray(1.5))
  assert float(state.beta) == 0.37
  np.testing.assert_allclose(_flat(state.direction), g, rtol=1e-12)
  if kind == "am-adamw":
    p = _adam_p((1 - 0.999) * g * g, 4, 0.9, 0.999, 1e-8)  # nu was 0
    expected = (X0 - eta * g / p) / (1 + mu * eta) - X0
  else:
    expected = -eta * g
  np.testing.assert_allclose(_flat(updates), expected, rtol=1e-12)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("kind", ["am-sgd", "am-mgd"])
def test_constant_gradient_keeps_initial_beta_and_steps_like_gd(kind):
  """A constant gradient keeps d_t = g forever: beta stays 0, each step is -eta g."""
  g = np.array([0.4, -1.2, 0.7])
  tx = rllc.am_sgd(0.1) if kind == "am-sgd" else rllc.am_mgd(0.1)
  params = _tree(X0)
  state = tx.init(params)
  for _ in range(6):
    value = jnp.asarray(g @ _flat(params))  # the linear loss g^T x
    updates, state = tx.update(_tree(g), state, params, value=value)
    params = optax.apply_updates(params, updates)
    assert float(state.beta) == 0.0
    np.testing.assert_allclose(_flat(updates), -0.1 * g, rtol=1e-14)


@pytest.mark.parametrize("kind", ["am-sgd", "am-mgd", "am-adamw"])
def test_zero_gradients_never_give_nan(kind):
  """float32: 100 zero gradients from the start, then nonzero, near-equal and zero ones.

  The zero-gradient steps from the start leave d = 0: AM-SGD and AM-MGD do not
  move, AM-AdamW only decays the weights.
  """
  eta, mu = 0.1, 0.1
  if kind == "am-sgd":
    tx = rllc.am_sgd(eta)
  elif kind == "am-mgd":
    tx = rllc.am_mgd(eta)
  else:
    tx = rllc.am_adamw(eta, weight_decay=mu)
  params = _tree(X0.astype(np.float32))
  update = jax.jit(tx.update)
  state = tx.init(params)
  zeros = jax.tree.map(jnp.zeros_like, params)
  g = np.array([0.4, -1.2, 0.7], np.float32)
  grads = [zeros] * 100 + [_tree(g)] * 3 + [_tree(g * (1 + 1e-7))] + [zeros] * 3
  for t, grad in enumerate(grads):
    x = _flat(params)
    updates, state = update(grad, state, params, value=jnp.asarray(1.0, jnp.float32))
    params = optax.apply_updates(params, updates)
    for leaf in jax.tree.leaves((updates, state, params)):
      assert np.all(np.isfinite(np.asarray(leaf)))
    assert 0.0 <= float(state.beta) <= 1.0
    if t < 100:
      decay = -eta * mu * x / (1 + mu * eta) if kind == "am-adamw" else 0.0 * x
      np.testing.assert_allclose(_flat(updates), decay, rtol=1e-5, atol=0.0)


# ---------------------------------------------------------------------------
# 4. One beta per leaf.


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("adamw", [False, True])
def test_per_leaf_beta_uses_each_leafs_sums(adamw):
  """per_leaf=True: a pytree of scalar betas, each from its own leaf's sums."""
  steps, split = 8, 2
  # Leaf "u" oscillates (momentum is useless there), leaf "v" drifts.
  grads = _noise_grads(steps, 5, seed=7, oscillating=split)
  grad_fn = lambda x, t: grads[t]  # noqa: E731
  x0 = np.linspace(-1.0, 1.0, 5)
  if adamw:
    ref_fn = lambda groups: _ref_am_adamw(  # noqa: E731
      grad_fn, x0, steps, eta=0.05, lam=0.1, mu=0.2, beta_max=0.9, groups=groups
    )
    make = lambda per_leaf: rllc.am_adamw(0.05, weight_decay=0.2, per_leaf=per_leaf)  # noqa: E731
  else:
    ref_fn = lambda groups: _ref_am_momentum(  # noqa: E731
      grad_fn, x0, steps, eta=0.05, lam=0.1, deterministic=False, groups=groups
    )
    make = lambda per_leaf: rllc.am_sgd(0.05, per_leaf=per_leaf)  # noqa: E731
  ref = ref_fn(_groups(True, split))
  ref_global = ref_fn(GLOBAL)
  run = _run(make(True), grad_fn, x0, steps, split=split)
  run_global = _run(make(False), grad_fn, x0, steps, split=split)

  gaps = []
  for (state, params), (state_global, _), r, rg in zip(
    run, run_global, ref, ref_global, strict=True
  ):
    assert jax.tree.structure(state.beta) == jax.tree.structure(params)
    assert all(np.shape(b) == () for b in jax.tree.leaves(state.beta))
    np.testing.assert_allclose(_leaf_betas(state.beta, True), r["beta"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_flat(state.direction), r["d"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_flat(params), r["x"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(float(state_global.beta), rg["beta"][0], rtol=1e-10, atol=1e-12)
    gaps.append(np.abs(np.array(r["beta"]) - rg["beta"][0]))
  # The leaves' betas differ from each other, and each from the global one.
  assert max(abs(r["beta"][0] - r["beta"][1]) for r in ref) > 0.1
  assert np.all(np.max(gaps, axis=0) > 0.05)


# ---------------------------------------------------------------------------
# 5. Memory: as many parameter-sized buffers as the non-adaptive baseline.


def _param_sized_buffers(state, params) -> int:
  """State leaves shaped like some parameter (no parameter is a scalar here)."""
  shapes = {np.shape(leaf) for leaf in jax.tree.leaves(params)}
  return sum(np.shape(leaf) in shapes for leaf in jax.tree.leaves(state))


@pytest.mark.parametrize("per_leaf", [False, True])
def test_memory_matches_the_baselines(per_leaf):
  """AM-SGD/AM-MGD hold as many param-sized buffers as momentum SGD, AM-AdamW as AdamW."""
  params = {"w": jnp.zeros((3, 4)), "b": jnp.zeros((4,)), "c": jnp.zeros((2, 2, 2))}
  momentum = _param_sized_buffers(optax.sgd(0.1, momentum=0.9).init(params), params)
  adamw = _param_sized_buffers(optax.adamw(1e-3).init(params), params)
  assert (momentum, adamw) == (3, 6)
  for tx in (rllc.am_sgd(0.1, per_leaf=per_leaf), rllc.am_mgd(0.1)):
    assert _param_sized_buffers(tx.init(params), params) == momentum
  assert _param_sized_buffers(rllc.am_adamw(1e-3, per_leaf=per_leaf).init(params), params) == adamw


# ---------------------------------------------------------------------------
# 6. The registry and the learned_optimization adapter.


def test_lopt_adapter_forwards_the_loss_to_am_mgd():
  """The learned_optimization form of "am-mgd" steps as tx.update with value=loss."""
  built = rllc.optimizer("am-mgd", learning_rate=0.1)
  opt = built.lopt()
  params = _tree(X0.astype(np.float32))
  opt_state = opt.init(params)
  tx_params, tx_state = params, built.tx.init(params)
  betas = []
  for _ in range(8):
    loss, grad = jax.value_and_grad(_loss_jnp)(opt.get_params(opt_state))
    opt_state = opt.update(opt_state, grad, loss=loss)

    tx_loss, tx_grad = jax.value_and_grad(_loss_jnp)(tx_params)
    updates, tx_state = built.tx.update(tx_grad, tx_state, tx_params, value=tx_loss)
    tx_params = optax.apply_updates(tx_params, updates)

    np.testing.assert_allclose(_flat(opt.get_params(opt_state)), _flat(tx_params), rtol=2e-5)
    beta = float(opt_state.optax_opt_state.beta)
    np.testing.assert_allclose(beta, float(tx_state.beta), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
      float(opt_state.optax_opt_state.prev_loss), float(tx_loss), rtol=1e-6
    )
    betas.append(beta)
  # Some beta is strictly inside (0, 1): there the loss changes the step.
  assert any(0.01 < b < 0.99 for b in betas)


REGISTRY_CASES = [
  ("am-sgd", {}, lambda lr: rllc.am_sgd(lr)),
  ("am-sgd-clip", {}, lambda lr: rllc.am_sgd(lr, beta_min=0.5)),
  ("am-sgd-reset", {}, lambda lr: rllc.am_sgd(lr, reset_threshold=0.7)),
  ("am-mgd", {}, lambda lr: rllc.am_mgd(lr)),
  ("am-adamw", {"weight_decay": 0.1}, lambda lr: rllc.am_adamw(lr, weight_decay=0.1)),
  (
    "am-adamw-clip",
    {"weight_decay": 0.1},
    lambda lr: rllc.am_adamw(lr, weight_decay=0.1, beta_min=0.5),
  ),
  (
    "am-adamw-reset",
    {"weight_decay": 0.1},
    lambda lr: rllc.am_adamw(lr, weight_decay=0.1, reset_threshold=0.7),
  ),
]


@pytest.mark.parametrize("name,hparams,direct", REGISTRY_CASES, ids=[c[0] for c in REGISTRY_CASES])
def test_registry_names_build_the_documented_variants(name, hparams, direct):
  """Each registry name steps exactly like am_sgd/am_mgd/am_adamw with its defaults."""
  built = rllc.optimizer(name, learning_rate=0.05, **hparams)
  assert isinstance(built.tx, optax.GradientTransformationExtraArgs)
  grads = _noise_grads(10, 3, seed=7, oscillating=3).astype(np.float32)
  runs = []
  for tx in (built.tx, direct(0.05)):
    params = _tree(X0.astype(np.float32))
    state, betas = tx.init(params), []
    for t in range(10):
      value = _loss_jnp(params)
      updates, state = tx.update(_tree(grads[t]), state, params, value=value)
      params = optax.apply_updates(params, updates)
      betas.append(float(state.beta))
    runs.append((betas, _flat(params)))
  (betas, final), (direct_betas, direct_final) = runs
  assert betas == direct_betas
  np.testing.assert_array_equal(final, direct_final)
  if name.endswith("-clip"):
    assert min(betas[1:]) == np.float32(0.5)  # the lower clip was active
  if name.endswith("-reset"):
    assert set(betas[1:]) == {np.float32(0.1), np.float32(0.9)}


@pytest.mark.parametrize(
  "make", [rllc.am_sgd, rllc.am_adamw, lambda lr: rllc.ema_momentum(lr, 0.9)]
)
def test_learning_rate_schedule_is_evaluated_at_the_step_count(make):
  """An optax schedule gives, step by step, what the constant at lr(t) gives."""
  schedule = optax.linear_schedule(0.1, 0.01, transition_steps=5)
  grads = [_tree(g) for g in _noise_grads(6, 3, seed=2).astype(np.float32)]
  params = _tree(X0.astype(np.float32))
  scheduled = make(schedule)
  state = scheduled.init(params)
  for t, g in enumerate(grads):
    constant = make(float(schedule(t)))
    want, _ = constant.update(g, state, params)
    got, state = scheduled.update(g, state, params)
    np.testing.assert_allclose(_flat(got), _flat(want), rtol=1e-6)


# ---------------------------------------------------------------------------
# 7. EMA momentum, the fixed-beta baseline (eq. 5).


def _ref_ema_momentum(grads, eta, beta):
  """Eq. (5) in float64 with d_0 = g_0: the updates -eta d_{t+1} and the directions."""
  d, updates, directions = None, [], []
  for g in grads:
    d = g if d is None else d
    d = beta * d + (1 - beta) * g
    updates.append(-eta * d)
    directions.append(d)
  return updates, directions


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("beta", [0.0, 0.5, 0.99])
def test_ema_momentum_matches_eq_5(beta):
  grads = _noise_grads(7, 3, seed=4, oscillating=1)
  want_updates, want_directions = _ref_ema_momentum(grads, 0.05, beta)
  tx = rllc.ema_momentum(0.05, beta)
  state = tx.init(_tree(X0))
  assert isinstance(state, rllc.EMAMomentumState)
  for t, g in enumerate(grads):
    updates, state = tx.update(_tree(g), state)
    np.testing.assert_allclose(_flat(updates), want_updates[t], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(_flat(state.direction), want_directions[t], rtol=1e-12, atol=1e-15)
  assert int(state.count) == len(grads)


def test_ema_momentum_without_memory_is_sgd():
  grads = [_tree(g) for g in _noise_grads(5, 3, seed=5).astype(np.float32)]
  ours, sgd = rllc.ema_momentum(0.1, 0.0), optax.sgd(0.1)
  ours_state, sgd_state = ours.init(grads[0]), sgd.init(grads[0])
  for g in grads:
    got, ours_state = ours.update(g, ours_state)
    want, sgd_state = sgd.update(g, sgd_state)
    np.testing.assert_array_equal(_flat(got), _flat(want))


def test_ema_momentum_is_am_sgd_at_lam_zero_with_beta_held():
  # AM-SGD's step (eq. 13) at lam = 0 with beta clipped to [0.7, 0.7].
  grads = [_tree(g) for g in _noise_grads(8, 3, seed=6, oscillating=2).astype(np.float32)]
  ours, am = rllc.ema_momentum(0.1, 0.7), rllc.am_sgd(0.1, lam=0.0, beta_max=0.7, beta_min=0.7)
  ours_state, am_state = ours.init(grads[0]), am.init(grads[0])
  for g in grads:
    got, ours_state = ours.update(g, ours_state)
    want, am_state = am.update(g, am_state)
    np.testing.assert_allclose(_flat(got), _flat(want), rtol=1e-6)
    assert float(am_state.beta) == np.float32(0.7)


def test_ema_momentum_over_a_grid_of_traced_betas_is_each_beta_alone():
  grads = [_tree(g) for g in _noise_grads(6, 3, seed=8).astype(np.float32)]
  betas = np.array([0.0, 0.5, 0.9], np.float32)

  def run(beta):
    tx = rllc.ema_momentum(0.1, beta)
    state, updates = tx.init(grads[0]), []
    for g in grads:
      update, state = tx.update(g, state)
      updates.append(update)
    return updates

  over_grid = jax.jit(jax.vmap(run))(betas)
  for i, beta in enumerate(betas):
    for grid_update, alone in zip(over_grid, run(beta), strict=True):
      member = {name: leaf[i] for name, leaf in grid_update.items()}
      np.testing.assert_allclose(_flat(member), _flat(alone), rtol=1e-6)


# ---------------------------------------------------------------------------
# The scale_by forms, chained the optax way.


def _assert_same_bits(got, want):
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _chain_and_alias_runs(chain, alias, steps=8):
  """Both fed their own float32 iterates on the quadratic: [(chain, alias) (state, params)]."""
  return list(zip(_run(chain, _grad, X0, steps), _run(alias, _grad, X0, steps), strict=True))


@pytest.mark.parametrize("per_leaf", [False, True])
@pytest.mark.parametrize("lr", ["constant", "cosine"])
def test_scale_by_am_sgd_chained_with_scale_by_learning_rate_is_am_sgd_bit_for_bit(lr, per_leaf):
  # float32 updates: -eta d_{t+1} rounds once, in the chain as in the folded alias.
  eta = 0.15 if lr == "constant" else optax.cosine_decay_schedule(0.15, 8)
  chain = optax.chain(rllc.scale_by_am_sgd(per_leaf=per_leaf), optax.scale_by_learning_rate(eta))
  runs = _chain_and_alias_runs(chain, rllc.am_sgd(eta, per_leaf=per_leaf))
  for (chain_state, chain_params), (state, params) in runs:
    _assert_same_bits(chain_state[0], state)
    _assert_same_bits(chain_params, params)


@pytest.mark.parametrize("per_leaf", [False, True])
def test_scale_by_am_adamw_chain_without_decay_is_am_adamw_bit_for_bit(per_leaf):
  eta = optax.cosine_decay_schedule(0.2, 8)
  chain = optax.chain(
    rllc.scale_by_am_adamw(per_leaf=per_leaf),
    optax.add_decayed_weights(0.0),
    optax.scale_by_learning_rate(eta),
  )
  runs = _chain_and_alias_runs(chain, rllc.am_adamw(eta, weight_decay=0.0, per_leaf=per_leaf))
  for (chain_state, chain_params), (state, params) in runs:
    _assert_same_bits(chain_state[0], state)
    _assert_same_bits(chain_params, params)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("case", list(ADAMW_CASES))
def test_scale_by_am_adamw_chain_matches_the_first_order_reference(case):
  """With decay, the chain is AdamW's first-order form of eq. (14) (footnote 2), not am_adamw."""
  spec = ADAMW_CASES[case]
  eta, lam, mu, steps = 0.2, 0.1, spec["mu"], 8
  policy = {"beta_max": 0.9, **spec["policy"]}
  ref = _ref_am_adamw(_grad, X0, steps, eta=eta, lam=lam, mu=mu, exact=False, **policy)
  chain = optax.chain(
    rllc.scale_by_am_adamw(weight_decay=mu, lam=lam, **spec["policy"]),
    optax.add_decayed_weights(mu),
    optax.scale_by_learning_rate(eta),
  )
  for (state, params), r in zip(_run(chain, _grad, X0, steps), ref, strict=True):
    np.testing.assert_allclose(float(state[0].beta), r["beta"][0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_flat(state[0].direction), r["d"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_flat(params), r["x"], rtol=1e-10, atol=1e-12)
  if mu:  # the exact form moves elsewhere: this test tells the two apart
    exact = _ref_am_adamw(_grad, X0, steps, eta=eta, lam=lam, mu=mu, **policy)
    assert np.max(np.abs(exact[-1]["x"] - ref[-1]["x"])) > 1e-4


@pytest.mark.usefixtures("x64")
def test_scale_by_am_sgd_composes_with_clipping_as_am_of_the_clipped_gradient():
  eta, lam, max_norm, steps = 0.15, 0.1, 0.5, 8

  def clipped(x, t):
    g = _grad(x, t)
    return g * min(1.0, max_norm / np.linalg.norm(g))

  ref = _ref_am_momentum(clipped, X0, steps, eta=eta, lam=lam, deterministic=False)
  assert np.linalg.norm(_grad(X0, 0)) > 2 * max_norm  # the clip acts
  chain = optax.chain(
    optax.clip_by_global_norm(max_norm), rllc.scale_by_am_sgd(lam=lam), optax.sgd(eta)
  )
  for (state, params), r in zip(_run(chain, _grad, X0, steps), ref, strict=True):
    np.testing.assert_allclose(float(state[1].beta), r["beta"][0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_flat(params), r["x"], rtol=1e-10, atol=1e-12)


def test_masked_decay_in_the_am_sgd_chain_decays_only_the_masked_leaves():
  eta, mu = 0.1, 0.3
  mask = {"u": True, "v": False}
  masked = optax.chain(
    rllc.scale_by_am_sgd(),
    optax.masked(optax.add_decayed_weights(mu), mask),
    optax.scale_by_learning_rate(eta),
  )
  direction = rllc.scale_by_am_sgd()
  params = _tree(X0)
  masked_state, direction_state = masked.init(params), direction.init(params)
  for g in _noise_grads(6, 3, seed=3).astype(np.float32):
    update, masked_state = masked.update(_tree(g), masked_state, params)
    d, direction_state = direction.update(_tree(g), direction_state, params)
    np.testing.assert_array_equal(update["v"], -eta * d["v"])  # no decay: -eta d_{t+1}
    np.testing.assert_allclose(update["u"], -eta * (d["u"] + mu * params["u"]), rtol=1e-6)
    params = optax.apply_updates(params, update)


# ---------------------------------------------------------------------------
# Bits: the golden of tests/rllc/golden/make_am_golden.py.

_GOLDEN_PATH = pathlib.Path(__file__).parent / "golden" / "make_am_golden.py"
_GOLDEN_SPEC = importlib.util.spec_from_file_location("make_am_golden", _GOLDEN_PATH)
am_golden = importlib.util.module_from_spec(_GOLDEN_SPEC)
_GOLDEN_SPEC.loader.exec_module(am_golden)
GOLDEN_TOLERANCE_ULP = 64  # across machine classes, as tests/rllc/test_memory_golden.py


@pytest.fixture(scope="module")
def am_golden_arrays() -> dict:
  """This machine class's AM golden, or another class's; "meta/exact" says which (bits or ulp)."""
  own = am_golden.path_for(am_golden.machine_key())
  path = own if own.exists() else sorted(own.parent.glob("am_golden.*.npz"))[0]
  with np.load(path) as data:
    arrays = {k: v for k, v in data.items() if not k.startswith("meta/")}
  return {**arrays, "meta/exact": own.exists()}


@pytest.mark.parametrize("name", list(am_golden.cases()))
def test_am_optimizers_give_the_golden_bits(am_golden_arrays, name):
  """Updates, states and params of 4 steps: bit for bit on the golden's machine class and jaxlib.

  Elsewhere within GOLDEN_TOLERANCE_ULP units in the last place at each
  array's scale, counts exactly. am_golden.x86_64-edd41b56-jaxlib0.12.0.1.npz
  was made by the commit that added it (after 67ef6d5) on an Intel Xeon class
  (family 6, model 167, AVX-512). Against the code of 379c067, before
  AM-AdamW's step went behind barriers (fb37c00), it was measured: AM-SGD,
  its chain, AM-MGD and EMA momentum bit-identical; AM-AdamW's and its
  chain's beta, d and v bit-identical, their updates (and so the params)
  within 2 ulp. The update is now the stored d_{t+1} divided by P, where XLA
  had folded (A / (1 + lam P)) / P into one division of the unrounded A.
  """
  tx, takes_loss = am_golden.cases()[name]
  got = am_golden.run(name, tx, takes_loss, am_golden_arrays)
  expected = {k: v for k, v in am_golden_arrays.items() if k.startswith(name + "/")}
  assert sorted(got) == sorted(expected)
  for key, want in expected.items():
    assert got[key].dtype == want.dtype, key
    if am_golden_arrays["meta/exact"] or want.dtype != np.float32:
      diff = np.max(np.abs(got[key] - want), initial=0)
      assert np.array_equal(got[key], want), f"{key}: max |diff| {diff} (bits of this machine)"
    else:
      scale = np.spacing(np.float32(np.max(np.abs(want))))
      ulps = float(np.max(np.abs(got[key].astype(np.float64) - want), initial=0.0) / scale)
      assert ulps <= GOLDEN_TOLERANCE_ULP, f"{key}: {ulps:.1f} ulp from the golden's machine"


def test_docstring_examples_run():
  """The Examples of the public AM optimizers' docstrings, as doctests."""
  result = doctest.testmod(rllc.adaptive_memory, raise_on_error=False)
  assert result.attempted >= 6 and result.failed == 0, result
