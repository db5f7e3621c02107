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


# Short name -> factory(**hparams) -> (results name, optax transformation).
REGISTRY: dict[str, Callable[..., tuple[str, optax.GradientTransformation]]] = {
  "sgd": _sgd,
  "momentum": _momentum,
  "nesterov": _nesterov,
  "adam": _adam,
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
