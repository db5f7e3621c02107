"""The memoryless approximation of an optimizer with memory and its correction M (the memory paper).

The memory paper (../shared/papers/memory_implicitly_modifies_the_loss.md) studies iterations

  theta^{(n+1)} = theta^{(n)} - h F^{(n)}(theta^{(n)}, ..., theta^{(0)})                        (1)

and replaces them by the memoryless iteration

  theta~^{(n+1)} = theta~^{(n)} - h [F^{(n)}(theta~^{(n)}) + M^{(n)}(theta~^{(n)})],       (4)

where F^{(n)}(theta) = F^{(n)}(theta, ..., theta) and the correction from memory is

  M_r^{(n)}(theta) = h sum_{k=1}^n dF_r^{(n)}/dtheta^{(n-k)}(theta)^T
                       sum_{s=n-k}^{n-1} F^{(s)}(theta).                                      (9)

Started from theta~^{(0)} = theta^{(0)}, (4) stays O(h^2) close to (1) for floor(T/h) steps
(Theorem 3.2, Corollary 3.3); without M the error is O(h).

Assumption D.1 (full batch). F^{(n)} is a function of L momentum variables,

  F^{(n)} = Phi(m_1^{(n+1)}, ..., m_L^{(n+1)}),
  m_l^{(n+1)} = b_l^{(n+1)} sum_{k=0}^n beta_l^k g_l(theta^{(n-k)}),                            (10)

and (9) becomes, with g-bar_l^{(s+1)}(theta) = b_l^{(s+1)} sum_{k=0}^s beta_l^k g_l(theta) and
F^{(s)}(theta) = Phi(g-bar^{(s+1)}(theta)),

  M^{(n)}(theta) = h sum_l b_l^{(n+1)} J_{Phi,l}(g-bar^{(n+1)}) J_{g_l}(theta) v_l^{(n)},
  v_l^{(n)} = sum_{k=1}^n beta_l^k sum_{s=n-k}^{n-1} F^{(s)}(theta)
            = sum_{s=0}^{n-1} (beta_l^{n-s} - beta_l^{n+1}) / (1 - beta_l) F^{(s)}(theta),

J_{Phi,l} the Jacobian of Phi in its l-th argument. (Appendix D prints g-bar^{(s+1)} with
b_l^{(n+1)} and g_l^{(n-k)}; F^{(s)} of (9) needs b_l^{(s+1)}, and g_l does not depend on n in
full batch.) As n -> infinity with b_l^{(n+1)} -> b_l, g-bar_l -> b_l g_l / (1 - beta_l),
v_l -> beta_l / (1 - beta_l)^2 F~ and

  F~(theta) = Phi(g-bar_1(theta), ..., g-bar_L(theta)),
  M(theta)  = h sum_l b_l beta_l / (1 - beta_l)^2 J_{Phi,l}(g-bar) J_{g_l}(theta) F~(theta).

Everything here is autodiff with Jacobian-vector products: J_{g_l} v is `jax.jvp` of g_l along v,
and sum_l J_{Phi,l} t_l is one `jax.jvp` of Phi with the tangents (t_1, ..., t_L). The closed
forms of Appendix E use Hessian-vector products. Parameters are flat 1-D vectors (use
`jax.flatten_util.ravel_pytree` for a pytree); no dense Hessian or Jacobian is formed.

The paper's epsilon sits inside the square root: AdamW divides by sqrt(m_2 + eps) (Example 1.3),
so its first-order step is grad L / sqrt(grad L^2 + eps) + lambda theta; Lion-K's smooth kernel
is K(x) = ||x||_{1,eps} = sum_i sqrt(x_i^2 + eps), grad K(x) = x / sqrt(x^2 + eps), the same
soft sign. Ordinary Lion (K = ||x||_1, grad K = sign) is not differentiable and not covered.
"""

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp

Array = jax.Array
Loss = Callable[[Array], Array]


def _check_decay(name: str, value: float) -> None:
  if not 0.0 <= value < 1.0:
    raise ValueError(f"{name} must be in [0, 1), got {value}")


def _check_positive(name: str, value: float) -> None:
  if not value > 0.0:
    raise ValueError(f"{name} must be > 0, got {value}")


def _check_nonnegative(name: str, value: float) -> None:
  if not value >= 0.0:
    raise ValueError(f"{name} must be >= 0, got {value}")


def _check_adam(beta1: float, beta2: float, eps: float, lam: float) -> None:
  _check_decay("beta1", beta1)
  _check_decay("beta2", beta2)
  _check_positive("eps", eps)
  _check_nonnegative("lam", lam)


def _check_lion(rho1: float, rho2: float, eps: float, lam: float) -> None:
  _check_decay("rho1", rho1)
  _check_decay("rho2", rho2)
  _check_positive("eps", eps)
  _check_nonnegative("lam", lam)


@dataclasses.dataclass(frozen=True)
class MomentumForm:
  """F^{(n)} = Phi(m_1^{(n+1)}, ..., m_L^{(n+1)}) of Assumption D.1, eq. (10), full batch.

  m_l^{(n+1)} = b_l^{(n+1)} sum_{k=0}^n beta_l^k g_l(theta^{(n-k)}), with
  b_l^{(n+1)} = b_l / (1 - beta_l^{n+1}) where `debias[l]` (Adam's bias correction, Appendix L)
  and b_l^{(n+1)} = b_l otherwise.

  Attributes:
    g: the g_l(loss, theta) -> R^d.
    beta: the decays beta_l in [0, 1); beta_l = 0 is a variable without memory.
    b: the limits b_l of b_l^{(n+1)}.
    phi: Phi(m_1, ..., m_L) -> R^d, a JAX function.
    debias: whether b_l^{(n+1)} carries the bias correction 1 / (1 - beta_l^{n+1}).
  """

  g: tuple[Callable[[Loss, Array], Array], ...]
  beta: tuple[float, ...]
  b: tuple[float, ...]
  phi: Callable[..., Array]
  debias: tuple[bool, ...]

  def __post_init__(self):
    sizes = {len(self.g), len(self.beta), len(self.b), len(self.debias)}
    if len(sizes) != 1:
      raise ValueError(f"g, beta, b and debias must have one entry per momentum variable: {sizes}")
    for index, beta in enumerate(self.beta, start=1):
      _check_decay(f"beta_{index}", beta)

  @property
  def stationary(self) -> bool:
    """Whether g-bar_l^{(s+1)} = b_l^{(s+1)} (1 - beta_l^{s+1}) / (1 - beta_l) g_l is constant in s.

    True when every variable is bias-corrected or has beta_l = 0: then F^{(s)}(theta) = F~(theta)
    for all s and v_l^{(n)} = (sum_{k=1}^n k beta_l^k) F~(theta).
    """
    return all(debias or beta == 0 for debias, beta in zip(self.debias, self.beta, strict=True))


def _b(form: MomentumForm, n) -> list:
  """b_l^{(n+1)}; n = None is the limit b_l."""
  return [
    b / (1 - jnp.power(beta, n + 1)) if debias and n is not None else b
    for b, beta, debias in zip(form.b, form.beta, form.debias, strict=True)
  ]


def _averages(form: MomentumForm, gs: list, n) -> list:
  """g-bar_l^{(n+1)} = b_l^{(n+1)} (1 - beta_l^{n+1}) / (1 - beta_l) g_l; n = None is the limit."""
  return [
    b * (1 - (0 if n is None else jnp.power(beta, n + 1))) / (1 - beta) * g
    for b, beta, g in zip(_b(form, n), form.beta, gs, strict=True)
  ]


def _k_beta_k(beta: float, n):
  """sum_{k=1}^n k beta^k = beta (1 - (n+1) beta^n + n beta^{n+1}) / (1 - beta)^2; n = None: the
  limit beta / (1 - beta)^2."""
  tail = 0 if n is None else (n + 1) * jnp.power(beta, n) - n * jnp.power(beta, n + 1)
  return beta * (1 - tail) / (1 - beta) ** 2


def _displacements(form: MomentumForm, gs: list, theta: Array, n) -> list:
  """v_l^{(n)} = sum_{s=0}^{n-1} (beta_l^{n-s} - beta_l^{n+1}) / (1 - beta_l) F^{(s)}(theta)."""
  if n is None or form.stationary:
    step = form.phi(*_averages(form, gs, n))
    return [_k_beta_k(beta, n) * step for beta in form.beta]

  def add(s, sums):
    step = form.phi(*_averages(form, gs, s))
    return [
      v + (jnp.power(beta, n - s) - jnp.power(beta, n + 1)) / (1 - beta) * step
      for v, beta in zip(sums, form.beta, strict=True)
    ]

  return jax.lax.fori_loop(0, n, add, [jnp.zeros_like(theta) for _ in form.beta])


def memoryless(form: MomentumForm, loss: Loss) -> tuple[Callable, Callable]:
  """The memoryless iteration (4) of an Assumption D.1 optimizer: (F, M).

  F(theta, n=None) = Phi(g-bar_1^{(n+1)}(theta), ..., g-bar_L^{(n+1)}(theta)) is F^{(n)}(theta),
  M(theta, h, n=None) = h sum_l b_l^{(n+1)} J_{Phi,l}(g-bar^{(n+1)}) J_{g_l}(theta) v_l^{(n)} is
  the correction (9) (Appendix D). With n = None both are the n -> infinity limits F~ and

    M_r(theta) = h sum_l sum_i b_l beta_l / (1 - beta_l)^2 dPhi_r/dm_{l;i}(g-bar)
                 grad g_{l;i}(theta)^T Phi(g-bar);

  with an integer n (possibly traced) they are the finite-n F^{(n)} and M^{(n)} of Theorem 3.2.
  The non-stationary finite-n case (a variable with memory and without bias correction, e.g.
  heavy ball) sums F^{(s)}, s < n, in a loop: O(n) evaluations of Phi.
  """

  def first_order(theta: Array, n=None) -> Array:
    return form.phi(*_averages(form, [g(loss, theta) for g in form.g], n))

  def correction(theta: Array, h, n=None) -> Array:
    gs = [g(loss, theta) for g in form.g]
    displacements = _displacements(form, gs, theta, n)
    tangents = [
      jnp.zeros_like(g_value)
      if beta == 0  # sum_{k>=1} beta^k = 0: no memory, no correction
      else b * jax.jvp(lambda t, g=g: g(loss, t), (theta,), (v,))[1]
      for g, g_value, beta, b, v in zip(
        form.g, gs, form.beta, _b(form, n), displacements, strict=True
      )
    ]
    return h * jax.jvp(form.phi, tuple(_averages(form, gs, n)), tuple(tangents))[1]

  return first_order, correction


def trajectory(form: MomentumForm, loss: Loss, theta0: Array, h, steps: int) -> Array:
  """theta^{(0)}, ..., theta^{(steps)} of the iteration with memory (1) and (10), memory empty.

  S_l^{(n+1)} = beta_l S_l^{(n)} + g_l(theta^{(n)}) with S_l^{(0)} = 0, so that
  m_l^{(n+1)} = b_l^{(n+1)} S_l^{(n+1)}, and theta^{(n+1)} = theta^{(n)} - h Phi(m^{(n+1)}).
  With `adamw_form` this is AdamW (Example 1.3), with `lion_k_form(..., bias_correction=True)`
  Lion-K with bias correction (Appendix L): the true trajectories of figure 1.
  """

  def step(carry, n):
    theta, sums = carry
    sums = [beta * s + g(loss, theta) for s, beta, g in zip(sums, form.beta, form.g, strict=True)]
    momenta = [b * s for b, s in zip(_b(form, n), sums, strict=True)]
    theta = theta - h * form.phi(*momenta)
    return (theta, sums), theta

  sums = [jnp.zeros_like(g(loss, theta0)) for g in form.g]
  _, thetas = jax.lax.scan(step, (theta0, sums), jnp.arange(steps))
  return jnp.concatenate([theta0[None], thetas])


def memoryless_trajectory(
  form: MomentumForm, loss: Loss, theta0: Array, h, steps: int, *, corrected: bool
) -> Array:
  """theta~^{(0)}, ..., theta~^{(steps)} of the memoryless iteration (4), theta~^{(0)} = theta0.

  theta~^{(n+1)} = theta~^{(n)} - h [F^{(n)}(theta~^{(n)}) + M^{(n)}(theta~^{(n)})] with the
  finite-n F^{(n)} and M^{(n)} (Theorem 3.2): O(h^2) from `trajectory` over floor(T/h) steps
  (Corollary 3.3). corrected=False drops M: the first-order approximation, O(h) away.
  """
  first_order, correction = memoryless(form, loss)

  def step(theta, n):
    update = first_order(theta, n)
    if corrected:
      update = update + correction(theta, h, n)
    theta = theta - h * update
    return theta, theta

  _, thetas = jax.lax.scan(step, theta0, jnp.arange(steps))
  return jnp.concatenate([theta0[None], thetas])


# Assumption D.1 forms of Examples 1.1-1.5.


def _grad(loss: Loss, theta: Array) -> Array:
  return jax.grad(loss)(theta)


def _grad_squared(loss: Loss, theta: Array) -> Array:
  return jax.grad(loss)(theta) ** 2


def _negative_grad(loss: Loss, theta: Array) -> Array:
  return -jax.grad(loss)(theta)


def _identity(loss: Loss, theta: Array) -> Array:
  del loss
  return theta


def perturbed_l1(x: Array, eps) -> Array:
  """K(x) = ||x||_{1,eps} = sum_i sqrt(x_i^2 + eps), the smooth Lion kernel (section 4)."""
  return jnp.sum(jnp.sqrt(x**2 + eps))


def heavy_ball_form(*, beta: float) -> MomentumForm:
  """Example 1.1: F^{(n)} = m_1^{(n+1)} = sum_{k=0}^n beta^{n-k} grad L(theta^{(k)}).

  L = 1: g_1 = grad L, beta_1 = beta, b_1 = 1, Phi(m_1) = m_1.
  """
  _check_decay("beta", beta)
  return MomentumForm(g=(_grad,), beta=(beta,), b=(1.0,), phi=lambda m1: m1, debias=(False,))


def nesterov_form(*, beta: float) -> MomentumForm:
  """Example 1.2: F^{(n)} = m_1 + m_2, m_1 = beta sum_k beta^{n-k} grad L(theta^{(k)}),
  m_2 = grad L(theta^{(n)}).

  L = 2: g_1 = g_2 = grad L, beta_1 = beta, beta_2 = 0, b_1 = beta, b_2 = 1,
  Phi(m_1, m_2) = m_1 + m_2.
  """
  _check_decay("beta", beta)
  return MomentumForm(
    g=(_grad, _grad),
    beta=(beta, 0.0),
    b=(beta, 1.0),
    phi=lambda m1, m2: m1 + m2,
    debias=(False, False),
  )


def adamw_form(*, beta1: float, beta2: float, eps: float, lam: float) -> MomentumForm:
  """Example 1.3 (Appendix D): F^{(n)} = m_1 / sqrt(m_2 + eps) + m_3.

  L = 3: g_1 = grad L, g_2 = (grad L)^2, g_3 = theta; beta = (beta1, beta2, 0);
  b_1^{(n+1)} = (1 - beta1) / (1 - beta1^{n+1}), b_2^{(n+1)} = (1 - beta2) / (1 - beta2^{n+1})
  (bias-corrected), b_3 = lambda.
  """
  _check_adam(beta1, beta2, eps, lam)
  return MomentumForm(
    g=(_grad, _grad_squared, _identity),
    beta=(beta1, beta2, 0.0),
    b=(1 - beta1, 1 - beta2, lam),
    phi=lambda m1, m2, m3: m1 / jnp.sqrt(m2 + eps) + m3,
    debias=(True, True, False),
  )


def nadam_form(*, beta1: float, beta2: float, eps: float, lam: float) -> MomentumForm:
  """Example 1.4: F^{(n)} = (beta1 m_1 + (1 - beta1) m_4) / sqrt(m_2 + eps) + m_3.

  L = 4: AdamW's three variables (g_1 = grad L, g_2 = (grad L)^2, g_3 = theta, bias-corrected
  b_1, b_2, b_3 = lambda) and m_4 = grad L(theta^{(n)}): g_4 = grad L, beta_4 = 0, b_4 = 1.
  """
  _check_adam(beta1, beta2, eps, lam)
  return MomentumForm(
    g=(_grad, _grad_squared, _identity, _grad),
    beta=(beta1, beta2, 0.0, 0.0),
    b=(1 - beta1, 1 - beta2, lam, 1.0),
    phi=lambda m1, m2, m3, m4: (beta1 * m1 + (1 - beta1) * m4) / jnp.sqrt(m2 + eps) + m3,
    debias=(True, True, False, False),
  )


def lion_k_form(
  *, rho1: float, rho2: float, eps: float, lam: float, bias_correction: bool = False
) -> MomentumForm:
  """Example 1.5 with K = ||.||_{1,eps}: F^{(n)} = -grad K(m_1 + m_2) + m_3 (eq. (3)).

  L = 3 (Appendix D): g_1 = g_2 = -grad L, g_3 = theta; beta = (rho2, 0, 0);
  b_1 = (1 - rho2) rho1 / rho2, b_2 = 1 - rho1 / rho2, b_3 = lambda. bias_correction=True is
  Appendix L's variant, b_1^{(n+1)} = b_1 / (1 - rho2^{n+1}). Needs rho2 > 0; with rho1 = rho2
  (b_2 = 0) it is signum with the smooth kernel. rho1 > rho2 gives b_2 < 0, outside D.1's
  nonnegative b_l, but the algebra (and `memoryless`) still holds.
  """
  _check_lion(rho1, rho2, eps, lam)
  _check_positive("rho2 (b_1 = (1 - rho2) rho1 / rho2)", rho2)
  grad_k = jax.grad(lambda x: perturbed_l1(x, eps))
  return MomentumForm(
    g=(_negative_grad, _negative_grad, _identity),
    beta=(rho2, 0.0, 0.0),
    b=((1 - rho2) * rho1 / rho2, 1 - rho1 / rho2, lam),
    phi=lambda m1, m2, m3: -grad_k(m1 + m2) + m3,
    debias=(bias_correction, False, False),
  )


FORMS = {
  "heavy_ball": heavy_ball_form,
  "nesterov": nesterov_form,
  "adamw": adamw_form,
  "nadam": nadam_form,
  "lion_k": lion_k_form,
}


def momentum_form(name: str, **hyperparameters) -> MomentumForm:
  """The Assumption D.1 form of optimizer `name` (a key of FORMS) with its hyperparameters."""
  if name not in FORMS:
    raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(FORMS)}")
  return FORMS[name](**hyperparameters)


# Closed forms of Appendix E (n -> infinity): (F~(theta), M(theta)) by Hessian-vector products.


def _hvp(loss: Loss, theta: Array, v: Array) -> Array:
  """grad^2 L(theta) v, forward-over-reverse."""
  return jax.jvp(jax.grad(loss), (theta,), (v,))[1]


def heavy_ball_memoryless(loss: Loss, theta: Array, h, *, beta: float) -> tuple[Array, Array]:
  """Heavy ball (Example 1.1, eq. (6), Appendix E):

  F~ = grad L / (1 - beta),
  M  = h beta / (2 (1 - beta)^3) grad ||grad L||^2 = h beta / (1 - beta)^3 grad^2 L grad L.
  """
  _check_decay("beta", beta)
  grad = jax.grad(loss)(theta)
  return grad / (1 - beta), h * beta / (1 - beta) ** 3 * _hvp(loss, theta, grad)


def nesterov_memoryless(loss: Loss, theta: Array, h, *, beta: float) -> tuple[Array, Array]:
  """Nesterov (Example 1.2, Appendix E):

  F~ = grad L / (1 - beta),
  M  = h beta^2 / (2 (1 - beta)^3) grad ||grad L||^2 = h beta^2 / (1 - beta)^3 grad^2 L grad L.
  """
  _check_decay("beta", beta)
  grad = jax.grad(loss)(theta)
  return grad / (1 - beta), h * beta**2 / (1 - beta) ** 3 * _hvp(loss, theta, grad)


def _adaptive(loss: Loss, theta: Array, h, a1, a2, eps, lam) -> tuple[Array, Array]:
  """AdamW-type: F~ = grad L / sqrt(grad L^2 + eps) + lambda theta and

  M = h ((a1 - a2) / (grad L^2 + eps)^{1/2} + eps a2 / (grad L^2 + eps)^{3/2})
        (grad ||grad L||_{1,eps} + lambda grad^2 L theta),

  where grad ||grad L||_{1,eps} + lambda grad^2 L theta = grad^2 L F~: one Hessian-vector product.
  """
  grad = jax.grad(loss)(theta)
  scale = grad**2 + eps
  first_order = grad / jnp.sqrt(scale) + lam * theta
  coefficient = (a1 - a2) / jnp.sqrt(scale) + eps * a2 / scale**1.5
  return first_order, h * coefficient * _hvp(loss, theta, first_order)


def adamw_memoryless(
  loss: Loss, theta: Array, h, *, beta1: float, beta2: float, eps: float, lam: float
) -> tuple[Array, Array]:
  """AdamW (Example 1.3, section 4, Appendix E): `_adaptive` with a1 = beta1 / (1 - beta1),
  a2 = beta2 / (1 - beta2):

  M = h ((beta1 (1 - beta1)^{-1} - beta2 (1 - beta2)^{-1}) / (|grad L|^2 + eps)^{1/2}
         + eps beta2 (1 - beta2)^{-1} / (|grad L|^2 + eps)^{3/2})
        (grad ||grad L||_{1,eps} + lambda grad^2 L theta).
  """
  _check_adam(beta1, beta2, eps, lam)
  return _adaptive(loss, theta, h, beta1 / (1 - beta1), beta2 / (1 - beta2), eps, lam)


def nadam_memoryless(
  loss: Loss, theta: Array, h, *, beta1: float, beta2: float, eps: float, lam: float
) -> tuple[Array, Array]:
  """NAdam with decoupled weight decay (Example 1.4, Appendix E): AdamW's F~ and M with
  beta1 / (1 - beta1) replaced by beta1^2 / (1 - beta1)."""
  _check_adam(beta1, beta2, eps, lam)
  return _adaptive(loss, theta, h, beta1**2 / (1 - beta1), beta2 / (1 - beta2), eps, lam)


def lion_k_memoryless(
  loss: Loss, theta: Array, h, *, rho1: float, rho2: float, eps: float, lam: float
) -> tuple[Array, Array]:
  """Lion-K with K = ||.||_{1,eps} (Example 1.5, section 4, Appendix E):

  F~ = -grad K(-grad L) + lambda theta = grad L / sqrt(grad L^2 + eps) + lambda theta,
  M  = -h rho1 / (1 - rho2) grad^2 K(-grad L) grad^2 L [grad K(-grad L) - lambda theta],

  i.e. M_r = h rho1 / (1 - rho2) eps / (|grad_r L|^2 + eps)^{3/2}
             grad_r [||grad L||_{1,eps} + lambda (grad L^T theta - L)]
           = h rho1 / (1 - rho2) eps / (|grad_r L|^2 + eps)^{3/2} (grad^2 L F~)_r.
  With rho1 = rho2 = beta (signum) this is AdamW's M with beta1 = beta2 = beta.
  """
  _check_lion(rho1, rho2, eps, lam)
  grad = jax.grad(loss)(theta)
  scale = grad**2 + eps
  first_order = grad / jnp.sqrt(scale) + lam * theta
  coefficient = rho1 / (1 - rho2) * eps / scale**1.5
  return first_order, h * coefficient * _hvp(loss, theta, first_order)


CLOSED_FORMS = {
  "heavy_ball": heavy_ball_memoryless,
  "nesterov": nesterov_memoryless,
  "adamw": adamw_memoryless,
  "nadam": nadam_memoryless,
  "lion_k": lion_k_memoryless,
}


def closed_form(name: str, loss: Loss, theta: Array, h, **hyperparameters) -> tuple[Array, Array]:
  """(F~(theta), M(theta)) of optimizer `name` (a key of CLOSED_FORMS), Appendix E."""
  if name not in CLOSED_FORMS:
    raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(CLOSED_FORMS)}")
  return CLOSED_FORMS[name](loss, theta, h, **hyperparameters)
