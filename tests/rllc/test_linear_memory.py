"""Tests of linear memory (section 4) and LM-RLLC (Definition 5.1).

References are independent of rllc: optax's own sgd / momentum / Nesterov
(Lemma 4.1, appendices A.1 and A.2), the paper's closed forms, and a float64
NumPy re-derivation of Definition 5.1 written below from the paper's
equations. B and a of the Jordan-block propagators are read off the
unit-level recurrences (m <- beta m + g, m_i <- beta m_i + m_{i-1}, complex
c <- gamma c + g) rather than taken from the implementation.

To keep the runtime low, the trajectories run through a few module-level
jitted runners that take B, a and the hyperparameters as traced arguments,
so cases of the same shape share one compilation.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import rllc

SHAPES = {"w": (3, 4), "b": (4,)}  # a matrix and a vector param; n = 16
N_PARAMS = 16
RLLC_STEPS = 30


@pytest.fixture
def x64():
  """Runs the test with float64 enabled, restoring the flag afterwards."""
  with jax.enable_x64(True):
    yield


# ---------------------------------------------------------------------------
# Independent references.


def _block_b_a(kind, size, value):
  """(B, a) of one Jordan block from its recurrence, with M <- M B + g a^T."""
  if kind == "M":
    b = value * np.eye(size) + np.eye(size, k=1)  # column i gets m_{i-1}
    a = np.eye(size)[0]
    return b, a
  # Units (Re c_1, Im c_1, Re c_2, ...): new Re = x Re - y Im, new Im = y Re + x Im,
  # so the (Re, Im) columns of B are (x, -y) and (y, x).
  x, y = value.real, value.imag
  rot = np.array([[x, y], [-y, x]])
  b = np.kron(np.eye(size), rot) + np.kron(np.eye(size, k=1), np.eye(2))
  a = np.eye(2 * size)[0]
  return b, a


def _reference_b_a(terms):
  blocks = [_block_b_a(*term) for term in terms]
  k = sum(len(a) for _, a in blocks)
  big_b = np.zeros((k, k))
  offset = 0
  for b, _ in blocks:
    big_b[offset : offset + len(b), offset : offset + len(b)] = b
    offset += len(b)
  return big_b, np.concatenate([a for _, a in blocks])


TERMS = {
  "M(0.9)": [("M", 1, 0.9)],
  "M(0.9)+M(0)": [("M", 1, 0.9), ("M", 1, 0.0)],
  "M(0.9)+M(0.9)": [("M", 1, 0.9), ("M", 1, 0.9)],
  "M(0.9)+M(0.9)+M2(0.6)+CM(0.9i)": [("M", 1, 0.9), ("M", 1, 0.9), ("M", 2, 0.6), ("CM", 1, 0.9j)],
  "M2(0.6)": [("M", 2, 0.6)],
  "M3(0.5)": [("M", 3, 0.5)],
  "M(0.9)+M(0)+M2(0.6)+CM(0.9i)": [("M", 1, 0.9), ("M", 1, 0.0), ("M", 2, 0.6), ("CM", 1, 0.9j)],
}


# Two identical units (Gram singular forever) next to the other block types.
SINGULAR_SPEC = "M(0.9)+M(0.9)+M2(0.6)+CM(0.9i)"


def test_reference_block_matches_recurrence():
  """The test's CM block really is c <- gamma c + g on (Re c, Im c)."""
  gamma = 0.3 + 0.2j
  b, a = _block_b_a("CM", 1, gamma)
  c, m = 0.0, np.zeros(2)
  for g in [1.0, -0.5, 2.0, 0.0]:
    c = gamma * c + g
    m = m @ b + g * a
    np.testing.assert_allclose(m, [c.real, c.imag], atol=1e-12)


def _quadratic(seed, n=N_PARAMS):
  """(A, b, x0) of f(x) = 1/2 x^T A x - b^T x, eigenvalues of A in [0.1, 1]."""
  rng = np.random.default_rng(seed)
  u, _ = np.linalg.qr(rng.standard_normal((n, n)))
  a_mat = u @ np.diag(np.linspace(0.1, 1.0, n)) @ u.T
  return a_mat, rng.standard_normal(n), rng.standard_normal(n)


_TREEDEF = jax.tree.structure(SHAPES, is_leaf=lambda x: isinstance(x, tuple))
_LEAF_SHAPES = jax.tree.leaves(SHAPES, is_leaf=lambda x: isinstance(x, tuple))


def _to_tree(x, dtype):
  """Splits the last axis (n) of a NumPy array into the SHAPES pytree, like ravel_pytree."""
  x = np.asarray(x)
  pieces, offset = [], 0
  for shape in _LEAF_SHAPES:
    size = int(np.prod(shape))
    piece = x[..., offset : offset + size]
    pieces.append(jnp.asarray(piece.reshape(x.shape[:-1] + shape), dtype))
    offset += size
  return jax.tree.unflatten(_TREEDEF, pieces)


def _to_memory(mat, dtype):
  """(n, k) NumPy matrix -> memory: a tuple of k unit pytrees like params."""
  mat = np.asarray(mat)
  return tuple(_to_tree(mat[:, i], dtype) for i in range(mat.shape[1]))


def _jax_quadratic(seed, dtype):
  """((A, b) as jnp arrays, params0 pytree) for the 2-leaf pytree."""
  a_mat, b_vec, x0 = _quadratic(seed)
  quad = (jnp.asarray(a_mat, dtype), jnp.asarray(b_vec, dtype))
  return quad, _to_tree(x0, dtype)


def _memory_to_matrix(memory, k, t=None):
  """(n, k) matrix whose column i is unit i, raveled like params.

  Args:
    memory: tuple of k unit pytrees, whose leaves may have a leading time axis.
    k: the number of units.
    t: index into that time axis, if any.
  """
  assert len(memory) == k
  columns = []
  for unit in memory:
    leaves = [np.asarray(leaf) for leaf in jax.tree.leaves(unit)]
    if t is not None:
      leaves = [leaf[t] for leaf in leaves]
    columns.append(np.concatenate([leaf.reshape(-1) for leaf in leaves]))
  return np.stack(columns, axis=1)


def _reference_rllc(b, a, c1, c2, law0, quad, steps, eps, relative_eps, memory0=None):
  """Definition 5.1 in float64 NumPy.

  L_t = L_{t-1} + c2 (G + r I)^{-1} M_{t-1}^T g_t, r = eps + relative_eps tr(G)/k,
  with the Moore-Penrose M^+ g when r == 0; M_t = M_{t-1} B + g_t a^T;
  theta_t = theta_{t-1} - c1 M_t L_t.

  Returns:
    Arrays of theta_t, M_t and L_t for t = 1..steps.
  """
  a_mat, b_vec, x = quad
  k = len(a)
  mem = np.zeros((len(x), k)) if memory0 is None else np.array(memory0, np.float64)
  law = np.array(law0, np.float64)
  thetas, mems, laws = [], [], []
  for _ in range(steps):
    g = a_mat @ x - b_vec
    gram = mem.T @ mem
    ridge = eps + relative_eps * np.trace(gram) / k
    if ridge > 0:
      coef = np.linalg.solve(gram + ridge * np.eye(k), mem.T @ g)
    else:
      coef = np.linalg.pinv(mem) @ g
    law = law + c2 * coef
    mem = mem @ b + np.outer(g, a)
    x = x - c1 * mem @ law
    thetas.append(x)
    mems.append(mem)
    laws.append(law)
  return np.stack(thetas), np.stack(mems), np.stack(laws)


def _uniform_law(b, a):
  """L0 = 1/W ones(k), W = a^T (I - B)^{-1} ones(k)."""
  k = len(a)
  return np.full(k, 1.0 / (a @ np.linalg.solve(np.eye(k) - b, np.ones(k))))


# ---------------------------------------------------------------------------
# Shared jitted runners.


def _scan(tx, params0, state0, quad, steps):
  """Runs tx on the quadratic; returns (theta history (steps, n), state history)."""
  a_mat, b_vec = quad
  unravel = ravel_pytree(params0)[1]

  def step(carry, _):
    params, state = carry
    grads = unravel(a_mat @ ravel_pytree(params)[0] - b_vec)
    updates, state = tx.update(grads, state, params)
    params = optax.apply_updates(params, updates)
    return (params, state), (ravel_pytree(params)[0], state)

  return jax.lax.scan(step, (params0, state0), None, length=steps)[1]


def _rllc_kwargs(eps, relative_eps):
  return {} if eps is None else {"eps": eps, "relative_eps": relative_eps}


@functools.partial(jax.jit, static_argnames=("steps",))
def _linear_memory_run_jit(b, a, law, learning_rate, quad, params0, *, steps):
  tx = rllc.linear_memory(rllc.Propagator(b, a), law=law, learning_rate=learning_rate)
  return _scan(tx, params0, tx.init(params0), quad, steps)


@functools.partial(jax.jit, static_argnames=("eps", "relative_eps", "steps"))
def _rllc_run_jit(b, a, c1, c2, law0, quad, params0, memory0=None, *, eps, relative_eps, steps):
  """RLLC trajectory; memory0 = (memory pytree, gram) overrides M_0 = 0."""
  tx = rllc.rllc(
    rllc.Propagator(b, a),
    learning_rate=c1,
    law_learning_rate=c2,
    initial_law=law0,
    **_rllc_kwargs(eps, relative_eps),
  )
  state0 = tx.init(params0)
  if memory0 is not None:
    state0 = state0._replace(memory=memory0[0], gram=memory0[1])
  return _scan(tx, params0, state0, quad, steps)


@functools.partial(jax.jit, static_argnames=("kind", "steps"))
def _optax_run_jit(kind, beta, c, quad, params0, *, steps):
  tx = {
    "sgd": lambda: optax.sgd(c),
    "momentum": lambda: optax.sgd(c, momentum=beta),
    "nag": lambda: optax.sgd(c, momentum=beta, nesterov=True),
  }[kind]()
  return _scan(tx, params0, tx.init(params0), quad, steps)


@functools.partial(jax.jit, static_argnames=("eps", "relative_eps"))
def _rllc_on_gradients_jit(b, a, c1, c2, grads, params, *, eps, relative_eps):
  """Feeds a fixed gradient sequence (time axis first); returns updates, states (L0 normalized)."""
  tx = rllc.rllc(
    rllc.Propagator(b, a),
    learning_rate=c1,
    law_learning_rate=c2,
    initial_law="normalized",
    **_rllc_kwargs(eps, relative_eps),
  )

  def step(state, g):
    updates, state = tx.update(g, state, params)
    return state, (updates, state)

  return jax.lax.scan(step, tx.init(params), grads)[1]


def _linear_memory_run(*args, **kwargs):
  return jax.device_get(_linear_memory_run_jit(*args, **kwargs))


def _rllc_run(*args, **kwargs):
  return jax.device_get(_rllc_run_jit(*args, **kwargs))


def _optax_run(*args, **kwargs):
  return jax.device_get(_optax_run_jit(*args, **kwargs))


def _rllc_on_gradients(*args, **kwargs):
  return jax.device_get(_rllc_on_gradients_jit(*args, **kwargs))


def _parsed(spec):
  prop = rllc.parse_propagator(spec)
  return prop.B, prop.a


# ---------------------------------------------------------------------------
# Linear memory with a fixed law: Lemma 4.1, appendices A.1 and A.2.

STEPS_F32 = 50


def _assert_same_as_optax(spec, law, learning_rate, kind, beta, c, seed=0):
  quad, params0 = _jax_quadratic(seed, jnp.float32)
  b, a = _parsed(spec)
  got, _ = _linear_memory_run(
    b, a, jnp.asarray(law, jnp.float32), learning_rate, quad, params0, steps=STEPS_F32
  )
  want, _ = _optax_run(kind, beta, c, quad, params0, steps=STEPS_F32)
  want = np.asarray(want)
  assert np.all(np.isfinite(want))
  # The trajectory really moves, so agreement is not trivial.
  assert np.max(np.abs(want[-1] - want[0])) > 0.1
  np.testing.assert_allclose(np.asarray(got), want, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("kind", ["sgd", "momentum", "nag"])
@pytest.mark.parametrize("beta, c", [(0.9, 0.05), (0.5, 0.3), (0.99, 0.02)])
def test_special_laws_of_m_beta_plus_m0(kind, beta, c):
  """Appendix A.2: (0, c) = SGD, (c, 0) = momentum, (c beta, c) = NAG (Lemma 4.1)."""
  law = {"sgd": (0.0, c), "momentum": (c, 0.0), "nag": (c * beta, c)}[kind]
  _assert_same_as_optax(f"M({beta})+M(0)", law, 1.0, kind, beta, c)


@pytest.mark.parametrize("beta, c", [(0.9, 0.05), (0.5, 0.3)])
def test_m_beta_is_heavy_ball(beta, c):
  _assert_same_as_optax(f"M({beta})", (c,), 1.0, "momentum", beta, c)


def test_m0_is_sgd():
  _assert_same_as_optax("M(0)", (0.2,), 1.0, "sgd", 0.0, 0.2)


def test_learning_rate_scales_the_law():
  """L(B, a, L) with learning rate s and law L / s is the same optimizer."""
  beta, c, s = 0.9, 0.05, 2.5
  _assert_same_as_optax("M(0.9)+M(0)", (c * beta / s, c / s), s, "nag", beta, c)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("beta, c, from_spec", [(0.9, 0.1, True), (0.3, 1.7, False)])
def test_nag_closed_form_appendix_a1(beta, c, from_spec):
  """theta_4 = theta_1 - c(1+b+b^2+b^3) g_1 - c(1+b+b^2) g_2 - c(1+b) g_3."""
  rng = np.random.default_rng(3)
  grads = rng.standard_normal((3, 5))
  prop = f"M({beta})+M(0)" if from_spec else rllc.M(beta) + rllc.M(0.0)
  tx = rllc.linear_memory(prop, law=(c * beta, c), learning_rate=1.0)
  params = jnp.zeros(5)
  state = tx.init(params)
  total = np.zeros(5)
  for g in grads:
    updates, state = tx.update(jnp.asarray(g), state, params)
    total += np.asarray(updates)
  want = -c * (
    (1 + beta + beta**2 + beta**3) * grads[0]
    + (1 + beta + beta**2) * grads[1]
    + (1 + beta) * grads[2]
  )
  np.testing.assert_allclose(total, want, rtol=1e-12)


@pytest.mark.usefixtures("x64")
def test_linear_memory_matches_float64_reference():
  """L(B, a, L): Definition 5.1 with c2 = 0 (the law stays fixed)."""
  spec = "M(0.9)+M(0)+M2(0.6)+CM(0.9i)"
  law = np.array([0.02, -0.01, 0.03, 0.01, 0.0, 0.02])
  b, a = _parsed(spec)
  quad, params0 = _jax_quadratic(4, jnp.float64)
  got, states = _linear_memory_run(b, a, law, 0.7, quad, params0, steps=RLLC_STEPS)
  ref_b, ref_a = _reference_b_a(TERMS[spec])
  thetas, mems, _ = _reference_rllc(
    ref_b, ref_a, 0.7, 0.0, law, _quadratic(4), RLLC_STEPS, 0.0, 0.0
  )
  np.testing.assert_allclose(got, thetas, rtol=1e-10, atol=1e-10)
  np.testing.assert_array_equal(states.law[-1], law)
  np.testing.assert_allclose(
    _memory_to_matrix(states.memory, 6, -1), mems[-1], rtol=1e-10, atol=1e-10
  )
  np.testing.assert_array_equal(states.count, np.arange(1, RLLC_STEPS + 1))


# ---------------------------------------------------------------------------
# LM-RLLC against the float64 re-derivation of Definition 5.1.

RLLC_CASES = [
  # spec, c1, c2, eps, relative_eps, initial law (a convention or a vector)
  ("M(0.9)+M(0)", 0.05, 0.02, 1e-3, 0.0, "normalized"),
  ("M(0.9)+M(0)", 0.005, 0.02, 1e-3, 0.0, "ones"),
  ("M(0.9)+M(0)", 0.05, 0.02, 0.0, 0.0, (0.05, 0.5)),  # pseudo-inverse semantics
  ("M2(0.6)", 0.1, 0.05, 1e-3, 0.0, (0.3, 0.1)),
  ("M2(0.6)", 0.02, 0.05, 1e-3, 0.0, "ones"),
  ("M(0.9)+M(0)+M2(0.6)+CM(0.9i)", 0.05, 0.02, 1e-4, 1e-2, "normalized"),
  ("M(0.9)+M(0)+M2(0.6)+CM(0.9i)", 0.005, 0.02, 1e-4, 1e-2, "ones"),
]


def _reference_law0(b, a, choice) -> np.ndarray:
  """L0 of a convention, from the reference B and a (not from rllc.memory)."""
  if choice == "normalized":
    return _uniform_law(b, a)
  if choice == "ones":
    return np.ones(len(a))
  return np.asarray(choice, np.float64)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("spec, c1, c2, eps, relative_eps, law0", RLLC_CASES)
def test_rllc_matches_float64_reference(spec, c1, c2, eps, relative_eps, law0):
  b, a = _reference_b_a(TERMS[spec])
  k = len(a)
  ref_law0 = _reference_law0(b, a, law0)
  thetas, mems, laws = _reference_rllc(
    b, a, c1, c2, ref_law0, _quadratic(1), RLLC_STEPS, eps, relative_eps
  )
  assert np.all(np.isfinite(thetas[-1]))
  # The law really moves: a wrong law update cannot pass by accident.
  assert np.max(np.abs(laws[-1] - ref_law0)) > 1e-3

  quad, params0 = _jax_quadratic(1, jnp.float64)

  def make():
    return rllc.rllc(
      spec,
      learning_rate=c1,
      law_learning_rate=c2,
      eps=eps,
      relative_eps=relative_eps,
      initial_law=law0,
    )

  state0 = make().init(params0)
  np.testing.assert_allclose(np.asarray(state0.law), ref_law0, rtol=1e-12)
  np.testing.assert_array_equal(np.asarray(state0.gram), np.zeros((k, k)))
  assert len(state0.memory) == k
  for unit in state0.memory:
    for name in ("w", "b"):
      assert unit[name].shape == SHAPES[name]
      np.testing.assert_array_equal(np.asarray(unit[name]), 0.0)

  def run(params0):
    # Built from the spec inside the trace: the propagator stays concrete (the usual
    # path; the shared runners trace B and a).
    tx = make()
    return _scan(tx, params0, tx.init(params0), quad, RLLC_STEPS)

  theta_hist, states = jax.device_get(jax.jit(run)(params0))
  np.testing.assert_allclose(np.asarray(theta_hist), thetas, rtol=1e-8, atol=1e-9)
  np.testing.assert_allclose(np.asarray(states.law), laws, rtol=1e-8, atol=1e-9)
  np.testing.assert_array_equal(np.asarray(states.count), np.arange(1, RLLC_STEPS + 1))
  for t in (0, 1, 2, RLLC_STEPS // 2, RLLC_STEPS - 1):
    np.testing.assert_allclose(
      _memory_to_matrix(states.memory, k, t), mems[t], rtol=1e-9, atol=1e-10
    )
    gram = mems[t].T @ mems[t]
    np.testing.assert_allclose(
      np.asarray(states.gram[t]), gram, rtol=1e-9, atol=1e-9 * np.max(np.abs(gram))
    )


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize(
  "spec", ["M(0.9)", "M(0.9)+M(0)", "M3(0.5)", "M(0.9)+M(0)+M2(0.6)+CM(0.9i)"]
)
def test_normalized_initial_law_is_uniform(spec):
  """L0 = ones / W with W = a^T (I - B)^{-1} ones."""
  b, a = _reference_b_a(TERMS[spec])
  tx = rllc.rllc(spec, learning_rate=0.3, law_learning_rate=0.1, initial_law="normalized")
  np.testing.assert_allclose(np.asarray(tx.init(jnp.zeros(3)).law), _uniform_law(b, a), rtol=1e-12)


@pytest.mark.parametrize("spec", ["M(0.9)", "M(0.9)+M(0)", "M(0.9)+M(0)+M2(0.6)+CM(0.9i)"])
def test_default_initial_law_is_ones(spec):
  """The paper's convention, as the calibration found it (reports/calibration_initial_law)."""
  k = len(_reference_b_a(TERMS[spec])[1])
  state = rllc.rllc(spec, learning_rate=0.3, law_learning_rate=0.1).init(jnp.zeros(3))
  np.testing.assert_array_equal(np.asarray(state.law), np.ones(k))


@pytest.mark.usefixtures("x64")
def test_normalized_initial_law_gives_sgd_step_for_constant_gradient():
  """With the normalized L0 held fixed, a constant g eventually steps by c1 g.

  After t steps of a constant g the memory is g sum_{j<t} a^T B^j, so the step
  is -c1 g s_t with s_t = sum_{j<t} a^T B^j L0, and s_t -> a^T (I-B)^{-1} L0 = 1.
  """
  spec, c1 = "M(0.9)+M(0)+M2(0.6)+CM(0.9i)", 0.3
  g = np.linspace(-1.0, 2.0, N_PARAMS)
  quad = (jnp.zeros((N_PARAMS, N_PARAMS)), jnp.asarray(-g))  # grad = A x - b = g
  params0 = _to_tree(np.zeros(N_PARAMS), jnp.float64)
  law0 = rllc.rllc(spec, c1, law_learning_rate=0.0, initial_law="normalized").init(params0).law
  b, a = _parsed(spec)
  theta_hist, _ = _linear_memory_run(b, a, law0, c1, quad, params0, steps=RLLC_STEPS)
  steps = np.diff(np.concatenate([np.zeros((1, N_PARAMS)), np.asarray(theta_hist)]), axis=0)

  ref_b, ref_a = _reference_b_a(TERMS[spec])
  ref_law0 = _uniform_law(ref_b, ref_a)
  np.testing.assert_allclose(np.asarray(law0), ref_law0, rtol=1e-12)
  rows, row = [], ref_a
  for _ in range(2000):
    rows.append(row)
    row = row @ ref_b
  partial = np.cumsum(np.stack(rows) @ ref_law0)
  np.testing.assert_allclose(steps, -c1 * np.outer(partial[:RLLC_STEPS], g), rtol=1e-9, atol=1e-12)
  np.testing.assert_allclose(partial[-1], 1.0, rtol=1e-12)


# ---------------------------------------------------------------------------
# Theorem 5.2: basis independence (essential equivalence, rank-k memory, eps = 0).


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("seed", [0, 1])
def test_basis_independence_theorem_5_2(seed):
  """F(B, a) from (M0, L0) and F(Q^-1 B Q, Q^T a) from (M0 Q, Q^-1 L0) agree.

  With M <- M B + g a^T, U^Q(M, g) = U(M Q^-1, g) Q = M Q^-1 B Q + g (a^T Q),
  so the transformed input vector is Q^T a.
  """
  rng = np.random.default_rng(10 + seed)
  k, steps, c1, c2 = 3, 25, 0.05, 0.05
  b0 = rng.standard_normal((k, k))
  b = 0.8 * b0 / np.max(np.abs(np.linalg.eigvals(b0)))
  a = rng.standard_normal(k)
  q = rng.standard_normal((k, k)) + 2.0 * np.eye(k)
  assert np.linalg.cond(q) < 50
  q_inv = np.linalg.inv(q)
  law0 = 0.1 * rng.standard_normal(k)
  mem0 = 0.3 * rng.standard_normal((N_PARAMS, k))

  quad, params0 = _jax_quadratic(20 + seed, jnp.float64)
  runs = []
  for bq, aq, lq, mq in [(b, a, law0, mem0), (q_inv @ b @ q, q.T @ a, q_inv @ law0, mem0 @ q)]:
    memory = _to_memory(mq, jnp.float64)
    runs.append(
      _rllc_run(
        jnp.asarray(bq),
        jnp.asarray(aq),
        c1,
        c2,
        jnp.asarray(lq),
        quad,
        params0,
        (memory, jnp.asarray(mq.T @ mq)),
        eps=0.0,
        relative_eps=0.0,
        steps=steps,
      )
    )
  (theta1, states1), (theta2, states2) = runs

  theta1, theta2 = np.asarray(theta1), np.asarray(theta2)
  np.testing.assert_allclose(theta2, theta1, rtol=1e-8, atol=1e-9)
  np.testing.assert_allclose(
    np.asarray(states2.law), np.asarray(states1.law) @ q_inv.T, rtol=1e-8, atol=1e-9
  )
  mem1 = _memory_to_matrix(states1.memory, k, -1)
  mem2 = _memory_to_matrix(states2.memory, k, -1)
  np.testing.assert_allclose(mem2, mem1 @ q, rtol=1e-8, atol=1e-9)

  # Both follow Definition 5.1 started from (M0, L0), and the law really moved.
  thetas, _, laws = _reference_rllc(
    b, a, c1, c2, law0, _quadratic(20 + seed), steps, 0.0, 0.0, mem0
  )
  np.testing.assert_allclose(theta1, thetas, rtol=1e-8, atol=1e-9)
  assert np.max(np.abs(laws[-1] - law0)) > 1e-2


# ---------------------------------------------------------------------------
# Rank-deficient memory: finite updates, pseudo-inverse semantics.

EPS_CASES = [pytest.param((None, None), id="default-eps"), pytest.param((0.0, 0.0), id="eps0")]


@pytest.mark.usefixtures("x64")
def test_singular_memory_law_matches_pinv_reference():
  """Random gradients into M(0.9)+M(0.9)+...: eps = 0 drops only the null directions.

  The law follows L += c2 M^+ g with NumPy's SVD pseudo-inverse of the memory
  itself, so near-zero Gram eigenvalues must be dropped, not inverted.
  """
  rng = np.random.default_rng(9)
  steps, c2 = 25, 0.05
  grads = rng.standard_normal((steps, N_PARAMS))
  b, a = _reference_b_a(TERMS[SINGULAR_SPEC])
  law, mem = _uniform_law(b, a), np.zeros((N_PARAMS, len(a)))
  laws = []
  for g in grads:
    law = law + c2 * np.linalg.pinv(mem) @ g
    mem = mem @ b + np.outer(g, a)
    laws.append(law)
  prop_b, prop_a = _parsed(SINGULAR_SPEC)
  tree = _to_tree(grads, jnp.float64)
  params = _to_tree(np.zeros(N_PARAMS), jnp.float64)
  _, states = _rllc_on_gradients(prop_b, prop_a, 0.1, c2, tree, params, eps=0.0, relative_eps=0.0)
  got = np.asarray(states.law)
  np.testing.assert_allclose(got[:, 1] - got[:, 0], laws[0][1] - laws[0][0], atol=1e-9)
  np.testing.assert_allclose(got, np.stack(laws), rtol=1e-7, atol=1e-8)


def _assert_all_finite(tree):
  for leaf in jax.tree.leaves(tree):
    assert np.all(np.isfinite(np.asarray(leaf))), leaf


GRAD_STEPS = 60
F32_PARAMS = {"w": np.zeros((8, 8), np.float32), "b": np.zeros(8, np.float32)}


def _live_then_zero_gradients(live):
  rng = np.random.default_rng(5)
  grads = {
    "w": np.zeros((GRAD_STEPS, 8, 8), np.float32),
    "b": np.zeros((GRAD_STEPS, 8), np.float32),
  }
  grads["w"][:live] = rng.standard_normal((live, 8, 8))
  grads["b"][:live] = rng.standard_normal((live, 8))
  return jax.tree.map(jnp.asarray, grads)


@pytest.mark.parametrize("eps_pair", EPS_CASES)
def test_first_step_from_zero_memory(eps_pair):
  """M_0 = 0: M^+ g = 0, so L_1 = L_0 and the step is -c1 (a . L_0) g."""
  spec = SINGULAR_SPEC
  grads = _live_then_zero_gradients(5)
  b, a = _parsed(spec)
  eps, relative_eps = eps_pair
  updates, states = _rllc_on_gradients(
    b, a, 0.1, 0.1, grads, F32_PARAMS, eps=eps, relative_eps=relative_eps
  )
  ref_b, ref_a = _reference_b_a(TERMS[spec])
  law0 = _uniform_law(ref_b, ref_a)
  np.testing.assert_allclose(np.asarray(states.law[0]), law0, rtol=1e-6)
  for name in grads:
    np.testing.assert_allclose(
      np.asarray(updates[name][0]),
      -0.1 * (ref_a @ law0) * np.asarray(grads[name][0]),
      rtol=1e-5,
      atol=1e-7,
    )
  # The next steps see a rank-deficient memory and still give finite values.
  _assert_all_finite((updates, states))


@pytest.mark.parametrize("eps_pair", EPS_CASES)
def test_zero_gradients_keep_law_and_stay_finite(eps_pair):
  """M^+ 0 = 0: the law stays put while gradients are exactly zero."""
  live = 5
  grads = _live_then_zero_gradients(live)
  b, a = _parsed(SINGULAR_SPEC)
  eps, relative_eps = eps_pair
  updates, states = _rllc_on_gradients(
    b, a, 0.1, 0.1, grads, F32_PARAMS, eps=eps, relative_eps=relative_eps
  )
  _assert_all_finite((updates, states))
  laws = np.asarray(states.law)
  assert np.max(np.abs(laws[live - 1] - laws[0])) > 0  # the live phase moved the law
  np.testing.assert_array_equal(laws[live:], np.broadcast_to(laws[live - 1], laws[live:].shape))
  # The memory decays, so the updates fade out.
  assert np.max(np.abs(np.asarray(updates["w"][-1]))) < 1e-2 * np.max(
    np.abs(np.asarray(updates["w"][live - 1]))
  )

  # All-zero gradients from the start: the memory and the Gram stay 0.
  zeros = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), grads)
  updates, states = _rllc_on_gradients(
    b, a, 0.1, 0.1, zeros, F32_PARAMS, eps=eps, relative_eps=relative_eps
  )
  _assert_all_finite((updates, states))
  for leaf in jax.tree.leaves(updates):
    np.testing.assert_array_equal(np.asarray(leaf), 0.0)
  np.testing.assert_array_equal(np.asarray(states.gram), 0.0)
  np.testing.assert_array_equal(np.asarray(states.law[-1]), np.asarray(states.law[0]))


@pytest.mark.parametrize("eps_pair", EPS_CASES)
@pytest.mark.parametrize("scale", [1e3, 1e-20])
def test_float32_extreme_gradient_scales_stay_finite(scale, eps_pair):
  """float32 gradients of size 1e3 or 1e-20 into a forever-singular memory."""
  rng = np.random.default_rng(6)
  grads = {
    "w": jnp.asarray(scale * rng.standard_normal((GRAD_STEPS, 8, 8)), jnp.float32),
    "b": jnp.asarray(scale * rng.standard_normal((GRAD_STEPS, 8)), jnp.float32),
  }
  b, a = _parsed(SINGULAR_SPEC)
  eps, relative_eps = eps_pair
  updates, states = _rllc_on_gradients(
    b, a, 0.01, 0.01, grads, F32_PARAMS, eps=eps, relative_eps=relative_eps
  )
  _assert_all_finite((updates, states))
  assert np.asarray(states.law).dtype == np.float32


# ---------------------------------------------------------------------------
# Traced hyperparameters: one jit program vmapped over a grid.


@pytest.mark.usefixtures("x64")
def test_vmap_over_hyperparameters_matches_separate_runs():
  """One jit(vmap) program over (learning_rate, law_learning_rate, beta).

  The propagator M(beta)+M(0) is built inside the vmapped function from the
  traced beta; each lane must equal a separate run with concrete values.
  """
  quad, params0 = _jax_quadratic(7, jnp.float64)

  def run(learning_rate, law_learning_rate, beta):
    tx = rllc.rllc(
      rllc.M(beta) + rllc.M(0.0),
      learning_rate=learning_rate,
      law_learning_rate=law_learning_rate,
      eps=1e-3,
      relative_eps=0.0,
      initial_law="normalized",
    )
    thetas, states = _scan(tx, params0, tx.init(params0), quad, RLLC_STEPS)
    return thetas[-1], states.law, tx.init(params0).law

  # A 2 x 2 grid of (learning_rate, law_learning_rate) at beta = 0.9, then betas.
  lrs, llrs = (x.ravel() for x in np.meshgrid([0.02, 0.05], [0.0, 0.05]))
  grid = [(lr, llr, 0.9) for lr, llr in zip(lrs, llrs, strict=True)]
  grid += [(0.05, 0.02, 0.5), (0.05, 0.02, 0.95)]
  columns = [jnp.asarray(column) for column in np.array(grid).T]
  thetas, laws, law0s = jax.device_get(jax.jit(jax.vmap(run))(*columns))
  for i, (lr, llr, beta) in enumerate(grid):
    prop = rllc.M(float(beta)) + rllc.M(0.0)  # concrete, outside any trace
    law0 = rllc.rllc(prop, float(lr), float(llr), initial_law="normalized").init(params0).law
    theta_hist, states = _rllc_run(
      prop.B,
      prop.a,
      float(lr),
      float(llr),
      law0,
      quad,
      params0,
      eps=1e-3,
      relative_eps=0.0,
      steps=RLLC_STEPS,
    )
    np.testing.assert_allclose(thetas[i], theta_hist[-1], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(laws[i], states.law, rtol=1e-10, atol=1e-12)
    # The traced normalized law is the uniform law of M(beta)+M(0): 1 / (1/(1-beta) + 1).
    b, a = _reference_b_a([("M", 1, beta), ("M", 1, 0.0)])
    np.testing.assert_allclose(law0s[i], _uniform_law(b, a), rtol=1e-12)
  # Different grid points really give different results.
  assert np.max(np.abs(thetas[0] - thetas[3])) > 1e-3
  assert np.max(np.abs(laws[2, -1] - laws[0, -1])) > 1e-4
  assert np.max(np.abs(thetas[4] - thetas[5])) > 1e-3
