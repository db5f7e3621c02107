"""One registry from a short name (or a propagator spec) to an optimizer.

  rllc.optimizer("adam", learning_rate=1e-3)
  rllc.optimizer("M(0.9)+M(0)", learning_rate=0.1, law_learning_rate=0.01)   # RLLC
  rllc.optimizer("M(0.9)+M(0)@ones", learning_rate=0.01, law_learning_rate=0.01)  # L0 = 1
  rllc.optimizer("lm:M(0.9)+M(0)", law=(0.9, 1.0), learning_rate=0.1)       # fixed law

An RLLC spec may end in `@CONVENTION`, the initial law L_0 (`ones` or
`normalized`, rllc.memory.INITIAL_LAWS): the same as the hyperparameter
`initial_law`, but part of the optimizer's name, so a protocol or the command
line can list one propagator under two conventions as two optimizers.

Each gives a `BuiltOptimizer`: the optax transformation, the
learned_optimization Optimizer (`.lopt()`), and a `name` such as
`RLLC[M(0.9)+M(0)]_lr0.1_law0.01` that is the stable key of its results. The
command line, TOML protocols and reports all use these names.
"""

import dataclasses
import functools
import inspect
from collections.abc import Callable
from typing import Any

import jax
import optax
import optax.contrib

from rllc import adaptive_memory as am
from rllc import lion as lion_lib
from rllc import memory, nested
from rllc import propagator as prop_lib
from rllc import spec as spec_lib

FIXED_LAW_PREFIX = "lm:"
INITIAL_LAW_SEPARATOR = "@"


@dataclasses.dataclass(frozen=True)
class BuiltOptimizer:
  """An optimizer of the suite, in both of its forms."""

  name: str  # stable results key, e.g. "Adam_lr0.001_b10.9_b20.999_eps1e-08"
  hparams: dict[str, Any]  # the resolved hyperparameters, to record beside results
  tx: optax.GradientTransformation
  buffers: int  # parameter-sized buffers in its state (declared in BUFFERS; tests count them)

  def lopt(self):
    """The same optimizer as a learned_optimization `Optimizer`."""
    from rllc import lopt  # imports learned_optimization: only when asked for

    return lopt.OptaxAdapter(self.tx, self.name)


def _num(x) -> str:
  """Name text of a hyperparameter; "traced" where the benchmark engine vmaps it.

  A grid trains as one program with its hyperparameters as arrays, so the
  transformation is built from tracers; each record's name comes from a build
  with the concrete values (eval.run.engine).
  """
  if isinstance(x, jax.core.Tracer):
    return "traced"
  if callable(x):  # an optax schedule
    return "schedule"
  return prop_lib.format_real(x)


def _shown(x, default) -> bool:
  """Whether a name spells out a hyperparameter: it differs from its default (or is traced)."""
  return isinstance(x, jax.core.Tracer) or x != default


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


def _adam_like(label: str, make: Callable) -> Callable:
  """The factory of Adam or NAdam: learning_rate, b1, b2, eps."""

  def factory(learning_rate: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
    return (
      f"{label}_lr{_num(learning_rate)}_b1{_num(b1)}_b2{_num(b2)}_eps{_num(eps)}",
      make(learning_rate, b1=b1, b2=b2, eps=eps),
    )

  return factory


def _adamw_like(label: str, make: Callable) -> Callable:
  """The factory of AdamW or NAdamW: as Adam's, and decoupled weight_decay."""

  def factory(
    learning_rate: float,
    weight_decay: float = 1e-4,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
  ):
    return (
      f"{label}_lr{_num(learning_rate)}" + _adamw_suffix(b1, b2, eps, weight_decay),
      make(learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay),
    )

  return factory


def _rllc(
  prop: prop_lib.Propagator,
  learning_rate: float,
  law_learning_rate: float,
  eps: float = memory.DEFAULT_EPS,
  relative_eps: float = memory.DEFAULT_RELATIVE_EPS,
  initial_law: str | tuple = memory.DEFAULT_INITIAL_LAW,
):
  name = f"RLLC[{prop}]_lr{_num(learning_rate)}_law{_num(law_learning_rate)}"
  if _shown(eps, memory.DEFAULT_EPS):
    name += f"_eps{_num(eps)}"
  if _shown(relative_eps, memory.DEFAULT_RELATIVE_EPS):
    name += f"_releps{_num(relative_eps)}"
  if isinstance(initial_law, str):
    name += "" if initial_law == memory.DEFAULT_INITIAL_LAW else f"_L0{initial_law}"
  elif isinstance(initial_law, jax.core.Tracer):
    name += "_L0traced"
  else:
    name += "_L0(" + ",".join(_num(float(x)) for x in initial_law) + ")"
  tx = memory.rllc(
    prop,
    learning_rate,
    law_learning_rate,
    eps=eps,
    relative_eps=relative_eps,
    initial_law=initial_law,
  )
  return name, tx


def _fixed_law(prop: prop_lib.Propagator, law, learning_rate: float = 1.0):
  law_text = ",".join(_num(x) for x in law)
  return (
    f"LM[{prop}]_law({law_text})_lr{_num(learning_rate)}",
    memory.linear_memory(prop, law, learning_rate),
  )


def _am_name(kind: str, learning_rate, lam, beta_max, beta_min, reset_threshold, per_leaf) -> str:
  """E.g. AM-SGD_lr0.1_lam0.1_bmax0.9, then _bmin (Clip), _theta (Reset), _perleaf."""
  name = f"{kind}_lr{_num(learning_rate)}_lam{_num(lam)}"
  if beta_max is not None:
    name += f"_bmax{_num(beta_max)}"
  if _shown(beta_min, 0.0):
    name += f"_bmin{_num(beta_min)}"
  if reset_threshold is not None:
    name += f"_theta{_num(reset_threshold)}"
  return name + ("_perleaf" if per_leaf else "")


def _am_sgd(
  learning_rate: float,
  lam: float = 0.1,
  beta_max: float = 0.9,
  beta_min: float = 0.0,
  reset_threshold: float | None = None,
  per_leaf: bool = False,
):
  policy = dict(beta_min=beta_min, reset_threshold=reset_threshold)
  return (
    _am_name("AM-SGD", learning_rate, lam, beta_max, **policy, per_leaf=per_leaf),
    am.am_sgd(learning_rate, lam=lam, beta_max=beta_max, **policy, per_leaf=per_leaf),
  )


def _am_mgd(learning_rate: float, lam: float = 0.1):
  return _am_name("AM-MGD", learning_rate, lam, None, 0.0, None, False), am.am_mgd(
    learning_rate, lam=lam
  )


def _adamw_suffix(b1, b2, eps, weight_decay) -> str:
  return f"_b1{_num(b1)}_b2{_num(b2)}_eps{_num(eps)}_wd{_num(weight_decay)}"


def _am_adamw(
  learning_rate: float,
  weight_decay: float = 1e-4,
  lam: float = 0.1,
  beta_max: float = 0.9,
  beta_min: float = 0.0,
  reset_threshold: float | None = None,
  b1: float = 0.9,
  b2: float = 0.999,
  eps: float = 1e-8,
  per_leaf: bool = False,
):
  policy = dict(beta_min=beta_min, reset_threshold=reset_threshold)
  name = _am_name("AM-AdamW", learning_rate, lam, beta_max, **policy, per_leaf=False)
  adamw = dict(b1=b1, b2=b2, eps=eps, weight_decay=weight_decay)
  return (
    name + _adamw_suffix(**adamw) + ("_perleaf" if per_leaf else ""),
    am.am_adamw(learning_rate, **adamw, lam=lam, beta_max=beta_max, **policy, per_leaf=per_leaf),
  )


def _lion(learning_rate: float, b1: float = 0.9, b2: float = 0.99, weight_decay: float = 0.0):
  return (
    f"Lion_lr{_num(learning_rate)}_b1{_num(b1)}_b2{_num(b2)}_wd{_num(weight_decay)}",
    optax.lion(learning_rate, b1=b1, b2=b2, weight_decay=weight_decay),
  )


def _lion_k(
  learning_rate: float,
  b1: float = 0.9,
  b2: float = 0.99,
  weight_decay: float = 0.0,
  kernel: str = "l1_smooth",
  eps: float = 1e-8,
):
  return (
    f"LionK[{kernel}]_lr{_num(learning_rate)}_b1{_num(b1)}_b2{_num(b2)}_wd{_num(weight_decay)}"
    + (f"_eps{_num(eps)}" if kernel == "l1_smooth" else ""),
    lion_lib.lion_k(learning_rate, b1, b2, weight_decay, kernel=kernel, eps=eps),
  )


def _signum(learning_rate: float, momentum: float = 0.9, weight_decay: float = 0.0):
  return (
    f"Signum_lr{_num(learning_rate)}_m{_num(momentum)}_wd{_num(weight_decay)}",
    lion_lib.signum(learning_rate, momentum, weight_decay),
  )


def _ademamix(
  learning_rate: float,
  b1: float = 0.9,
  b2: float = 0.999,
  b3: float = 0.9999,
  alpha: float = 5.0,
  eps: float = 1e-8,
  weight_decay: float = 0.0,
):
  return (
    f"AdEMAMix_lr{_num(learning_rate)}_b1{_num(b1)}_b2{_num(b2)}_b3{_num(b3)}"
    f"_alpha{_num(alpha)}_eps{_num(eps)}_wd{_num(weight_decay)}",
    optax.contrib.ademamix(
      learning_rate, b1=b1, b2=b2, b3=b3, alpha=alpha, eps=eps, weight_decay=weight_decay
    ),
  )


def _muon(learning_rate: float, beta: float = 0.95, ns_steps: int = 5, weight_decay: float = 0.0):
  return (
    f"Muon_lr{_num(learning_rate)}_beta{_num(beta)}_ns{ns_steps}_wd{_num(weight_decay)}",
    optax.contrib.muon(learning_rate, beta=beta, ns_steps=ns_steps, weight_decay=weight_decay),
  )


def _precond_momentum(
  learning_rate: float,
  momentum: float = 0.9,
  preconditioner: str = "adam",
  b2: float = 0.999,
  eps: float = 1e-8,
):
  return (
    f"PrecondMomentum[{preconditioner}]_lr{_num(learning_rate)}_m{_num(momentum)}",
    nested.preconditioned_momentum(learning_rate, momentum, preconditioner, b2, eps),
  )


def _delta_momentum(
  learning_rate: float,
  momentum: float = 0.9,
  delta: float = 1.0,
  preconditioner: str = "identity",
  b2: float = 0.999,
  eps: float = 1e-8,
):
  return (
    f"DeltaMomentum[{preconditioner}]_lr{_num(learning_rate)}_m{_num(momentum)}_delta{_num(delta)}",
    nested.delta_momentum(learning_rate, momentum, delta, preconditioner, b2, eps),
  )


def _ns_momentum(learning_rate: float, momentum: float = 0.95, ns_steps: int = 5):
  return (
    f"NSMomentum_lr{_num(learning_rate)}_m{_num(momentum)}_ns{ns_steps}",
    nested.ns_momentum(learning_rate, momentum, ns_steps),
  )


def _deep_momentum(
  learning_rate: float,
  momentum: float = 0.9,
  hidden: int = 16,
  mlp_rate: float = 1.0,
  sigma: str = "identity",
  normalize: bool = True,
  ns_steps: int = 5,
  eps: float = 1e-8,
):
  name = f"DeepMomentum[{sigma}]_lr{_num(learning_rate)}_m{_num(momentum)}_h{hidden}"
  name += f"_rate{_num(mlp_rate)}" + ("" if normalize else "_raw")
  name += f"_ns{ns_steps}" if sigma == "newton_schulz" else ""
  choices = (hidden, mlp_rate, sigma, normalize, ns_steps, eps)
  return name, nested.deep_momentum(learning_rate, momentum, *choices)


# The Clip and Reset variants of section 4.5 with their defaults: beta_min 0.5
# is ours (the paper gives none), theta 0.7 is the paper's.
_CLIP = {"beta_min": 0.5}
_RESET = {"reset_threshold": 0.7}

# Short name -> factory(**hparams) -> (results name, optax transformation).
REGISTRY: dict[str, Callable[..., tuple[str, optax.GradientTransformation]]] = {
  "sgd": _sgd,
  "momentum": _momentum,
  "nesterov": _nesterov,
  "adam": _adam_like("Adam", optax.adam),
  "adamw": _adamw_like("AdamW", optax.adamw),
  "nadam": _adam_like("NAdam", optax.nadam),
  "nadamw": _adamw_like("NAdamW", optax.nadamw),
  "lion": _lion,
  "lion-k": _lion_k,
  "signum": _signum,
  "ademamix": _ademamix,
  "muon": _muon,
  "precond-momentum": _precond_momentum,
  "delta-momentum": _delta_momentum,
  "ns-momentum": _ns_momentum,
  "deep-momentum": _deep_momentum,
  "am-sgd": _am_sgd,
  "am-sgd-clip": functools.partial(_am_sgd, **_CLIP),
  "am-sgd-reset": functools.partial(_am_sgd, **_RESET),
  "am-mgd": _am_mgd,
  "am-adamw": _am_adamw,
  "am-adamw-clip": functools.partial(_am_adamw, **_CLIP),
  "am-adamw-reset": functools.partial(_am_adamw, **_RESET),
}


def _adam_preconditioned(hparams: dict) -> int:
  return 1 + (hparams["preconditioner"] == "adam")


# Name -> parameter-sized buffers its state keeps, from the resolved
# hyperparameters: what an optimizer costs in memory beside the parameters.
# Muon keeps 1 on matrix leaves and Adam's 2 on the others: 2 is the most.
# A propagator spec keeps its k memory units.
BUFFERS: dict[str, int | Callable[[dict], int]] = {
  "sgd": 0,
  "momentum": 1,
  "nesterov": 1,
  "adam": 2,
  "adamw": 2,
  "nadam": 2,
  "nadamw": 2,
  "lion": 1,
  "lion-k": 1,
  "signum": 1,
  "ademamix": 3,
  "muon": 2,
  "precond-momentum": _adam_preconditioned,
  "delta-momentum": _adam_preconditioned,
  "ns-momentum": 1,
  "deep-momentum": 1,
  "am-sgd": 1,
  "am-sgd-clip": 1,
  "am-sgd-reset": 1,
  "am-mgd": 1,
  "am-adamw": 2,
  "am-adamw-clip": 2,
  "am-adamw-reset": 2,
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
  if args:  # a propagator: its memory units
    buffers = args[0].k
  else:
    declared = BUFFERS[label]
    buffers = declared(resolved) if callable(declared) else declared
  return BuiltOptimizer(name, resolved, tx, buffers)


def optimizer(name_or_spec: str, **hparams) -> BuiltOptimizer:
  """Builds an optimizer from a registry name or a propagator spec.

  Args:
    name_or_spec: a key of REGISTRY ("sgd", "momentum", "nesterov", "adam"),
      a propagator spec for RLLC ("M(0.9)+M(0)", or "M(0.9)+M(0)@ones" with
      its initial-law convention), or "lm:" and a spec for the same memory
      with a fixed law.
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
  spec, convention = split_initial_law(spec)
  if convention is not None:
    if fixed:
      raise ValueError(
        f"optimizer {name_or_spec!r}: a fixed law ({FIXED_LAW_PREFIX}) takes its law as the"
        f" hyperparameter law, not '{INITIAL_LAW_SEPARATOR}{convention}'"
      )
    if hparams.get("initial_law", convention) != convention:  # a record repeats it: fine
      raise ValueError(
        f"optimizer {name_or_spec!r}: two initial laws, '{INITIAL_LAW_SEPARATOR}{convention}'"
        f" and initial_law={hparams['initial_law']!r}"
      )
    hparams = {**hparams, "initial_law": convention}
  try:
    prop = spec_lib.parse_propagator(spec)
  except ValueError as err:
    raise ValueError(
      f"unknown optimizer {name_or_spec!r}: valid names are {', '.join(REGISTRY)}, a "
      f"propagator spec such as 'M(0.9)+M(0)' (RLLC), or '{FIXED_LAW_PREFIX}' and a spec "
      f"(fixed law). Read as a spec: {err}"
    ) from None
  return _build(name_or_spec, _fixed_law if fixed else _rllc, hparams, prop)


def split_initial_law(spec: str) -> tuple[str, str | None]:
  """ "M(0.9)+M(0)@ones" -> ("M(0.9)+M(0)", "ones"); without "@", (spec, None).

  Raises:
    ValueError: a convention that is not one of memory.INITIAL_LAWS.
  """
  if INITIAL_LAW_SEPARATOR not in spec:
    return spec, None
  spec, convention = spec.rsplit(INITIAL_LAW_SEPARATOR, 1)
  if convention not in memory.INITIAL_LAWS:
    raise ValueError(
      f"unknown initial law {convention!r} in {spec + INITIAL_LAW_SEPARATOR + convention!r};"
      f" valid: {', '.join(memory.INITIAL_LAWS)} (e.g. 'M(0.9)+M(0)@ones')"
    )
  return spec, convention
