"""Adaptive-memory momentum: AM-MGD, AM-SGD and AM-AdamW, with Clip and Reset; its baseline.

"Adaptive Memory Momentum via a Model-Based Framework for Deep Learning
Optimization", section 3. The loss is modelled by two planes at x_t, the
gradient plane f(x_t) + g_t^T (x - x_t) and the momentum plane
f̂(x_t) + d_t^T (x - x_t) (eq. 8). A regularized proximal step on that model
(eq. 9) is heavy-ball momentum whose coefficient beta_t is the model's dual
variable, solved in closed form at every step:

  beta_t = Clip( [ (f̂(x_t) - f(x_t))(lam+1)/eta - <d_t - g_t, g_t + lam d_t> ]
                 / ||d_t - g_t||^2 )                                    (eq. 12)
  d_{t+1} = ((beta_t + lam) d_t + (1 - beta_t) g_t) / (1 + lam)
  x_{t+1} = x_t - eta d_{t+1}                                           (eq. 13)

- AM-MGD (Algorithm 1, deterministic): f̂(x_t) = f(x_{t-1}), the paper's
  "overestimation" choice; beta clipped to [0, 1]. Needs the loss: pass it as
  `value=` to `update`.
- AM-SGD (Algorithm 1, stochastic): f̂(x_t) - f(x_t) replaced by its
  first-order estimate g_t^T (x_{t-1} - x_t) = eta g_t^T d_t, so

    beta_t = [ (lam+1) g^T d - <d - g, g + lam d> ] / ||d - g||^2
           = [ 2 lam g^T d + |g|^2 - lam |d|^2 ] / (|d|^2 - 2 g^T d + |g|^2),

  clipped to [0, beta_max]. The sums g^T d and |g|^2 take one pass over g
  and d; |d_{t+1}|^2 = keep^2 |d|^2 + 2 keep take g^T d + take^2 |g|^2 (with
  keep, take the two coefficients of eq. 13) needs none, and is carried.
- AM-AdamW (section 3.3, `am_adamw`): the coefficient, derived again from
  the dual of eq. (14): with r(beta) = g + lam P d + mu P̃ x + beta (d - g),
  the dual is (1-beta) f + beta f̂ - eta/(2(1 + mu eta)) ||r(beta)||^2_{P̃^{-1}},
  whose maximizer is

    beta = [ (1 + mu eta)(f̂ - f)/eta - <d - g, g + lam P d>_{P̃^{-1}} - mu <x, d - g> ]
           / ||d - g||^2_{P̃^{-1}}.

  The paper prints +mu <x, d - g>; the derivation gives the minus sign, and a
  test checks it against a brute-force maximization of the dual. As in
  AM-SGD, f̂ - f = f(x_{t-1}) - f(x_t) is replaced by g^T (x_{t-1} - x_t)
  = eta g^T (P_{t-1}^{-1} d_t + mu x_t), with P_t standing in for P_{t-1}
  (not stored: Adam's v moves slowly). With P = I and mu = 0 this is
  AM-SGD's formula.
- `scale_by_am_sgd` and `scale_by_am_adamw` are their directions without the
  learning rate (and decay), to chain with `optax.scale_by_learning_rate` and
  `optax.add_decayed_weights` the optax way; see each for how they relate to
  the aliases, which keep their folded form (and their bits).
- The paper's fixed-beta baseline, EMA momentum (eq. 5): see `ema_momentum`.

What lam does (an identity of eq. 12-13, worth knowing when reading the
paper's lam ablation): the weight on d_t, (beta + lam)/(1 + lam), equals the
unclipped beta of lam = 0; for AM-SGD it is |g|^2 / ||d - g||^2 for every
lam. So lam only moves the clip interval of that weight to
[lam/(1 + lam), (beta_max + lam)/(1 + lam)].
- Section 4.5 variants: Clip, beta_t = max(beta_AM, beta_min); Reset,
  beta_t = reset_high if beta_AM >= reset_threshold else reset_low.

Choices where the paper is silent (all named arguments):
- d_0 = g_0 (Algorithm 1): at the first step the previous direction is the
  gradient itself, so the first step is plain gradient descent.
- When d_t = g_t the denominator is zero and beta is undefined; but then
  d_{t+1} = g_t whatever beta is. We keep the previous beta (0 at the start),
  also when ||d - g||^2 is below the rounding error of its expansion
  (8 eps (|d|^2 + |g|^2)), where the quotient would be noise. Never NaN.
- Sums are global over all leaves, as in the paper; `per_leaf=True` gives one
  beta per leaf (per layer), which the paper leaves to future work.
"""

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from rllc import schedule
from rllc import tree as tree_lib
from rllc.memory import accumulation_dtype


class AMState(NamedTuple):
  """State of AM-SGD and AM-MGD: as much memory as momentum SGD."""

  direction: Any  # d_t, a pytree like params
  direction_sq: Any  # |d_t|^2 of each leaf (scalars), kept by recursion: edit it with d
  beta: Any  # beta of the last step: a scalar, or with per_leaf a pytree of scalars
  prev_loss: jax.Array  # f(x_{t-1}), the momentum plane's height f̂(x_t) (AM-MGD)
  count: jax.Array  # int32 number of updates so far


class AMAdamWState(NamedTuple):
  """State of AM-AdamW: as much memory as AdamW."""

  direction: Any  # d_t, the adaptive first moment, a pytree like params
  nu: Any  # v_t, Adam's second moment, a pytree like params
  beta: Any  # beta of the last step: a scalar, or with per_leaf a pytree of scalars
  count: jax.Array  # int32 number of updates so far


class EMAMomentumState(NamedTuple):
  """State of EMA momentum, the fixed-beta baseline."""

  direction: Any  # d_t, a pytree like params
  count: jax.Array  # int32 number of updates so far (d_0 = g_0 at 0, schedules)


class BetaPolicy(NamedTuple):
  """How beta_t is clipped: [0, beta_max], then section 4.5's Clip (beta_min) or Reset (theta)."""

  beta_max: float = 0.9  # upper clip (0.9 in the paper; 1 for AM-MGD)
  beta_min: float = 0.0  # lower clip, the Clip variant (0 = off)
  reset_threshold: float | None = None  # theta of the Reset variant (None = off)
  reset_high: float = 0.9  # Reset's beta when beta_AM >= theta
  reset_low: float = 0.1  # Reset's beta when beta_AM < theta

  def select(self, raw, reliable, prev):
    """Clip to [0, beta_max], then the Clip or Reset policy; prev where unreliable."""
    beta = jnp.clip(raw, 0.0, self.beta_max)
    if self.reset_threshold is not None:
      beta = jnp.where(beta >= self.reset_threshold, self.reset_high, self.reset_low)
    beta = jnp.maximum(beta, self.beta_min)
    return jnp.where(reliable, beta, prev).astype(prev.dtype)

  def initial(self, zero):
    """beta before any step: 0 (no memory yet), as the Clip or Reset policy reports it."""
    return self.select(zero, True, zero)


def _coefficient(beta_of, leaf_sums: tuple, prev, per_leaf: bool):
  """beta_t = beta_of(*sums, prev): per leaf from each leaf's sums, or once from their totals.

  Args:
    beta_of: (*sums, prev) -> beta, for scalars.
    leaf_sums: trees of per-leaf scalars, one tree per sum.
    prev: the previous beta (a tree of scalars with per_leaf).
    per_leaf: one beta per leaf.
  """
  if per_leaf:
    return jax.tree.map(beta_of, *leaf_sums, prev)
  return beta_of(*(optax.tree.sum(tree) for tree in leaf_sums), prev)


def _per_leaf(beta, treedef, per_leaf: bool):
  """beta as a tree of scalars like the params: itself per leaf, else the global one everywhere."""
  return beta if per_leaf else treedef.unflatten([beta] * treedef.num_leaves)


def _am_init(params, policy: BetaPolicy, per_leaf: bool) -> AMState:
  """AMState before any step: d_0 = 0 (g_0 is used at the first step), beta_0 from the policy."""
  # Distinct scalar buffers, so a training loop may donate the whole state.
  zero = lambda _=None: jnp.zeros([], accumulation_dtype(params))  # noqa: E731
  beta0 = lambda _=None: policy.initial(zero())  # noqa: E731
  return AMState(
    direction=optax.tree.zeros_like(params),
    direction_sq=jax.tree.map(zero, params),
    beta=jax.tree.map(beta0, params) if per_leaf else beta0(),
    prev_loss=zero(),
    count=jnp.zeros([], jnp.int32),
  )


def _am_sums(g, d, dd, *, first, acc):
  """g^T d, |g|^2 and |d|^2 of one leaf: two dot products, |d|^2 carried (d_0 = g_0 at first)."""
  g, d = g.reshape(-1), d.reshape(-1)
  gd = jnp.dot(g, d, preferred_element_type=acc)
  gg = jnp.dot(g, g, preferred_element_type=acc)
  return jnp.where(first, gg, gd), gg, jnp.where(first, gg, dd)


def _am_beta(gd, gg, dd, prev, *, gain, lam, policy: BetaPolicy, deterministic: bool):
  """beta_t of eq. (12) from the sums; the previous beta where ||d - g||^2 is rounding noise."""
  den = dd - 2 * gd + gg  # ||d - g||^2
  # AM-MGD: (f̂ - f)(lam + 1)/eta - <d - g, g + lam d>; AM-SGD: (lam + 1) g.d - <d - g, g + lam d>.
  sgd_num = 2 * lam * gd + gg - lam * dd
  num = gain - (gd + lam * dd - gg - lam * gd) if deterministic else sgd_num
  reliable = den > 8 * jnp.finfo(den.dtype).eps * (dd + gg)
  return policy.select(num / jnp.where(reliable, den, 1.0), reliable, prev)


def _am_step(g, d, gd, gg, dd, beta, *, first, lam, learning_rate, acc):
  """Eq. (13) on one leaf: the update, d_{t+1}, and |d_{t+1}|^2 from this step's sums."""
  keep, take = (beta + lam) / (1 + lam), (1 - beta) / (1 + lam)
  new_d = keep * jnp.where(first, g, d).astype(acc) + take * g.astype(acc)
  # |d_{t+1}|^2 from this step's sums: no pass over d_{t+1} needed.
  new_dd = keep**2 * dd + 2 * keep * take * gd + take**2 * gg
  update = new_d if learning_rate is None else -learning_rate * new_d
  return update.astype(g.dtype), new_d.astype(d.dtype), new_dd


def _am_momentum(eta, lam, policy: BetaPolicy, per_leaf, deterministic):
  """AM-SGD (first-order estimate of f̂ - f) or AM-MGD (f̂(x_t) = f(x_{t-1})).

  With eta None (AM-SGD only) the update is the direction d_{t+1} itself, for a
  chain to scale; else it is -eta d_{t+1}, computed in the accumulation dtype.
  """

  def update_fn(updates, state, params=None, *, value=None, **extra_args):
    del params, extra_args
    if deterministic and value is None:
      raise ValueError("AM-MGD needs the loss f(x_t): call update(..., value=loss)")
    acc = accumulation_dtype(updates)
    learning_rate = None if eta is None else schedule.value_at(eta, state.count)
    first = state.count == 0
    sums = functools.partial(_am_sums, first=first, acc=acc)
    leaf_sums = tree_lib.map_leaves(sums, updates, state.direction, state.direction_sq)
    gain = 0.0
    if deterministic:
      # (f̂ - f)(lam + 1)/eta with f̂(x_t) = f(x_{t-1}), eq. (12).
      gain = (state.prev_loss - jnp.asarray(value, acc)) * (lam + 1) / learning_rate
    beta_of = functools.partial(
      _am_beta, gain=gain, lam=lam, policy=policy, deterministic=deterministic
    )
    beta = _coefficient(beta_of, leaf_sums, state.beta, per_leaf)
    step = functools.partial(_am_step, first=first, lam=lam, learning_rate=learning_rate, acc=acc)
    betas = _per_leaf(beta, jax.tree.structure(updates), per_leaf)
    new_updates, direction, direction_sq = tree_lib.map_leaves(
      step, updates, state.direction, *leaf_sums, betas
    )
    new_state = AMState(
      direction=direction,
      direction_sq=direction_sq,
      beta=beta,
      prev_loss=jnp.asarray(value, acc) if deterministic else state.prev_loss,
      count=optax.safe_increment(state.count),
    )
    return new_updates, new_state

  init_fn = functools.partial(_am_init, policy=policy, per_leaf=per_leaf)
  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def scale_by_am_sgd(
  *,
  lam: float = 0.1,
  beta_max: float = 0.9,
  beta_min: float = 0.0,
  reset_threshold: float | None = None,
  reset_high: float = 0.9,
  reset_low: float = 0.1,
  per_leaf: bool = False,
) -> optax.GradientTransformationExtraArgs:
  r"""AM-SGD's direction d_{t+1}, without the learning rate (eq. 12-13, stochastic).

  With the first-order estimate of f̂ - f (no learning rate in it),

    beta_t  = Clip_[0, beta_max]( [ 2 lam g^T d + |g|^2 - lam |d|^2 ] / ||d - g||^2 )
    d_{t+1} = ((beta_t + lam) d_t + (1 - beta_t) g_t) / (1 + lam),   d_0 = g_0,

  and the update is d_{t+1}; chain it with `optax.scale_by_learning_rate`
  (what `am_sgd` computes, bit for bit in float32; with bfloat16 updates the
  chain rounds d_{t+1} before scaling, `am_sgd` after), and with clipping,
  schedules or masks as any optax transformation.

  References:
    Topollai and Choromanska, "Adaptive Memory Momentum via a Model-Based
    Framework for Deep Learning Optimization", Algorithm 1 and eq. (12)-(13).

  Args:
    lam, beta_max, beta_min, reset_threshold, reset_high, reset_low, per_leaf:
      as in `am_sgd`.

  Returns:
    The transformation; its state is an AMState, `state.beta` is beta_t.

  Example:
    >>> import jax.numpy as jnp
    >>> import optax
    >>> import rllc
    >>> params = {"w": jnp.array([1.0, -2.0])}
    >>> tx = optax.chain(rllc.scale_by_am_sgd(), optax.scale_by_learning_rate(0.1))
    >>> state = tx.init(params)
    >>> for g in ([1.0, 0.5], [0.2, 0.6]):
    ...   updates, state = tx.update({"w": jnp.array(g)}, state, params)
    >>> [round(float(u), 4) for u in updates["w"]]  # as rllc.am_sgd(0.1)
    [-0.0692, -0.0538]
  """
  policy = BetaPolicy(beta_max, beta_min, reset_threshold, reset_high, reset_low)
  return _am_momentum(None, lam, policy, per_leaf, deterministic=False)


def am_sgd(
  learning_rate,
  *,
  lam: float = 0.1,
  beta_max: float = 0.9,
  beta_min: float = 0.0,
  reset_threshold: float | None = None,
  reset_high: float = 0.9,
  reset_low: float = 0.1,
  per_leaf: bool = False,
) -> optax.GradientTransformationExtraArgs:
  """AM-SGD: Algorithm 1, stochastic column (first-order f̂ - f, beta <= beta_max).

  x_{t+1} = x_t - eta d_{t+1}, with d_{t+1} of `scale_by_am_sgd` (eq. 13). It
  equals `optax.chain(scale_by_am_sgd(...), optax.scale_by_learning_rate(eta))`
  (bit for bit in float32; a test checks it) with the state unwrapped; it keeps
  the folded form, so that its state, and the records' bits, stay as they were.

  References:
    Topollai and Choromanska, "Adaptive Memory Momentum via a Model-Based
    Framework for Deep Learning Optimization", Algorithm 1 and eq. (12)-(13).

  Args:
    learning_rate: eta: a float, a traced array, or an optax schedule of the step.
    lam: lambda of eq. (9), the pull towards the previous direction. 0.1, as
      the paper holds it in all its experiments.
    beta_max: upper clip of beta (0.9 in the paper).
    beta_min: lower clip, the section 4.5 Clip variant (0 = off).
    reset_threshold: theta of the section 4.5 Reset variant (None = off).
    reset_high: beta when beta_AM >= theta.
    reset_low: beta when beta_AM < theta.
    per_leaf: one beta per leaf instead of one global beta.

  Returns:
    The transformation; `state.beta` is beta_t.

  Example:
    >>> import jax.numpy as jnp
    >>> import optax
    >>> import rllc
    >>> params = {"w": jnp.array([1.0, -2.0])}
    >>> tx = rllc.am_sgd(0.1)
    >>> state = tx.init(params)
    >>> for g in ([1.0, 0.5], [0.2, 0.6]):
    ...   updates, state = tx.update({"w": jnp.array(g)}, state, params)
    >>> round(float(state.beta), 4)  # (2 lam g.d + |g|^2 - lam |d|^2) / ||d - g||^2 = 0.375 / 0.65
    0.5769
  """
  policy = BetaPolicy(beta_max, beta_min, reset_threshold, reset_high, reset_low)
  return _am_momentum(learning_rate, lam, policy, per_leaf, deterministic=False)


def am_mgd(
  learning_rate,
  *,
  lam: float = 0.1,
  beta_min: float = 0.0,
  reset_threshold: float | None = None,
  reset_high: float = 0.9,
  reset_low: float = 0.1,
) -> optax.GradientTransformationExtraArgs:
  """AM-MGD: Algorithm 1, deterministic column (eq. 12, 13), beta in [0, 1].

  Uses the loss: `update(grads, state, params, value=f(x_t))`, and
  f̂(x_t) = f(x_{t-1}). Meant for full-batch problems. Arguments as `am_sgd`;
  there is no per-leaf variant, since the loss difference f̂ - f belongs to
  the whole model and cannot be split among leaves. No scale_by form: eta is
  inside beta_t, through (f̂ - f)(lam + 1)/eta.

  References:
    Topollai and Choromanska, "Adaptive Memory Momentum via a Model-Based
    Framework for Deep Learning Optimization", Algorithm 1 and eq. (12)-(13).

  Returns:
    The transformation; `state.beta` is beta_t.

  Example:
    >>> import jax.numpy as jnp
    >>> import rllc
    >>> tx = rllc.am_mgd(0.1)
    >>> state = tx.init({"w": jnp.array([1.0, -2.0])})
    >>> for g, loss in (([1.0, 0.5], 1.0), ([0.2, 0.6], 0.97)):
    ...   updates, state = tx.update({"w": jnp.array(g)}, state, value=loss)
    >>> round(float(state.beta), 4)  # (0.03 (lam + 1) / eta - 0.175) / 0.65
    0.2385
  """
  policy = BetaPolicy(1.0, beta_min, reset_threshold, reset_high, reset_low)
  return _am_momentum(learning_rate, lam, policy, per_leaf=False, deterministic=True)


class _Preconditioner(NamedTuple):
  """Adam's diagonal P_t at step t (1-indexed), for AM-AdamW (section 3.3)."""

  b2: float  # Adam's beta2
  eps: float  # Adam's epsilon, inside P_t
  correction1: jax.Array  # 1 - b1^t
  correction2: jax.Array  # 1 - b2^t

  def diagonal(self, v):
    """P_t = (1 - b1^t) (eps + sqrt(v_t / (1 - b2^t))), from v_t."""
    return self.correction1 * (self.eps + jnp.sqrt(v / self.correction2))

  def moments(self, g, v):
    """v_t = b2 v_{t-1} + (1 - b2) g^2, and P_t."""
    v = self.b2 * v + (1 - self.b2) * g * g
    return v, self.diagonal(v)


def _am_adamw_init(params, policy: BetaPolicy, per_leaf: bool) -> AMAdamWState:
  """AMAdamWState before any step: d_0 = v_0 = 0 (as Adam's moments), beta_0 from the policy."""
  beta0 = lambda _=None: policy.initial(jnp.zeros([], accumulation_dtype(params)))  # noqa: E731
  return AMAdamWState(
    direction=optax.tree.zeros_like(params),
    nu=optax.tree.zeros_like(params),
    beta=jax.tree.map(beta0, params) if per_leaf else beta0(),
    count=jnp.zeros([], jnp.int32),
  )


def _am_adamw_sums(g, d, v, x, *, pre: _Preconditioner, lam, mu, learning_rate, acc):
  """The numerator and denominator of beta (see `am_adamw`), each summed over one leaf."""
  g, d, v, x = (y.astype(acc) for y in (g, d, v, x))
  _, p = pre.moments(g, v)
  w = 1 / ((1 + lam * p) * p)  # diagonal of P̃^{-1}
  e = d - g
  # (1 + mu eta)(f̂ - f)/eta; the chain's first-order form drops the 1 + mu eta.
  slope = d / p + mu * x
  gain = g * slope if learning_rate is None else (1 + mu * learning_rate) * g * slope
  num = gain - w * e * (g + lam * p * d) - mu * x * e
  # The two summands as the halves of one buffer, written by one loop that
  # computes P once per element, then summed column-wise in one reduction.
  # Asked for separately, XLA:CPU splits the summands into loops that pass P,
  # P̃^{-1} and d - g to each other through memory (README, Speed).
  columns = x.shape[-1] if x.ndim else 1
  summands = jnp.stack([num.reshape(-1, columns), (w * e * e).reshape(-1, columns)])
  num, den = jnp.sum(jnp.sum(summands, axis=1), axis=1)
  return num, den


def _am_adamw_step(g, d, v, x, beta, *, pre: _Preconditioner, lam, mu, learning_rate, acc):
  """Eq. (14) on one leaf with beta given: the update, d_{t+1} and v_t.

  Three loops: v_t; d_{t+1} from g, d, v; the update from d_{t+1}, v_t and x
  as written. The barriers keep XLA from sharing P with the sums' loop or
  between the two, which it would pass through memory (a square root and a
  division are too costly for it to compute twice): recomputing P from a
  buffer already read costs less than writing and reading P.
  """
  dtypes = g.dtype, d.dtype, v.dtype
  g, d, v, x, beta = jax.lax.optimization_barrier((g, d, v, x, beta))
  g, d, v, x = (y.astype(acc) for y in (g, d, v, x))
  v, p = pre.moments(g, v)
  new_d = ((beta + lam * p) * d + (1 - beta) * g) / (1 + lam * p)
  new_d, v = jax.lax.optimization_barrier((new_d, v))
  p = pre.diagonal(v)
  if learning_rate is None:
    update = new_d / p  # P^{-1} d_{t+1}: the chain adds mu x and scales by -eta
  else:
    # x_{t+1} - x_t, with x_{t+1} = (x_t - eta P^{-1} d_{t+1}) / (1 + mu eta).
    update = -learning_rate * (new_d / p + mu * x) / (1 + mu * learning_rate)
  return tuple(y.astype(dtype) for y, dtype in zip((update, new_d, v), dtypes, strict=True))


def _am_adamw_beta(num, den, prev, *, policy: BetaPolicy):
  """beta_t = num / den, clipped; the previous beta where ||d - g||^2 = 0.

  ||d - g||^2 is summed directly here, so only an exact 0 is unreliable.
  """
  reliable = den > 0
  return policy.select(num / jnp.where(reliable, den, 1.0), reliable, prev)


def _am_adamw(eta, b1, b2, eps, mu, lam, policy: BetaPolicy, per_leaf):
  """AM-AdamW's transformation: the folded step of eq. (14) with eta, or P^{-1} d_{t+1} without.

  Two passes over the leaves: the sums for beta, then the step, which needs
  beta, a quotient of the finished sums.
  """

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    if params is None:
      raise ValueError("AM-AdamW needs params (decoupled weight decay): update(g, s, params)")
    acc = accumulation_dtype(updates)
    learning_rate = None if eta is None else schedule.value_at(eta, state.count)
    count = optax.safe_increment(state.count)
    t = count.astype(acc)
    pre = _Preconditioner(b2, eps, 1 - b1**t, 1 - b2**t)
    args = dict(pre=pre, lam=lam, mu=mu, learning_rate=learning_rate, acc=acc)
    trees = (updates, state.direction, state.nu, params)
    leaf_sums = tree_lib.map_leaves(functools.partial(_am_adamw_sums, **args), *trees)
    beta_of = functools.partial(_am_adamw_beta, policy=policy)
    beta = _coefficient(beta_of, leaf_sums, state.beta, per_leaf)
    betas = _per_leaf(beta, jax.tree.structure(updates), per_leaf)
    step = functools.partial(_am_adamw_step, **args)
    new_updates, direction, nu = tree_lib.map_leaves(step, *trees, betas)
    return new_updates, AMAdamWState(direction=direction, nu=nu, beta=beta, count=count)

  init_fn = functools.partial(_am_adamw_init, policy=policy, per_leaf=per_leaf)
  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def scale_by_am_adamw(
  *,
  b1: float = 0.9,
  b2: float = 0.999,
  eps: float = 1e-8,
  weight_decay: float = 0.0,
  lam: float = 0.1,
  beta_max: float = 0.9,
  beta_min: float = 0.0,
  reset_threshold: float | None = None,
  reset_high: float = 0.9,
  reset_low: float = 0.1,
  per_leaf: bool = False,
) -> optax.GradientTransformationExtraArgs:
  """AM-AdamW's preconditioned direction P^{-1} d_{t+1}, without learning rate or decay.

  The step of `am_adamw` to first order in mu eta (the paper's footnote 2,
  1/(1 + mu eta) ~ 1 - mu eta), as AdamW takes it:

    x_{t+1} = x_t - eta (P^{-1} d_{t+1} + mu x_t),

  which is `optax.chain(scale_by_am_adamw(weight_decay=mu),
  optax.add_decayed_weights(mu), optax.scale_by_learning_rate(eta))`. beta_t is
  `am_adamw`'s with the factor 1 + mu eta of its gain term set to 1:

    beta = [ g^T (P^{-1} d + mu x) - <d - g, g + lam P d>_{P̃^{-1}} - mu <x, d - g> ]
           / ||d - g||^2_{P̃^{-1}}

  so `weight_decay` must be the mu that the chain decays by (it enters beta);
  with mu = 0 the chain is `am_adamw(eta, weight_decay=0)` bit for bit in float32,
  and with mu > 0 its updates differ from `am_adamw`'s by a relative O(mu eta).

  References:
    Topollai and Choromanska, "Adaptive Memory Momentum via a Model-Based Framework
    for Deep Learning Optimization", section 3.3, eq. (14), and footnote 2.

  Args:
    b1, b2, eps, lam, beta_max, beta_min, reset_threshold, reset_high,
      reset_low, per_leaf: as in `am_adamw`.
    weight_decay: mu of the chain's `add_decayed_weights`, for beta's terms.

  Returns:
    The transformation; `update` needs params; its state is an AMAdamWState.

  Example:
    >>> import jax.numpy as jnp
    >>> import optax
    >>> import rllc
    >>> params = {"w": jnp.array([1.0, -2.0])}
    >>> decay, scale = optax.add_decayed_weights(1e-4), optax.scale_by_learning_rate(1e-2)
    >>> tx = optax.chain(rllc.scale_by_am_adamw(weight_decay=1e-4), decay, scale)
    >>> state = tx.init(params)
    >>> for g in ([1.0, 0.5], [0.2, 0.6]):
    ...   updates, state = tx.update({"w": jnp.array(g)}, state, params)
    >>> [round(float(u), 4) for u in updates["w"]]  # am_adamw(1e-2)'s to first order in mu eta
    [-0.008, -0.0099]
  """
  policy = BetaPolicy(beta_max, beta_min, reset_threshold, reset_high, reset_low)
  return _am_adamw(None, b1, b2, eps, weight_decay, lam, policy, per_leaf)


def am_adamw(
  learning_rate,
  *,
  b1: float = 0.9,
  b2: float = 0.999,
  eps: float = 1e-8,
  weight_decay: float = 1e-4,
  lam: float = 0.1,
  beta_max: float = 0.9,
  beta_min: float = 0.0,
  reset_threshold: float | None = None,
  reset_high: float = 0.9,
  reset_low: float = 0.1,
  per_leaf: bool = False,
) -> optax.GradientTransformationExtraArgs:
  """AM-AdamW (section 3.3): adaptive memory in Adam's metric, decoupled decay.

  With Adam's diagonal P_t = (1 - b1^t) diag(eps + sqrt(v_t / (1 - b2^t))) at step t
  (1-indexed), v_t = b2 v_{t-1} + (1 - b2) g^2, d_0 = 0 (as Adam's m, so P^{-1} d is
  Adam's step when d is an EMA) and P̃ = (I + lam P) P, the update of eq. (14) is

    beta    = Clip_[0, beta_max]( [ (1 + mu eta) g^T (P^{-1} d + mu x)
              - <d - g, g + lam P d>_{P̃^{-1}} - mu <x, d - g> ] / ||d - g||^2_{P̃^{-1}} )
    d_{t+1} = (lam P + I)^{-1} ((beta I + lam P) d_t + (1 - beta) g_t)
    x_{t+1} = (x_t - eta P^{-1} d_{t+1}) / (1 + mu eta),

  with f̂ - f estimated to first order as in AM-SGD; the module docstring derives
  beta (the sign of its mu term is not the paper's). It keeps this folded form:
  eta is inside beta and the decay divides by 1 + mu eta, so no chain gives its
  bits; `scale_by_am_adamw` is the chain's form, to first order in mu eta.

  References:
    Topollai and Choromanska, "Adaptive Memory Momentum via a Model-Based
    Framework for Deep Learning Optimization", section 3.3, eq. (14).

  Args:
    learning_rate: eta: a float, a traced array, or an optax schedule of the step.
    b1: the bias-correction constant of P_t (Adam's beta1).
    b2: Adam's beta2.
    eps: Adam's epsilon, inside P_t.
    weight_decay: mu, decoupled as in AdamW (the exact 1/(1 + mu eta) form).
    lam, beta_max, beta_min, reset_threshold, reset_high, reset_low, per_leaf:
      as in `am_sgd`.

  Returns:
    The transformation; `update` needs params; `state.beta` is beta_t.

  Example:
    >>> import jax.numpy as jnp
    >>> import rllc
    >>> tx = rllc.am_adamw(1e-2)
    >>> params = {"w": jnp.array([1.0, -2.0])}
    >>> state = tx.init(params)
    >>> for g in ([1.0, 0.5], [0.2, 0.6]):
    ...   updates, state = tx.update({"w": jnp.array(g)}, state, params)
    >>> [round(float(u), 4) for u in updates["w"]], round(float(state.beta), 4)  # at beta_max
    ([-0.008, -0.0099], 0.9)
  """
  policy = BetaPolicy(beta_max, beta_min, reset_threshold, reset_high, reset_low)
  return _am_adamw(learning_rate, b1, b2, eps, weight_decay, lam, policy, per_leaf)


def ema_momentum(learning_rate, beta) -> optax.GradientTransformation:
  """EMA momentum with a fixed beta, eq. (5): the baseline AM adapts the beta of.

    d_{t+1} = beta d_t + (1 - beta) g_t,   x_{t+1} = x_t - eta d_{t+1}   (eq. 5)

  with d_0 = g_0 as in AM's Algorithm 1, so that the first step is gradient
  descent and beta = 0 is gradient descent throughout. It is AM-SGD's step
  (eq. 13) at lam = 0 with beta_t held fixed.

  References:
    Topollai and Choromanska, "Adaptive Memory Momentum via a Model-Based
    Framework for Deep Learning Optimization", eq. (5).

  Args:
    learning_rate: eta: a float, a traced array, or an optax schedule of the step.
    beta: the momentum coefficient; may be a traced array (vmap over a grid).

  Returns:
    The transformation; its state is an EMAMomentumState.

  Example:
    >>> import jax.numpy as jnp
    >>> import rllc
    >>> params = {"w": jnp.array([1.0, -2.0])}
    >>> tx = rllc.ema_momentum(0.1, beta=0.9)
    >>> state = tx.init(params)
    >>> for g in ([1.0, 0.5], [0.2, 0.6]):
    ...   updates, state = tx.update({"w": jnp.array(g)}, state, params)
    >>> [round(float(u), 4) for u in updates["w"]]  # -eta (0.9 g_0 + 0.1 g_1), d_0 = g_0
    [-0.092, -0.051]
  """

  def init_fn(params):
    return EMAMomentumState(optax.tree.zeros_like(params), jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None):
    del params
    acc = accumulation_dtype(updates)
    eta = schedule.value_at(learning_rate, state.count)
    first = state.count == 0

    def leaf(g, d):
      d = jnp.where(first, g, d).astype(acc)  # d_0 = g_0
      d = beta * d + (1 - beta) * g.astype(acc)
      return (-eta * d).astype(g.dtype), d.astype(g.dtype)

    new_updates, direction = tree_lib.map_leaves(leaf, updates, state.direction)
    return new_updates, EMAMomentumState(direction, optax.safe_increment(state.count))

  return optax.GradientTransformation(init_fn, update_fn)
