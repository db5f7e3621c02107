"""rllc.analysis.corrections against the memory paper's closed forms, dense Hessians, simulation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rllc.analysis import corrections

RNG = np.random.default_rng(0)
X_NET, Y_NET = RNG.normal(size=(16, 3)), RNG.normal(size=16)  # 3 -> 4 -> 1 tanh net, d = 21
X_LOGISTIC, Y_LOGISTIC = RNG.normal(size=(12, 5)), RNG.integers(0, 2, size=12)  # d = 5

HYPERPARAMETERS = {
  "heavy_ball": {"beta": 0.9},
  "nesterov": {"beta": 0.8},
  "adamw": {"beta1": 0.9, "beta2": 0.99, "eps": 1e-2, "lam": 0.1},
  "nadam": {"beta1": 0.8, "beta2": 0.95, "eps": 1e-2, "lam": 0.1},
  "lion_k": {"rho1": 0.9, "rho2": 0.99, "eps": 1e-2, "lam": 0.1},
}


@pytest.fixture(autouse=True)
def x64():
  """Every test in float64, restoring the flag afterwards."""
  with jax.enable_x64(True):
    yield


def net_loss(theta):
  """Mean squared error of a 3 -> 4 -> 1 tanh network: smooth, not quadratic."""
  w1, b1, w2, b2 = theta[:12].reshape(3, 4), theta[12:16], theta[16:20], theta[20]
  return jnp.mean((jnp.tanh(X_NET @ w1 + b1) @ w2 + b2 - Y_NET) ** 2)


def logistic_loss(theta):
  """Logistic regression on 12 random points, d = 5."""
  logits = X_LOGISTIC @ theta
  return jnp.mean(jax.nn.softplus(logits) - Y_LOGISTIC * logits)


def points(d, count=3, seed=1):
  """`count` seeded random parameter vectors of size d, stacked."""
  return jnp.asarray(np.random.default_rng(seed).normal(size=(count, d)))


def batched(function):
  """function(theta, h) compiled once and evaluated at each of the stacked thetas."""
  compiled = jax.jit(function)
  return lambda thetas, h: jax.tree.map(
    lambda *values: np.stack(values), *[compiled(theta, h) for theta in thetas]
  )


# Closed forms (Appendix E) against the generic Assumption D.1 derivation.


@pytest.mark.parametrize("name", list(HYPERPARAMETERS))
def test_closed_form_equals_assumption_d1_derivation(name):
  hyperparameters, h, thetas = HYPERPARAMETERS[name], 0.1, points(21)
  first_order, correction = corrections.memoryless(
    corrections.momentum_form(name, **hyperparameters), net_loss
  )

  def both(theta, h):
    closed = corrections.closed_form(name, net_loss, theta, h, **hyperparameters)
    return (first_order(theta), correction(theta, h)), closed

  derived, closed = batched(both)(thetas, h)
  for actual, expected in zip(derived, closed, strict=True):
    np.testing.assert_allclose(actual, expected, rtol=1e-8, atol=1e-14)
  assert np.min(np.max(np.abs(closed[1]), axis=1)) > 1e-3  # M is not trivially zero


def test_signum_is_adam_with_equal_betas():
  # Section 4: Lion with rho1 = rho2 = beta (signum) has AdamW's correction with beta1 = beta2.
  common, h, thetas = {"eps": 1e-2, "lam": 0.1}, 0.1, points(21)
  _, derived = corrections.memoryless(
    corrections.lion_k_form(rho1=0.9, rho2=0.9, **common), net_loss
  )

  def corrections_of(theta, h):
    lion = corrections.closed_form("lion_k", net_loss, theta, h, rho1=0.9, rho2=0.9, **common)
    adam = corrections.closed_form("adamw", net_loss, theta, h, beta1=0.9, beta2=0.9, **common)
    return lion[1], adam[1], derived(theta, h)

  lion, adam, derived = batched(corrections_of)(thetas, h)
  np.testing.assert_allclose(lion, adam, rtol=1e-10)
  np.testing.assert_allclose(derived, adam, rtol=1e-8)


# Hessian-vector products against dense Hessians (d = 5).


def dense_correction(name, theta, h, hyperparameters):
  """Appendix E's M written with jax.hessian."""
  hessian = jax.hessian(logistic_loss)(theta)
  grad = jax.grad(logistic_loss)(theta)
  if name in ("heavy_ball", "nesterov"):
    beta = hyperparameters["beta"]
    power = 1 if name == "heavy_ball" else 2
    return h * beta**power / (1 - beta) ** 3 * hessian @ grad
  eps, lam = hyperparameters["eps"], hyperparameters["lam"]
  if name == "lion_k":
    rho1, rho2 = hyperparameters["rho1"], hyperparameters["rho2"]
    k = lambda x: corrections.perturbed_l1(x, eps)  # noqa: E731
    grad_k, hessian_k = jax.grad(k)(-grad), jax.hessian(k)(-grad)
    return -h * rho1 / (1 - rho2) * hessian_k @ hessian @ (grad_k - lam * theta)
  beta1, beta2 = hyperparameters["beta1"], hyperparameters["beta2"]
  a1 = (beta1 if name == "adamw" else beta1**2) / (1 - beta1)
  a2 = beta2 / (1 - beta2)
  scale = grad**2 + eps
  grad_l1 = hessian @ (grad / jnp.sqrt(scale))  # grad ||grad L||_{1,eps}
  coefficient = (a1 - a2) / jnp.sqrt(scale) + eps * a2 / scale**1.5
  return h * coefficient * (grad_l1 + lam * hessian @ theta)


@pytest.mark.parametrize("name", list(HYPERPARAMETERS))
def test_hessian_vector_products_equal_dense_hessian(name):
  hyperparameters, h, thetas = HYPERPARAMETERS[name], 0.1, points(5)

  def both(theta, h):
    _, correction = corrections.closed_form(name, logistic_loss, theta, h, **hyperparameters)
    return correction, dense_correction(name, theta, h, hyperparameters)

  actual, expected = batched(both)(thetas, h)
  np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-16)


# Finite n (Appendix D, Lemma K.1, Appendix L, eq. (9)); n is traced, so one compilation.


def test_heavy_ball_finite_n_is_lemma_k1():
  beta, h, theta = 0.7, 0.1, points(5)[0]
  first_order, correction = corrections.memoryless(
    corrections.heavy_ball_form(beta=beta), logistic_loss
  )

  @jax.jit
  def both(n):
    grad = jax.grad(logistic_loss)(theta)
    factor = beta * (1 - (2 * n + 1) * beta**n * (1 - beta) - beta ** (2 * n + 1)) / (1 - beta) ** 3
    expected = (
      (1 - beta ** (n + 1)) / (1 - beta) * grad,
      h * factor * jax.hessian(logistic_loss)(theta) @ grad,
    )
    return (first_order(theta, n), correction(theta, h, n)), expected

  for n in (0, 1, 7):
    actual, expected = both(n)
    np.testing.assert_allclose(actual[0], expected[0], rtol=1e-12)
    np.testing.assert_allclose(actual[1], expected[1], rtol=1e-10, atol=1e-16)


def appendix_l_correction(name, theta, h, n, hyperparameters):
  """Appendix L's M^{(n)} of bias-corrected AdamW and Lion-K (the figure 1 formulas)."""
  eps, lam = hyperparameters["eps"], hyperparameters["lam"]
  grad = jax.grad(logistic_loss)(theta)
  hessian = jax.hessian(logistic_loss)(theta)
  scale = grad**2 + eps
  direction = hessian @ (grad / jnp.sqrt(scale)) + lam * hessian @ theta
  if name == "adamw":
    beta1, beta2 = hyperparameters["beta1"], hyperparameters["beta2"]
    a1 = beta1 / (1 - beta1) - (n + 1) * beta1 ** (n + 1) / (1 - beta1 ** (n + 1))
    a2 = beta2 / (1 - beta2) - (n + 1) * beta2 ** (n + 1) / (1 - beta2 ** (n + 1))
    return h * a1 * direction / jnp.sqrt(scale) - h * a2 * grad**2 * direction / scale**1.5
  rho1, rho2 = hyperparameters["rho1"], hyperparameters["rho2"]
  a = rho1 / (1 - rho2) - (n + 1) * rho2**n * rho1 / (1 - rho2 ** (n + 1))
  return h * a * eps / scale**1.5 * direction  # grad (grad L^T theta - L) = grad^2 L theta


@pytest.mark.parametrize("name", ["adamw", "lion_k"])
def test_bias_corrected_finite_n_is_appendix_l(name):
  hyperparameters, h, thetas = HYPERPARAMETERS[name], 0.1, points(5, count=2)
  if name == "adamw":
    form = corrections.adamw_form(**hyperparameters)
  else:
    form = corrections.lion_k_form(**hyperparameters, bias_correction=True)
  first_order, correction = corrections.memoryless(form, logistic_loss)

  @jax.jit
  def both(n):
    def at(theta):
      actual = first_order(theta, n), correction(theta, h, n)
      limit, _ = corrections.closed_form(name, logistic_loss, theta, h, **hyperparameters)
      return actual, (limit, appendix_l_correction(name, theta, h, n, hyperparameters))

    return jax.vmap(at)(thetas)

  for n in (0, 3, 40):
    actual, expected = both(n)
    np.testing.assert_allclose(actual[0], expected[0], rtol=1e-10)  # F^{(n)} = F~
    np.testing.assert_allclose(actual[1], expected[1], rtol=1e-8, atol=1e-16)


def test_lion_k_finite_n_is_equation_9_by_brute_force():
  # Lion-K without bias correction: F^{(s)} changes with s, so the Appendix D loop over s runs.
  # Reference: eq. (9) with dF^{(n)}/dtheta^{(n-k)} the dense Jacobian of eq. (3) in the history.
  rho1, rho2, eps, lam, h, n = 0.6, 0.8, 1e-2, 0.1, 0.1, 4
  soft_sign = lambda x: x / jnp.sqrt(x**2 + eps)  # noqa: E731

  def f(history):  # F^{(n)}(theta^{(n)}, ..., theta^{(0)}) of eq. (3); history[j] = theta^{(j)}
    count = history.shape[0]
    grads = jax.vmap(jax.grad(logistic_loss))(history)
    weights = rho2 ** jnp.arange(count - 1, -1, -1)
    m1 = -(1 - rho2) * rho1 / rho2 * weights @ grads
    m2 = -(1 - rho1 / rho2) * grads[-1]
    return -soft_sign(m1 + m2) + lam * history[-1]

  form = corrections.lion_k_form(rho1=rho1, rho2=rho2, eps=eps, lam=lam)
  assert not form.stationary
  _, correction = corrections.memoryless(form, logistic_loss)

  @jax.jit
  def both(theta):
    jacobian = jax.jacobian(f)(jnp.tile(theta, (n + 1, 1)))  # [r, j, i] = dF_r/dtheta_i^{(j)}
    steps = [f(jnp.tile(theta, (s + 1, 1))) for s in range(n)]  # F^{(s)}(theta)
    expected = h * sum(jacobian[:, n - k] @ sum(steps[n - k : n]) for k in range(1, n + 1))
    return correction(theta, h, n), expected

  actual, expected = both(points(5)[0])
  np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-16)


# The iterations with memory against Examples 1.1 and 1.3 written with explicit history sums.


def test_trajectory_is_heavy_ball_and_adamw_from_their_definitions():
  h, steps, theta0 = 0.05, 8, points(5)[0]
  beta, beta1, beta2, eps, lam = 0.8, 0.9, 0.99, 1e-3, 0.1
  jitted_gradient = jax.jit(jax.grad(logistic_loss))
  gradient = lambda theta: np.asarray(jitted_gradient(theta))  # noqa: E731
  heavy, adam = [np.asarray(theta0)], [np.asarray(theta0)]
  for n in range(steps):
    grads = [gradient(t) for t in heavy]
    heavy.append(heavy[-1] - h * sum(beta ** (n - k) * grads[k] for k in range(n + 1)))
    grads = [gradient(t) for t in adam]
    m1 = (
      (1 - beta1) / (1 - beta1 ** (n + 1)) * sum(beta1 ** (n - k) * grads[k] for k in range(n + 1))
    )
    m2 = (
      (1 - beta2)
      / (1 - beta2 ** (n + 1))
      * sum(beta2 ** (n - k) * grads[k] ** 2 for k in range(n + 1))
    )
    adam.append(adam[-1] - h * (m1 / np.sqrt(m2 + eps) + lam * adam[-1]))
  heavy_form = corrections.heavy_ball_form(beta=beta)
  adam_form = corrections.adamw_form(beta1=beta1, beta2=beta2, eps=eps, lam=lam)
  trajectory = jax.jit(corrections.trajectory, static_argnums=(0, 1, 4))
  np.testing.assert_allclose(trajectory(heavy_form, logistic_loss, theta0, h, steps), heavy)
  np.testing.assert_allclose(trajectory(adam_form, logistic_loss, theta0, h, steps), adam)


# The key claim (Corollary 3.3, Lemma K.1): the corrected memoryless iteration is O(h^2) close.


def test_heavy_ball_correction_makes_the_memoryless_iteration_second_order():
  # Both iterations start at theta^{(0)} with no memory, as in Theorem 3.2: the memoryless one
  # uses the finite-n F^{(n)} = (1 - beta^{n+1}) / (1 - beta) grad L and M^{(n)} of Lemma K.1, so
  # the initial transient is part of the approximation and no burn-in is needed. Errors are
  # max_{n <= T/h} ||theta^{(n)} - theta~^{(n)}||_inf; every h runs T / min(h) steps (one
  # compilation) and is scored on its first T/h. (The n -> infinity forms F~, M from the same
  # empty start are O(h) off through the transient: measured slope 0.97.)
  beta, horizon, rates = 0.5, 0.5, np.array([0.01, 0.005, 0.0025])
  steps = round(horizon / rates.min())
  form, theta0 = corrections.heavy_ball_form(beta=beta), points(21)[0]

  @jax.jit
  def distances(h):
    true = corrections.trajectory(form, net_loss, theta0, h, steps)
    return [
      jnp.max(
        jnp.abs(
          corrections.memoryless_trajectory(form, net_loss, theta0, h, steps, corrected=c) - true
        ),
        axis=1,
      )
      for c in (False, True)
    ]

  errors = np.array(
    [[float(d[: round(horizon / h) + 1].max()) for d in distances(h)] for h in rates]
  )  # [h, (first order, corrected)]
  slopes = np.polyfit(np.log(rates), np.log(errors), 1)[0]
  assert np.all(errors[:, 1] < 0.3 * errors[:, 0]), errors
  assert slopes[0] <= 1.2 and slopes[1] >= 1.8, slopes  # measured: 1.01 and 1.95


# Bad input.


def test_unknown_optimizer_raises():
  with pytest.raises(ValueError, match="unknown optimizer 'adam'; valid: heavy_ball"):
    corrections.momentum_form("adam", beta=0.9)
  with pytest.raises(ValueError, match="unknown optimizer 'sgd'"):
    corrections.closed_form("sgd", logistic_loss, jnp.zeros(5), 0.1)


@pytest.mark.parametrize(
  ("name", "hyperparameters", "message"),
  [
    ("heavy_ball", {"beta": 1.0}, r"beta must be in \[0, 1\), got 1.0"),
    ("nesterov", {"beta": -0.1}, "beta must be in"),
    ("adamw", {"beta1": 0.9, "beta2": 1.5, "eps": 1e-8, "lam": 0.0}, "beta2 must be in"),
    ("nadam", {"beta1": 0.9, "beta2": 0.99, "eps": 0.0, "lam": 0.0}, "eps must be > 0"),
    ("lion_k", {"rho1": 0.9, "rho2": 1.0, "eps": 1e-8, "lam": 0.0}, "rho2 must be in"),
    ("lion_k", {"rho1": 0.9, "rho2": 0.0, "eps": 1e-8, "lam": 0.0}, r"rho2 \(b_1"),
  ],
)
def test_invalid_hyperparameters_raise(name, hyperparameters, message):
  with pytest.raises(ValueError, match=message):
    corrections.momentum_form(name, **hyperparameters)


def test_momentum_form_checks_its_fields():
  with pytest.raises(ValueError, match="one entry per momentum variable"):
    corrections.MomentumForm(g=(), beta=(0.5,), b=(1.0,), phi=lambda m: m, debias=(False,))
  with pytest.raises(ValueError, match="beta_1 must be in"):
    corrections.MomentumForm(
      g=(lambda loss, theta: theta,), beta=(1.0,), b=(1.0,), phi=lambda m: m, debias=(False,)
    )


@pytest.mark.parametrize(
  ("name", "hyperparameters"),
  [
    ("heavy_ball", {"beta": 1.0}),
    ("adamw", {"beta1": 1.0, "beta2": 0.99, "eps": 1e-8, "lam": 0.0}),
    ("lion_k", {"rho1": 0.9, "rho2": 0.99, "eps": 1e-8, "lam": -1.0}),
  ],
)
def test_closed_forms_reject_invalid_hyperparameters(name, hyperparameters):
  with pytest.raises(ValueError, match="must be"):
    corrections.closed_form(name, logistic_loss, jnp.zeros(5), 0.1, **hyperparameters)
