"""One registry from a short name (or a propagator spec) to an optimizer.

  rllc.optimizer("adam", learning_rate=1e-3)
  rllc.optimizer("M(0.9)+M(0)", learning_rate=0.1, law_learning_rate=0.01)   # RLLC
  rllc.optimizer("lm:M(0.9)+M(0)", law=(0.9, 1.0), learning_rate=0.1)       # fixed law

Each gives a `BuiltOptimizer`: the optax transformation, the
learned_optimization Optimizer (`.lopt()`), and a `name` such as
`RLLC[M(0.9)+M(0)]_lr0.1_law0.01` that is the stable key of its results. The
command line, TOML protocols and reports all use these names.
"""

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import optax

from rllc import adaptive_memory as am
from rllc import memory
from rllc import propagator as prop_lib
from rllc import spec as spec_lib

FIXED_LAW_PREFIX = "lm:"


@dataclasses.dataclass(frozen=True)
class BuiltOptimizer:
  """An optimizer of the suite, in both of its forms."""

  name: str  # stable results key, e.g. "Adam_lr0.001_b10.9_b20.999_eps1e-08"
  hparams: dict[str, Any]  # the resolved hyperparameters, to record beside results
  tx: optax.GradientTransformation

  def lopt(self):
    """The same optimizer as a learned_optimization `Optimizer`."""
    from rllc import lopt  # imports learned_optimization: only when asked for

    return lopt.OptaxAdapter(self.tx, self.name)


def _num(x) -> str:
  return prop_lib.format_real(x)


def _sgd(learning_rate: float):
  return f"SGD_lr{_num(learning_rate)}", optax.sgd(learning_rate)


def _momentum(learning_rate: float, momentum: float = 0.9):
  return (
    f"Momentum_lr{_num(learning_rate)}_m{_num(momentum)}",
    optax.sgd(learning_rate, momentum=momentum),
  )


def _nesterov(learning_rate: float, momentum: float = 0.9):
  return (
    f"Nesterov_lr{_num(learning_rate)}_m{_num(momentum)}",
    optax.sgd(learning_rate, momentum=momentum, nesterov=True),
  )


def _adam(learning_rate: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
  return (
    f"Adam_lr{_num(learning_rate)}_b1{_num(b1)}_b2{_num(b2)}_eps{_num(eps)}",
    optax.adam(learning_rate, b1=b1, b2=b2, eps=eps),
  )


def _rllc(
  prop: prop_lib.Propagator,
  learning_rate: float,
  law_learning_rate: float,
  eps: float = memory.DEFAULT_EPS,
  relative_eps: float = memory.DEFAULT_RELATIVE_EPS,
):
  name = f"RLLC[{prop}]_lr{_num(learning_rate)}_law{_num(law_learning_rate)}"
  if eps != memory.DEFAULT_EPS:
    name += f"_eps{_num(eps)}"
  if relative_eps != memory.DEFAULT_RELATIVE_EPS:
    name += f"_releps{_num(relative_eps)}"
  return name, memory.rllc(
    prop, learning_rate, law_learning_rate, eps=eps, relative_eps=relative_eps
  )


def _fixed_law(prop: prop_lib.Propagator, law, learning_rate: float = 1.0):
  law_text = ",".join(_num(x) for x in law)
  return (
    f"LM[{prop}]_law({law_text})_lr{_num(learning_rate)}",
    memory.linear_memory(prop, law, learning_rate),
  )


def _am_name(kind: str, learning_rate, lam, beta_max, per_leaf, extra: str = "") -> str:
  name = f"{kind}_lr{_num(learning_rate)}_lam{_num(lam)}"
  if beta_max is not None:
    name += f"_bmax{_num(beta_max)}"
  return name + extra + ("_perleaf" if per_leaf else "")


def _am_sgd(learning_rate: float, lam: float = 0.1, beta_max: float = 0.9, per_leaf: bool = False):
  return (
    _am_name("AM-SGD", learning_rate, lam, beta_max, per_leaf),
    am.am_sgd(learning_rate, lam=lam, beta_max=beta_max, per_leaf=per_leaf),
  )


def _am_sgd_clip(
  learning_rate: float,
  beta_min: float = 0.5,
  lam: float = 0.1,
  beta_max: float = 0.9,
  per_leaf: bool = False,
):
  return (
    _am_name("AM-SGD-Clip", learning_rate, lam, beta_max, per_leaf, f"_bmin{_num(beta_min)}"),
    am.am_sgd(learning_rate, lam=lam, beta_max=beta_max, beta_min=beta_min, per_leaf=per_leaf),
  )


def _am_sgd_reset(
  learning_rate: float,
  reset_threshold: float = 0.7,
  lam: float = 0.1,
  beta_max: float = 0.9,
  per_leaf: bool = False,
):
  return (
    _am_name(
      "AM-SGD-Reset", learning_rate, lam, beta_max, per_leaf, f"_theta{_num(reset_threshold)}"
    ),
    am.am_sgd(
      learning_rate, lam=lam, beta_max=beta_max, reset_threshold=reset_threshold, per_leaf=per_leaf
    ),
  )


def _am_mgd(learning_rate: float, lam: float = 0.1):
  return _am_name("AM-MGD", learning_rate, lam, None, False), am.am_mgd(learning_rate, lam=lam)


def _adamw_extra(b1, b2, eps, weight_decay) -> str:
  return f"_b1{_num(b1)}_b2{_num(b2)}_eps{_num(eps)}_wd{_num(weight_decay)}"


def _am_adamw(
  learning_rate: float,
  weight_decay: float = 1e-4,
  lam: float = 0.1,
  beta_max: float = 0.9,
  b1: float = 0.9,
  b2: float = 0.999,
  eps: float = 1e-8,
  per_leaf: bool = False,
):
  return (
    _am_name(
      "AM-AdamW", learning_rate, lam, beta_max, per_leaf, _adamw_extra(b1, b2, eps, weight_decay)
    ),
    am.am_adamw(
      learning_rate,
      b1=b1,
      b2=b2,
      eps=eps,
      weight_decay=weight_decay,
      lam=lam,
      beta_max=beta_max,
      per_leaf=per_leaf,
    ),
  )


def _am_adamw_clip(
  learning_rate: float,
  beta_min: float = 0.5,
  weight_decay: float = 1e-4,
  lam: float = 0.1,
  beta_max: float = 0.9,
  b1: float = 0.9,
  b2: float = 0.999,
  eps: float = 1e-8,
  per_leaf: bool = False,
):
  return (
    _am_name(
      "AM-AdamW-Clip",
      learning_rate,
      lam,
      beta_max,
      per_leaf,
      _adamw_extra(b1, b2, eps, weight_decay) + f"_bmin{_num(beta_min)}",
    ),
    am.am_adamw(
      learning_rate,
      b1=b1,
      b2=b2,
      eps=eps,
      weight_decay=weight_decay,
      lam=lam,
      beta_max=beta_max,
      beta_min=beta_min,
      per_leaf=per_leaf,
    ),
  )


def _am_adamw_reset(
  learning_rate: float,
  reset_threshold: float = 0.7,
  weight_decay: float = 1e-4,
  lam: float = 0.1,
  beta_max: float = 0.9,
  b1: float = 0.9,
  b2: float = 0.999,
  eps: float = 1e-8,
  per_leaf: bool = False,
):
  return (
    _am_name(
      "AM-AdamW-Reset",
      learning_rate,
      lam,
      beta_max,
      per_leaf,
      _adamw_extra(b1, b2, eps, weight_decay) + f"_theta{_num(reset_threshold)}",
    ),
    am.am_adamw(
      learning_rate,
      b1=b1,
      b2=b2,
      eps=eps,
      weight_decay=weight_decay,
      lam=lam,
      beta_max=beta_max,
      reset_threshold=reset_threshold,
      per_leaf=per_leaf,
    ),
  )


def _adamw(
  learning_rate: float,
  weight_decay: float = 1e-4,
  b1: float = 0.9,
  b2: float = 0.999,
  eps: float = 1e-8,
):
  return (
    f"AdamW_lr{_num(learning_rate)}" + _adamw_extra(b1, b2, eps, weight_decay),
    optax.adamw(learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay),
  )


# Short name -> factory(**hparams) -> (results name, optax transformation).
REGISTRY: dict[str, Callable[..., tuple[str, optax.GradientTransformation]]] = {
  "sgd": _sgd,
  "momentum": _momentum,
  "nesterov": _nesterov,
  "adam": _adam,
  "adamw": _adamw,
  "am-sgd": _am_sgd,
  "am-sgd-clip": _am_sgd_clip,
  "am-sgd-reset": _am_sgd_reset,
  "am-mgd": _am_mgd,
  "am-adamw": _am_adamw,
  "am-adamw-clip": _am_adamw_clip,
  "am-adamw-reset": _am_adamw_reset,
}


def _build(label: str, factory: Callable, hparams: dict, *args) -> BuiltOptimizer:
  signature = inspect.signature(factory)
  params = list(signature.parameters.values())[len(args) :]
  valid = [p.name for p in params]
  unknown = sorted(set(hparams) - set(valid))
  missing = [
    p.name for p in params if p.default is inspect.Parameter.empty and p.name not in hparams
  ]
  if unknown or missing:
    problem = (
      f"unknown hyperparameter(s) {', '.join(unknown)}"
      if unknown
      else f"missing hyperparameter(s) {', '.join(missing)}"
    )
    raise ValueError(f"optimizer {label!r}: {problem}; it takes {', '.join(valid)}")
  bound = signature.bind(*args, **hparams)
  bound.apply_defaults()
  resolved = {k: v for k, v in bound.arguments.items() if k != "prop"}
  name, tx = factory(*args, **hparams)
  return BuiltOptimizer(name, resolved, tx)


def optimizer(name_or_spec: str, **hparams) -> BuiltOptimizer:
  """Builds an optimizer from a registry name or a propagator spec.

  Args:
    name_or_spec: a key of REGISTRY ("sgd", "momentum", "nesterov", "adam"),
      a propagator spec for RLLC ("M(0.9)+M(0)"), or "lm:" and a spec for the
      same memory with a fixed law.
    **hparams: the optimizer's hyperparameters, e.g. learning_rate.

  Returns:
    The BuiltOptimizer.

  Raises:
    ValueError: for an unknown name, a bad spec, or unknown or missing
      hyperparameters, naming the culprit and what would be valid.
  """
  if name_or_spec in REGISTRY:
    return _build(name_or_spec, REGISTRY[name_or_spec], hparams)
  fixed = name_or_spec.startswith(FIXED_LAW_PREFIX)
  spec = name_or_spec[len(FIXED_LAW_PREFIX) :] if fixed else name_or_spec
  try:
    prop = spec_lib.parse_propagator(spec)
  except ValueError as err:
    raise ValueError(
      f"unknown optimizer {name_or_spec!r}: valid names are {', '.join(REGISTRY)}, a "
      f"propagator spec such as 'M(0.9)+M(0)' (RLLC), or '{FIXED_LAW_PREFIX}' and a spec "
      f"(fixed law). Read as a spec: {err}"
    ) from None
  return _build(name_or_spec, _fixed_law if fixed else _rllc, hparams, prop)
