"""Linear memory with a fixed or a self-correcting (RLLC) learning law.

The RLLC paper, Definition 5.1 (LM-RLLC optimization process): with a
propagator (B, a), learning rate c1 and law learning rate c2, at step t

  g_t = grad f_t(theta_{t-1})
  L_t = L_{t-1} + c2 M_{t-1}^+ g_t        retrospective law correction (RLLC)
  M_t = M_{t-1} B + g_t a^T               linear memory update, eq. (1)
  theta_t = theta_{t-1} - c1 M_t L_t      learning step

with M_0 = 0. With c2 = 0 the law is fixed: the optimizer L(B, a, L) of
section 4, which contains SGD, heavy-ball momentum and Nesterov (Lemma 4.1,
appendices A.1 and A.2).

The relaxed pseudo-inverse (Remark 3.5). M^+ g = (M^T M)^+ M^T g, and the k x k
Gram matrix G = M^T M is nearly singular whenever the units are nearly
collinear, which consecutive gradients make common; the exact pseudo-inverse
then throws the law about. We solve the ridge system

  (G + r I) x = M^T g,   r = eps + relative_eps * trace(G) / k,

through the eigendecomposition of G, dropping eigen-directions whose
regularized eigenvalue is zero (so r = 0 is the exact Moore-Penrose
pseudo-inverse, and M = 0 or zero gradients give x = 0, never NaN).

The law step c2 M^+ g is dimensionless: it does not change when the loss is
rescaled. An absolute eps breaks that and a relative one keeps it, so the main
ridge is relative: relative_eps = 1e-2, which caps the condition number the
law sees at about 100 (k / relative_eps). Measured on 2-d Rosenbrock in
float32 (3000 steps, c1 in {1e-3, 2e-3}, c2 = 0.01): with relative_eps = 1e-3
both M(0.9)+M(0) and M2(0.6) reached NaN at one of the two rates, with 1e-2
every run converged. The absolute floor eps = 1e-8 matters only when the
memory's energy is tiny: it stops float32 rounding noise in gradients of a
converged problem from driving the law (M^+ g is O(1) even for pure noise).
Both are named arguments.

The cost. One step must read M and g for M^T g before the law can change, and
again to write the new memory and the update: (k+1) + (2k+2) parameter-sized
passes. The Gram matrix of the new memory needs no pass of its own, since

  G_t = (M B + g a^T)^T (M B + g a^T)
      = B^T G_{t-1} B + B^T p a^T + a p^T B + |g|^2 a a^T,   p = M_{t-1}^T g,

and p and |g|^2 come out of the first pass. Rounding errors of this
recursion decay like B^T (.) B, so they stay bounded when the propagator is
stable.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rllc import propagator as prop_lib
from rllc import schedule
from rllc import spec as spec_lib
from rllc import tree as tree_lib

DEFAULT_EPS = 1e-8
DEFAULT_RELATIVE_EPS = 1e-2


class LinearMemoryState(NamedTuple):
  """State of linear memory with a fixed learning law."""

  memory: tuple  # k pytrees like params: memory[i] is unit i, labelled prop.labels[i]
  law: jax.Array  # (k,) the learning law L, fixed
  count: jax.Array  # int32 number of updates so far


class RLLCState(NamedTuple):
  """State of LM-RLLC (Definition 5.1)."""

  memory: tuple  # M_t as k pytrees like params: memory[i] is unit i
  gram: jax.Array  # (k, k) M_t^T M_t over all leaves, kept by the recursion above
  law: jax.Array  # (k,) the learning law L_t
  count: jax.Array  # int32 number of updates so far


def as_propagator(prop_or_spec: prop_lib.Propagator | str) -> prop_lib.Propagator:
  """Accepts a Propagator or a spec string such as "M(0.9)+M(0)"."""
  if isinstance(prop_or_spec, str):
    return spec_lib.parse_propagator(prop_or_spec)
  if isinstance(prop_or_spec, prop_lib.Propagator):
    return prop_or_spec
  raise TypeError(f"expected a Propagator or a spec string, got {type(prop_or_spec).__name__}")


# The conventions for L_0, by name (`initial_law` of `rllc`, and the
# `SPEC@NAME` suffix of an optimizer name in `rllc.optimizer` and protocols).
# The default is "ones": under the paper's protocol and grid (appendix A.5.2)
# it puts RLLC's selected c1 and c2 inside the grid, where "normalized" put
# them in its corner (reports/calibration_initial_law.md).
INITIAL_LAWS = ("ones", "normalized")
DEFAULT_INITIAL_LAW = "ones"


def abstract_rule_sums(prop: prop_lib.Propagator) -> jax.Array:
  """w = (I - B^T)^{-1} a: a constant gradient g fills unit j with w_j g (its rule's sum)."""
  return jnp.linalg.solve(jnp.eye(prop.k) - prop.B.T, prop.a)


def normalized_law(prop: prop_lib.Propagator) -> jax.Array:
  """L_0 = 1 / ||w||_1 in every entry, w = (I - B^T)^{-1} a.

  A constant gradient g then makes the learning step c1 g whenever all
  w_j >= 0 (any sum of M(beta), Mk(beta) blocks), so c1 is an
  SGD-equivalent learning rate. It is 1/11 for M(0.9)+M(0) and 1/18 for
  M(0.9)+M(0.8)+M(0.7), which divides the effective learning rate by 11-18
  against `ones`, while the law step c2 M^+ g does not scale with L.
  Unstable propagators (I - B singular) fall back to 1/k.
  """
  total = jnp.sum(jnp.abs(abstract_rule_sums(prop)))
  scale = jnp.where(jnp.isfinite(total) & (total > 0), 1.0 / total, 1.0 / prop.k)
  return jnp.full((prop.k,), 1.0) * scale


def resolve_initial_law(prop: prop_lib.Propagator, choice=DEFAULT_INITIAL_LAW) -> jax.Array:
  """The initial law L_0 of a convention, or an explicit vector.

  The paper says only that L_0 is "not 0" (Remark 3.4). The conventions:

    ones        L_0 = (1, ..., 1): every memory unit enters the first step
                with weight 1, so M(beta) starts as optax's undampened heavy
                ball sum_s beta^s g and M(beta)+M(0) as heavy ball plus SGD.
    normalized  L_0 = 1 / ||(I - B^T)^{-1} a||_1 (`normalized_law`).

  Args:
    prop: the propagator.
    choice: a name of INITIAL_LAWS, or a (k,) sequence or array.

  Returns:
    (k,) initial law.

  Raises:
    ValueError: an unknown name (naming the valid ones) or a vector of the
      wrong shape.
  """
  if isinstance(choice, str):
    if choice == "ones":
      return jnp.ones((prop.k,))
    if choice == "normalized":
      return normalized_law(prop)
    raise ValueError(
      f"unknown initial law {choice!r}; valid: {', '.join(INITIAL_LAWS)}, or a vector of"
      f" {prop.k} numbers"
    )
  return _law_vector(prop, choice, f"initial_law must be one of {', '.join(INITIAL_LAWS)} or")


def _law_vector(prop: prop_lib.Propagator, law, must: str) -> jax.Array:
  law = jnp.asarray(law)
  if law.shape != (prop.k,):
    raise ValueError(f"{must} have shape ({prop.k},) for {prop}, got shape {law.shape}")
  return law


def accumulation_dtype(params) -> jnp.dtype:
  """Dtype of optimizer sums and scalars: float32 for float32/bfloat16 params, else float64."""
  return jnp.result_type(jnp.float32, *jax.tree.leaves(params))


def _init_memory(params, k: int) -> tuple:
  return tuple(optax.tree.zeros_like(params) for _ in range(k))


def _inner_products(memory, grads, acc) -> tuple[jax.Array, jax.Array]:
  """First pass: p = M^T g over all leaves, and |g|^2, summed in the accumulation dtype.

  Leaf by leaf, so that a gradient leaf is read for its k + 1 dot products
  while it is in cache: unit by unit (optax.tree.vdot for each unit) made a
  scanned training step of M(0.9)+M(0) 12-17% slower.
  """

  def leaf(g, *units):
    g = g.reshape(-1)
    dot = lambda x: jnp.dot(x.reshape(-1), g, preferred_element_type=acc)  # noqa: E731
    return jnp.stack([dot(unit) for unit in units]), dot(g)

  p, gg = tree_lib.map_leaves(leaf, grads, *memory)
  return sum(jax.tree.leaves(p)), optax.tree.sum(gg)


def _step_memory(memory, grads, prop, weights, acc, after):
  """Second pass: M_t = M_{t-1} B + g a^T, then the update sum_j weights_j M_t[j].

  Each unit is its own params-shaped buffer, written from its own old value,
  the gradient and (for Jordan and CM blocks) the units coupled into it,
  with no term for an entry of B or a that is known to be 0. This lets XLA
  update the units in place, which a training loop (lax.scan) needs: a
  stacked (k, ...) buffer measured 1.2x to 2x slower here, since XLA copied
  all of it every step.

  XLA cannot see that the writes must wait for M^T g to have read the old
  memory, and copies the memory to be safe; adding `zero`, min(|after|, 0),
  to every new unit tells it. That is a runtime 0 (NaN only if `after` is)
  which it cannot fold away.

  Args:
    memory: tuple of k unit pytrees M_{t-1}.
    grads: the gradient g_t.
    prop: the propagator.
    weights: (k,) weights of the units in the update: L_t, or -c1 L_t
      (`_unit_weights`).
    acc: accumulation dtype.
    after: an array the writes must wait for (RLLC's M^T g), or any array
      of the state.

  Returns:
    (new memory, updates).
  """
  k = prop.k
  pattern = np.asarray(prop.pattern)
  known = isinstance(prop.a, np.ndarray)
  zero = jnp.minimum(jnp.abs(jnp.sum(after)), 0.0).astype(acc)
  coeff = weights.astype(acc)

  def leaf(g, *units):
    g_acc = g.astype(acc)
    new = []
    for j in range(k):
      terms = [] if known and prop.a[j] == 0 else [prop.a[j] * g_acc]
      terms += [prop.B[i, j] * units[i].astype(acc) for i in range(k) if pattern[i, j]]
      new.append(sum(terms, zero))
    update = sum(coeff[j] * new[j] for j in range(k))
    return tuple(unit.astype(g.dtype) for unit in new), update.astype(g.dtype)

  return tree_lib.map_leaves(leaf, grads, *memory)


def _next_gram(gram, p, gg, prop, acc):
  """G_t from G_{t-1}, p = M_{t-1}^T g and |g|^2, without touching M."""
  B = prop.B.astype(acc)
  a = prop.a.astype(acc)
  cross = jnp.outer(B.T @ p, a)
  return B.T @ gram @ B + cross + cross.T + gg * jnp.outer(a, a)


def relaxed_pinv_solve(gram, p, eps, relative_eps) -> jax.Array:
  """x = (G + r I)^+ p with r = eps + relative_eps * trace(G) / k.

  G is symmetric positive semi-definite, so its eigendecomposition gives the
  solve directly; directions whose regularized eigenvalue is below the
  pseudo-inverse cut-off (as numpy's pinv) are dropped instead of inverted.

  Args:
    gram: (k, k) Gram matrix.
    p: (k,) right-hand side M^T g.
    eps: absolute ridge.
    relative_eps: ridge relative to the mean eigenvalue trace(G) / k.

  Returns:
    (k,) solution.
  """
  k = gram.shape[0]
  evals, evecs = jnp.linalg.eigh(gram)
  evals = jnp.maximum(evals, 0.0)
  denom = evals + eps + relative_eps * jnp.sum(evals) / k
  cutoff = 10 * k * jnp.finfo(gram.dtype).eps * jnp.max(denom)
  keep = denom > cutoff
  inverse = jnp.where(keep, 1.0 / jnp.where(keep, denom, 1.0), 0.0)
  return evecs @ (inverse * (evecs.T @ p))


def _unit_weights(law, learning_rate, count) -> jax.Array:
  """The weights of the memory units in the update: L, or -c1 L when c1 is given.

  With c1 given, its product with the law is formed before the sum over units,
  sum_j (-c1 L_j) M[j]: the order in which every record of this suite was
  computed. optax.scale_by_learning_rate after the transformation forms
  -c1 (sum_j L_j M[j]) instead, equal up to float rounding.
  """
  if learning_rate is None:
    return law
  return -schedule.value_at(learning_rate, count) * law


def scale_by_linear_memory(
  prop_or_spec: prop_lib.Propagator | str, law, *, learning_rate=None
) -> optax.GradientTransformation:
  """Linear memory with a fixed law L(B, a, L): M_t = M_{t-1} B + g a^T, update M_t L.

  Compose it as optax composes Adam, for example
  `optax.chain(scale_by_linear_memory(spec, law), optax.scale_by_learning_rate(c1))`
  for the learning step -c1 M_t L, with c1 a float or a schedule.

  Args:
    prop_or_spec: the propagator (B, a) or its spec string.
    law: the fixed (k,) learning law.
    learning_rate: None for the update M_t L; or c1 (a float, a traced
      array or an optax schedule of the step count) for the learning step
      -c1 M_t L itself, with c1 folded into the law (`_unit_weights`).

  Returns:
    The transformation; its state is a LinearMemoryState.

  References:
    "Dynamic memory based adaptive optimization" (the RLLC paper), section 4: eq. (1)
    and Lemma 4.1 (SGD, heavy ball and Nesterov as fixed laws).

  Example:
    Heavy ball as one unit M(0.9) with the law (1,): the chain's first update
    is the gradient itself, then 0.9 m + g:

    >>> import jax.numpy as jnp
    >>> import optax
    >>> from rllc import memory
    >>> tx = optax.chain(
    ...   memory.scale_by_linear_memory("M(0.9)", law=(1.0,)), optax.scale_by_learning_rate(0.1)
    ... )
    >>> state = tx.init(jnp.zeros(2))
    >>> for g in ([0.5, -1.0], [1.0, 0.0]):
    ...   updates, state = tx.update(jnp.array(g), state)
    ...   print([round(float(u), 4) for u in updates])
    [-0.05, 0.1]
    [-0.145, 0.09]
  """
  prop = as_propagator(prop_or_spec)

  def init_fn(params):
    acc = accumulation_dtype(params)
    return LinearMemoryState(
      _init_memory(params, prop.k),
      jnp.array(_law_vector(prop, law, "law must"), acc),  # a copy: the state may be donated
      jnp.zeros([], jnp.int32),
    )

  def update_fn(updates, state, params=None):
    del params
    acc = accumulation_dtype(updates)
    weights = _unit_weights(state.law, learning_rate, state.count)
    memory, updates = _step_memory(state.memory, updates, prop, weights, acc, state.law)
    return updates, LinearMemoryState(memory, state.law, optax.safe_increment(state.count))

  return optax.GradientTransformation(init_fn, update_fn)


def linear_memory(
  prop_or_spec: prop_lib.Propagator | str, law, learning_rate
) -> optax.GradientTransformation:
  """The optimizer L(B, a, L) of section 4: the learning step -c1 M_t L.

  Args:
    prop_or_spec: the propagator (B, a) or its spec string.
    law: the fixed (k,) learning law.
    learning_rate: c1: a float, a traced array or an optax schedule.

  Returns:
    `scale_by_linear_memory` with c1 folded into the law; its state is a
    LinearMemoryState.

  References:
    "Dynamic memory based adaptive optimization" (the RLLC paper), section 4: eq. (1)
    and Lemma 4.1 (SGD, heavy ball and Nesterov as fixed laws).

  Example:
    Nesterov (Lemma 4.1): M(0.9)+M(0) with the law (0.9, 1) steps like
    optax.sgd(c1, momentum=0.9, nesterov=True), here -c1 (0.9 g + g) first:

    >>> import jax.numpy as jnp
    >>> import optax
    >>> from rllc import memory
    >>> tx = memory.linear_memory("M(0.9)+M(0)", law=(0.9, 1.0), learning_rate=0.1)
    >>> nesterov = optax.sgd(0.1, momentum=0.9, nesterov=True)
    >>> g = jnp.array([0.5, -1.0])
    >>> updates, _ = tx.update(g, tx.init(jnp.zeros(2)))
    >>> reference, _ = nesterov.update(g, nesterov.init(jnp.zeros(2)))
    >>> print([round(float(u), 4) for u in updates], [round(float(u), 4) for u in reference])
    [-0.095, 0.19] [-0.095, 0.19]
  """
  return scale_by_linear_memory(prop_or_spec, law, learning_rate=learning_rate)


def scale_by_rllc(
  prop_or_spec: prop_lib.Propagator | str,
  law_learning_rate,
  *,
  learning_rate=None,
  eps: float = DEFAULT_EPS,
  relative_eps: float = DEFAULT_RELATIVE_EPS,
  initial_law=DEFAULT_INITIAL_LAW,
) -> optax.GradientTransformation:
  """LM-RLLC's memory and law (Definition 5.1), with the update M_t L_t.

  The law correction L_t = L_{t-1} + c2 M_{t-1}^+ g_t does not involve c1, so
  RLLC composes as optax composes Adam:
  `optax.chain(scale_by_rllc(spec, c2), optax.scale_by_learning_rate(c1))`
  is the learning step -c1 M_t L_t, with c1 a float or any optax schedule.

  Args:
    prop_or_spec: the propagator (B, a) or its spec, e.g. "M(0.9)+M(0)".
    law_learning_rate: c2; may be a traced array (vmap over a grid).
    learning_rate: None for the update M_t L_t; or c1 (a float, a traced
      array or an optax schedule of the step count) for the learning step
      -c1 M_t L_t itself, with c1 folded into the law (`_unit_weights`).
    eps: absolute ridge added to the Gram matrix M^T M.
    relative_eps: further ridge, relative to trace(M^T M) / k (scale-aware).
    initial_law: L_0: a convention of INITIAL_LAWS ("ones", "normalized"), or
      an explicit (k,) vector (`resolve_initial_law`).

  Returns:
    The transformation; its state is an RLLCState exposing the law and memory.

  References:
    "Dynamic memory based adaptive optimization" (the RLLC paper), Definition 5.1
    (the LM-RLLC process) and Remark 3.5 (the relaxed pseudo-inverse).

  Example:
    Chained with optax's learning rate, as optax chains Adam:

    >>> import jax.numpy as jnp
    >>> import optax
    >>> from rllc import memory
    >>> tx = optax.chain(
    ...   memory.scale_by_rllc("M(0.9)", law_learning_rate=0.01), optax.scale_by_learning_rate(0.1)
    ... )
    >>> state = tx.init(jnp.zeros(2))
    >>> updates, state = tx.update(jnp.array([0.5, -1.0]), state)
    >>> print([round(float(u), 4) for u in updates])  # M_0 = 0: no correction yet, -c1 g
    [-0.05, 0.1]
  """
  prop = as_propagator(prop_or_spec)
  law0 = resolve_initial_law(prop, initial_law)

  def init_fn(params):
    acc = accumulation_dtype(params)
    return RLLCState(
      _init_memory(params, prop.k),
      jnp.zeros((prop.k, prop.k), acc),
      jnp.array(law0, acc),  # a copy: the state may be donated
      jnp.zeros([], jnp.int32),
    )

  def update_fn(updates, state, params=None):
    del params
    acc = accumulation_dtype(updates)
    p, gg = _inner_products(state.memory, updates, acc)
    law = state.law + law_learning_rate * relaxed_pinv_solve(state.gram, p, eps, relative_eps)
    weights = _unit_weights(law, learning_rate, state.count)
    memory, updates = _step_memory(state.memory, updates, prop, weights, acc, p)
    gram = _next_gram(state.gram, p, gg, prop, acc)
    return updates, RLLCState(memory, gram, law, optax.safe_increment(state.count))

  return optax.GradientTransformation(init_fn, update_fn)


def rllc(
  prop_or_spec: prop_lib.Propagator | str,
  learning_rate,
  law_learning_rate,
  *,
  eps: float = DEFAULT_EPS,
  relative_eps: float = DEFAULT_RELATIVE_EPS,
  initial_law=DEFAULT_INITIAL_LAW,
) -> optax.GradientTransformation:
  """LM-RLLC (Definition 5.1): linear memory whose law corrects itself each step.

  Args:
    prop_or_spec: the propagator (B, a) or its spec, e.g. "M(0.9)+M(0)".
    learning_rate: c1: a float, a traced array (vmap over a grid) or an optax
      schedule of the step count.
    law_learning_rate: c2; may be a traced array.
    eps: absolute ridge added to the Gram matrix M^T M.
    relative_eps: further ridge, relative to trace(M^T M) / k (scale-aware).
    initial_law: L_0: a convention of INITIAL_LAWS ("ones", "normalized"), or
      an explicit (k,) vector (`resolve_initial_law`).

  Returns:
    `scale_by_rllc` with c1 folded into the law; its state is an RLLCState.

  References:
    "Dynamic memory based adaptive optimization" (the RLLC paper), Definition 5.1
    (the LM-RLLC process) and Remark 3.5 (the relaxed pseudo-inverse).

  Example:
    One unit M(0.9), c1 = 0.1, c2 = 0.01, L_0 = (1,). The first step has no
    memory to correct the law with; the second corrects it by
    c2 p / (G + r) with p = g_1 . g_2 = 0.5, G = |g_1|^2 = 1.25 and the ridge
    r = 0.01 G (+ 1e-8), so L_2 = 1 + 0.01 * 0.5 / 1.2625 = 1.00396, and steps
    by -c1 L_2 (0.9 g_1 + g_2):

    >>> import jax.numpy as jnp
    >>> from rllc import memory
    >>> tx = memory.rllc("M(0.9)", learning_rate=0.1, law_learning_rate=0.01)
    >>> state = tx.init(jnp.zeros(2))
    >>> for g in ([0.5, -1.0], [1.0, 0.0]):
    ...   updates, state = tx.update(jnp.array(g), state)
    ...   print([round(float(u), 4) for u in updates], round(float(state.law[0]), 5))
    [-0.05, 0.1] 1.0
    [-0.1456, 0.0904] 1.00396
  """
  return scale_by_rllc(
    prop_or_spec,
    law_learning_rate,
    learning_rate=learning_rate,
    eps=eps,
    relative_eps=relative_eps,
    initial_law=initial_law,
  )
