"""Memory optimizers: propagators, RLLC and linear memory, as optax transformations.

The learned_optimization forms live in `rllc.lopt` (imported on demand, since
learned_optimization is heavy); `rllc.optimizer(...).lopt()` reaches them.
"""

from rllc.adaptive_memory import AMAdamWState, AMState, am_adamw, am_mgd, am_sgd
from rllc.memory import (
  INITIAL_LAWS,
  LinearMemoryState,
  RLLCState,
  linear_memory,
  normalized_law,
  relaxed_pinv_solve,
  resolve_initial_law,
  rllc,
)
from rllc.propagator import CM, CMk, M, Mk, Propagator, direct_sum
from rllc.registry import REGISTRY, BuiltOptimizer, optimizer
from rllc.spec import parse_propagator

__all__ = [
  "AMAdamWState",
  "AMState",
  "am_adamw",
  "am_mgd",
  "am_sgd",
  "CM",
  "CMk",
  "M",
  "Mk",
  "REGISTRY",
  "BuiltOptimizer",
  "INITIAL_LAWS",
  "LinearMemoryState",
  "Propagator",
  "RLLCState",
  "direct_sum",
  "linear_memory",
  "normalized_law",
  "optimizer",
  "parse_propagator",
  "relaxed_pinv_solve",
  "resolve_initial_law",
  "rllc",
]
