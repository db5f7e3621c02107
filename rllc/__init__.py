"""Memory optimizers: propagators, RLLC and linear memory, as optax transformations.

The learned_optimization forms live in `rllc.lopt` (imported on demand, since
learned_optimization is heavy); `rllc.optimizer(...).lopt()` reaches them.

Every name below is imported on first use (PEP 562), so that `import rllc.spec`
or `import rllc.catalog` does not import JAX and optax through this package:
the command line's light commands (`rllc --help`, `rllc optimizers`, `rllc
report`) rely on that. `rllc.memory`, `rllc.registry`, ... are reachable as
attributes the same way.
"""

import importlib

# Public name -> the submodule that defines it.
_EXPORTS = {
  "AMAdamWState": "adaptive_memory",
  "AMState": "adaptive_memory",
  "am_adamw": "adaptive_memory",
  "am_mgd": "adaptive_memory",
  "am_sgd": "adaptive_memory",
  "BetaPolicy": "adaptive_memory",
  "EMAMomentumState": "adaptive_memory",
  "ema_momentum": "adaptive_memory",
  "scale_by_am_adamw": "adaptive_memory",
  "scale_by_am_sgd": "adaptive_memory",
  "INITIAL_LAWS": "memory",
  "LinearMemoryState": "memory",
  "RLLCState": "memory",
  "linear_memory": "memory",
  "normalized_law": "memory",
  "relaxed_pinv_solve": "memory",
  "resolve_initial_law": "memory",
  "rllc": "memory",
  "scale_by_linear_memory": "memory",
  "scale_by_rllc": "memory",
  "CM": "propagator",
  "CMk": "propagator",
  "M": "propagator",
  "Mk": "propagator",
  "Propagator": "propagator",
  "direct_sum": "propagator",
  "REGISTRY": "registry",
  "BuiltOptimizer": "registry",
  "optimizer": "registry",
  "parse_propagator": "spec",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
  if name in _EXPORTS:
    value = getattr(importlib.import_module(f"rllc.{_EXPORTS[name]}"), name)
    globals()[name] = value  # the next access is an ordinary attribute
    return value
  try:
    return importlib.import_module(f"rllc.{name}")
  except ModuleNotFoundError as err:
    if err.name != f"rllc.{name}":
      raise
    raise AttributeError(f"module 'rllc' has no attribute {name!r}") from None


def __dir__() -> list[str]:
  return sorted({*globals(), *_EXPORTS})
