"""Linear memory with a fixed law, made memoryless: effective learning rate and implicit penalty.

The optimizer. `rllc.memory.linear_memory` (the RLLC paper's L(B, a, L),
eq. 1 with c2 = 0) updates M_t = M_{t-1} B + g_t a^T and steps
theta_t = theta_{t-1} - h M_t L. From M_0 = 0, unit j holds
sum_i (a^T B^i)_j g_{t-i} (eq. 2 of `rllc.propagator`), so in the memory
paper's notation (its eq. 1, theta^(n) = theta_n, g_{n+1} = grad L(theta^(n)))

  theta^(n+1) = theta^(n) - h F^(n),   F^(n) = sum_{i=0}^{n} w_i grad L(theta^(n-i)),
  w_i = a^T B^i L                                        (the step weights).

Formula (9) of the memory paper. With dF^(n)/dtheta^(n-k) = w_k grad^2 L and
F^(s)(theta) = (sum_{i<=s} w_i) grad L(theta) -> W grad L(theta) (the
o_n(1) terms decay like rho(B)^n and are dropped, as in its appendix D),

  M^(n)(theta) = h sum_{k>=1} w_k grad^2 L(theta) k W grad L(theta)
               = h W S grad^2 L grad L = (h W S / 2) grad |grad L|^2,

so the memoryless iteration (4), theta <- theta - h [F(theta) + M(theta)], is

  theta <- theta - h W grad[ L(theta) + (h S / 2) |grad L(theta)|^2 ],

  W = sum_{i>=0} w_i   = a^T (I - B)^{-1} L,
  S = sum_{i>=1} i w_i = a^T B (I - B)^{-2} L,

by sum_i B^i = (I - B)^{-1} and sum_i i B^i = B (I - B)^{-2}; both series
converge iff the spectral radius rho(B) < 1. Both are linear in the law:
W = u . L and S = s . L with u = (I - B^T)^{-1} a (the unit sums of
`rllc.memory.abstract_rule_sums`) and s = (I - B^T)^{-1} B^T u. The ratio S / W is
the mean age sum_i i w_i / sum_i w_i of the gradients a step uses, so at an
equal effective learning rate eta = h W the penalty is (eta / 2) (S / W).

Statements checked (tests/rllc/test_analysis_linear.py):
- the update of `linear_memory` at step n is exactly -h sum_{i=0}^{n} w_i g_{n-i}
  (a simulation of the real optimizer: this pins w_i = a^T B^i L, not L^T B^i a);
- W and S equal the brute-force sums for M, Jordan (M2) and rotation (CM)
  blocks and their sums, with random laws;
- M(beta) with L = (1) is optax heavy ball (w_i = beta^i): W = 1 / (1 - beta),
  S = beta / (1 - beta)^2, the paper's eq. (6) (penalty h beta / (2 (1 - beta)^2))
  and appendix E's correction h W S / 2 = h beta / (2 (1 - beta)^3);
- M(beta)+M(0) with L = (beta, 1) is optax Nesterov (w_0 = 1 + beta,
  w_i = beta^(i+1)): W = 1 / (1 - beta), S = beta^2 / (1 - beta)^2, and
  h W S / 2 = h beta^2 / (2 (1 - beta)^3) is appendix E's Nesterov correction;
- on L(theta) = lam theta^2 / 2 the real optimizer's iterates, once the memory's
  transients are gone, shrink per step by 1 - h lam W - (h lam)^2 W S + O(h^3),
  which is the memoryless iteration's factor to second order.

Reading the sign. With W > 0 the iteration descends the modified loss at the
rate h W. S > 0: the memory regularizes, penalizing the gradient norm. S < 0:
the memory anti-regularizes, implicitly rewarding a large gradient norm.
S = 0 (SGD, or a law on M(0) units only): no first-order effect. W <= 0: the
law does not descend L to first order (W < 0 ascends the modified loss) and
the reading does not apply. S is the memory's share only: the continuous ODE
of the paper's appendix F adds h W^2 / 4 grad |grad L|^2, which plain GD has too.

RLLC. `law_trajectory` reads a learned law L_t as if frozen at each step.
That ignores the law's own dependence on past iterates (further terms in
dF^(n)/dtheta^(n-k)), so it holds while L_t changes slowly next to the
memory's decay time 1 / (1 - rho(B)).
"""

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from rllc import propagator as prop_lib
from rllc import spec as spec_lib


class Effective(NamedTuple):
  """The memoryless reading of a fixed law: theta <- theta - h W grad[L + h penalty |grad L|^2]."""

  W: float  # a^T (I - B)^{-1} L: the effective learning rate per unit h
  S: float  # a^T B (I - B)^{-2} L = sum_i i w_i
  penalty: float  # S / 2: the gradient-norm penalty coefficient per unit h
  spectral_radius: float  # rho(B); W and S exist iff it is below 1


def propagator(prop_or_spec: prop_lib.Propagator | str) -> prop_lib.Propagator:
  """A Propagator, or a spec parsed with unstable terms allowed (`effective` refuses them)."""
  if isinstance(prop_or_spec, str):
    return spec_lib.parse_propagator(prop_or_spec, allow_unstable=True)
  if isinstance(prop_or_spec, prop_lib.Propagator):
    return prop_or_spec
  raise TypeError(f"expected a Propagator or a spec string, got {type(prop_or_spec).__name__}")


def _law(prop: prop_lib.Propagator, law: Sequence[float]) -> np.ndarray:
  law = np.asarray(law, np.float64)
  if law.shape != (prop.k,):
    raise ValueError(
      f"a law for {prop} has one number per memory unit, k = {prop.k} "
      f"({', '.join(prop.labels)}); got {law.size if law.ndim == 1 else f'shape {law.shape}'}"
    )
  return law


def _unit_sums(prop: prop_lib.Propagator) -> tuple[np.ndarray, np.ndarray, float]:
  """u = (I - B^T)^{-1} a and s = (I - B^T)^{-1} B^T u, so W = u . L and S = s . L; and rho(B)."""
  radius = prop.spectral_radius()
  if radius >= 1:
    raise ValueError(
      f"propagator {prop} has spectral radius {radius:g}: the series sum_i B^i diverges, so "
      f"W and S do not exist; the spectral radius must be < 1 (|β| < 1, |γ| < 1)"
    )
  B = np.asarray(prop.B, np.float64)
  lhs = np.eye(prop.k) - B.T
  u = np.linalg.solve(lhs, np.asarray(prop.a, np.float64))
  return u, np.linalg.solve(lhs, B.T @ u), radius


def weights(prop_or_spec: prop_lib.Propagator | str, law: Sequence[float], n: int) -> np.ndarray:
  """The first n step weights w_i = a^T B^i L (i = 0..n-1) by repeated products, float64."""
  prop = propagator(prop_or_spec)
  return prop.abstract_rule(n) @ _law(prop, law)


def effective(prop_or_spec: prop_lib.Propagator | str, law: Sequence[float]) -> Effective:
  """W, S and the penalty S / 2 of a fixed law, in closed form.

  Args:
    prop_or_spec: the propagator or its spec, e.g. "M(0.9)+M(0)".
    law: the k numbers of the fixed law L.

  Returns:
    The Effective reading.

  Raises:
    ValueError: for a malformed spec, a spectral radius >= 1 or a law whose
      length is not k.
  """
  prop = propagator(prop_or_spec)
  law = _law(prop, law)
  u, s, radius = _unit_sums(prop)
  S = float(s @ law)
  return Effective(float(u @ law), S, S / 2, radius)


def law_trajectory(prop_or_spec: prop_lib.Propagator | str, laws) -> np.ndarray:
  """W(L_t) and the penalty S(L_t) / 2 (per unit h) of each law L_t, each read as frozen.

  Args:
    prop_or_spec: the propagator or its spec.
    laws: [T, k] laws, e.g. an RLLC record's curves["law"].

  Returns:
    [T, 2] float64: column 0 is W(L_t), column 1 is S(L_t) / 2.
  """
  prop = propagator(prop_or_spec)
  laws = np.asarray(laws, np.float64)
  if laws.ndim != 2 or laws.shape[1] != prop.k:
    raise ValueError(
      f"laws for {prop} must have shape [T, {prop.k}], one column per unit "
      f"({', '.join(prop.labels)}); got shape {laws.shape}"
    )
  u, s, _ = _unit_sums(prop)
  return laws @ np.stack([u, s / 2], axis=1)
