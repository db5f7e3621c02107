"""Tests of rllc.analysis.linear: the memoryless reading (W, S) of a fixed-law linear memory.

References independent of the closed forms: brute-force sums of the step
weights, the impulse response of the real optimizers (rllc's `lm:` and optax's
heavy ball and Nesterov), the real optimizer's steps on a quadratic, the
contraction rate of its iterates, and the heavy-ball and Nesterov
coefficients worked out by hand below from the memory paper's appendix E.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rllc
from eval.cli import commands as cli
from rllc.analysis import linear

# Spectral radius <= 0.95 each: M, Jordan blocks (M2, M3), rotation blocks (CM, CM2) and sums.
SPECS = [
  "M(0.95)",
  "M2(0.6)",
  "M3(0.7)+M(0)",
  "CM(0.9i)",
  "CM2(0.5+0.5i)+M(-0.8)",
  "M(0.9)+M(0)+M2(0.6)+CM(0.9i)",
]


@pytest.fixture
def x64():
  """Runs the test with float64 enabled, restoring the flag afterwards."""
  with jax.enable_x64(True):
    yield


def _run(tx, grad_fn, theta0, steps):
  """Runs tx from theta0 in float64; returns the gradients fed and the updates, [steps, d] each."""
  theta = jnp.asarray(theta0, jnp.float64)
  state = tx.init(theta)
  update = jax.jit(tx.update)
  grads, updates = [], []
  for t in range(steps):
    g = grad_fn(t, theta)
    u, state = update(g, state)
    theta = theta + u
    grads.append(np.asarray(g))
    updates.append(np.asarray(u))
  return np.stack(grads), np.stack(updates)


def _impulse_response(tx, steps):
  """-update_t for gradients 1, 0, 0, ... and h = 1: the step weights w_t of a linear optimizer."""
  impulse = np.eye(steps, 1)  # strongly typed: a weak-typed float64 gradient accumulates in float32
  return -_run(tx, lambda t, _: jnp.asarray(impulse[t]), np.zeros(1), steps)[1][:, 0]


@pytest.mark.parametrize("spec", SPECS)
def test_closed_forms_equal_brute_force_sums(spec):
  rng = np.random.default_rng(SPECS.index(spec))
  prop = rllc.parse_propagator(spec)
  n = 2000
  for _ in range(3):
    law = rng.standard_normal(prop.k)
    w = linear.weights(spec, law, n)
    eff = linear.effective(spec, law)
    scale = np.sum(np.abs(w)) + np.sum(np.arange(n) * np.abs(w))
    sums = [np.sum(w), np.sum(np.arange(n) * w)]
    np.testing.assert_allclose([eff.W, eff.S], sums, rtol=0, atol=1e-12 * scale)
    assert eff.penalty == eff.S / 2
    assert eff.spectral_radius == pytest.approx(prop.spectral_radius())


def test_law_trajectory_is_effective_per_law():
  spec = "M(0.9)+M(0)+M2(0.6)+CM(0.9i)"
  laws = np.random.default_rng(0).standard_normal((7, 6))
  expected = [(e.W, e.penalty) for e in (linear.effective(spec, law) for law in laws)]
  np.testing.assert_allclose(linear.law_trajectory(spec, laws), expected, rtol=1e-12)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("spec", ["M(0.9)+M2(0.6)+CM(0.9i)", "CM2(0.5+0.5i)+M(-0.8)"])
def test_weights_are_the_impulse_response_of_the_lm_optimizer(spec):
  law = np.random.default_rng(1).standard_normal(rllc.parse_propagator(spec).k)
  tx = rllc.optimizer("lm:" + spec, law=tuple(law), learning_rate=1.0).tx
  np.testing.assert_allclose(_impulse_response(tx, 40), linear.weights(spec, law, 40), atol=1e-12)


@pytest.mark.usefixtures("x64")
def test_real_step_is_minus_h_times_weighted_past_gradients():
  """On L = θ^T A θ / 2, update_n = -h Σ_{i<=n} w_i ∇L(θ^{(n-i)}) exactly, from the real code."""
  spec, h, steps = "M(0.9)+M(0)+M2(0.6)+CM(0.9i)", 0.05, 50
  rng = np.random.default_rng(2)
  law = rng.standard_normal(6)
  q = rng.standard_normal((3, 3))
  a_mat = jnp.asarray(q @ q.T + np.eye(3))
  tx = rllc.optimizer("lm:" + spec, law=tuple(law), learning_rate=h).tx
  grads, updates = _run(tx, lambda _, theta: a_mat @ theta, rng.standard_normal(3), steps)
  w = linear.weights(spec, law, steps)
  for n in range(steps):
    expected = -h * w[: n + 1] @ grads[n::-1]
    np.testing.assert_allclose(updates[n], expected, rtol=1e-10, atol=1e-14)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("beta", [0.5, 0.9, 0.99])
def test_heavy_ball_and_nesterov_are_appendix_e(beta):
  """By hand. Heavy ball (the memory paper's eq. 2, optax.sgd with momentum β): w_i = β^i, so

    W = Σ β^i = 1/(1-β),   S = Σ i β^i = β/(1-β)^2,   h W S/2 = hβ/(2(1-β)^3)  (appendix E),

  and the modified loss is L + hβ/(2(1-β)^2) |∇L|^2, eq. (6). Nesterov (Example 1.2, optax's
  nesterov=True) steps β Σ β^i g_{n-i} + g_n: the units M(β), M(0) with law (β, 1), w_0 = 1 + β
  and w_i = β^{i+1}, so

    W = β/(1-β) + 1 = 1/(1-β),   S = Σ i β^{i+1} = β^2/(1-β)^2,
    h W S/2 = hβ^2/(2(1-β)^3)   (appendix E's Nesterov correction).
  """
  n = 30
  heavy = linear.effective(f"M({beta})", [1.0])
  np.testing.assert_allclose(
    [heavy.W, heavy.S, heavy.W * heavy.penalty],
    [1 / (1 - beta), beta / (1 - beta) ** 2, beta / (2 * (1 - beta) ** 3)],
    rtol=1e-12,
  )
  optax_heavy = _impulse_response(optax.sgd(1.0, momentum=beta), n)
  np.testing.assert_allclose(linear.weights(f"M({beta})", [1.0], n), optax_heavy, rtol=1e-12)

  nesterov = linear.effective(f"M({beta})+M(0)", [beta, 1.0])
  np.testing.assert_allclose(
    [nesterov.W, nesterov.S, nesterov.W * nesterov.penalty],
    [1 / (1 - beta), beta**2 / (1 - beta) ** 2, beta**2 / (2 * (1 - beta) ** 3)],
    rtol=1e-12,
  )
  optax_nesterov = _impulse_response(optax.sgd(1.0, momentum=beta, nesterov=True), n)
  np.testing.assert_allclose(
    linear.weights(f"M({beta})+M(0)", [beta, 1.0], n), optax_nesterov, rtol=1e-12
  )


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize(
  "spec, law",
  [
    ("M(0.9)", (1.0,)),
    ("M(0.9)+M(0)", (0.9, 1.0)),
    ("M(0.9)+M(0.8)+M(0.7)", (1.0, 1.0, 1.0)),
    ("M(0.9)+M(0)", (-0.1, 2.0)),  # W = 1, S = -9: anti-regularizing
    ("M2(0.6)+CM(0.9i)", (1.0, 0.5, -0.3, 0.2)),
  ],
)
def test_real_iterates_contract_at_the_memoryless_rate(spec, law):
  """On L = λθ^2/2 the memoryless iteration θ <- θ - hW(λθ + hSλ^2θ) contracts by
  1 - hλW - (hλ)^2 W S. The real optimizer's θ_{n+1}/θ_n, once its memory's
  transients (ρ(B)^n) are gone, must agree to O(h^3): (1 - r - hλW) / (hλ)^2 -> W S.
  """
  eff = linear.effective(spec, law)
  lam, steps = 2.0, 700
  h = 2e-4 / (lam * eff.W)
  tx = rllc.optimizer("lm:" + spec, law=law, learning_rate=h).tx
  theta = jnp.ones(1)
  state = tx.init(theta)
  update = jax.jit(tx.update)
  for _ in range(steps):
    u, state = update(lam * theta, state)
    theta, previous = theta + u, theta
  ratio = float(theta[0] / previous[0])
  measured = (1 - ratio - h * lam * eff.W) / (h * lam) ** 2
  assert measured == pytest.approx(eff.W * eff.S, rel=1e-2)


@pytest.mark.parametrize("spec", ["M(1)", "M(1.2)", "M(0.9)+CM(1i)", "M2(-1)"])
def test_spectral_radius_at_least_one_is_refused(spec):
  prop = linear.propagator(spec)
  with pytest.raises(ValueError, match=r"spectral radius .*diverges.*must be < 1") as info:
    linear.effective(spec, np.ones(prop.k))
  assert spec in str(info.value)
  with pytest.raises(ValueError, match="diverges"):
    linear.law_trajectory(prop, np.ones((3, prop.k)))


def test_wrong_law_length_is_refused():
  with pytest.raises(ValueError, match=r"k = 2 \(M\(0\.9\), M\(0\)\); got 3"):
    linear.effective("M(0.9)+M(0)", [1.0, 2.0, 3.0])
  with pytest.raises(ValueError, match=r"\[T, 4\].*got shape \(5, 3\)"):
    linear.law_trajectory("M2(0.6)+CM(0.9i)", np.ones((5, 3)))


def test_cli_prints_the_numbers(capsys):
  assert cli.main(["analyze", "M(0.9)+M(0)", "--law", "0.9,1", "--lr", "0.01"]) == 0
  out = capsys.readouterr().out
  rows = {line[:22].strip(): line[22:] for line in out.splitlines()}
  assert rows["k"] == "2" and rows["units"] == "M(0.9), M(0)"
  assert float(rows["spectral radius"]) == pytest.approx(0.9)
  assert float(rows["W = a^T (I-B)^-1 L"]) == pytest.approx(10)
  assert float(rows["S = a^T B (I-B)^-2 L"]) == pytest.approx(81)
  assert float(rows["effective lr h*W"]) == pytest.approx(0.1)
  assert float(rows["penalty h*S/2"]) == pytest.approx(0.405)
  assert "S > 0: the memory regularizes" in out


def test_cli_reads_the_sign(capsys):
  assert cli.main(["analyze", "M(0.9)+M(0)", "--law=-0.1,2"]) == 0
  out = capsys.readouterr().out
  assert "S < 0: the memory anti-regularizes" in out and "effective lr" not in out
  assert cli.main(["analyze", "M(0)", "--law", "1"]) == 0
  assert "S = 0: the memory neither" in capsys.readouterr().out


@pytest.mark.parametrize(
  "args, culprit, valid",
  [
    (["M(0.9", "--law", "1"], "'M(0.9'", "missing ')'"),
    (["M(0.9)+M(0)", "--law", "0.9"], "k = 2", "M(0.9), M(0)"),
    (["M(1)", "--law", "1"], "spectral radius 1", "must be < 1"),
    (["M(0.9)+M(0)", "--law", "0.9,x"], "'x'", "k = 2 numbers"),
    (["M(0.9)", "--law", "1", "--lr", "-1"], "--lr -1", "must be positive"),
  ],
)
def test_cli_bad_input_exits_2(capsys, args, culprit, valid):
  assert cli.main(["analyze", *args]) == 2
  captured = capsys.readouterr()
  assert captured.out == ""
  assert captured.err.startswith("rllc: ") and culprit in captured.err and valid in captured.err
