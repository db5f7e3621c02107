"""`rllc.optimizer`: a catalog entry built, from a short name or a propagator spec.

  rllc.optimizer("adam", learning_rate=1e-3)
  rllc.optimizer("M(0.9)+M(0)", learning_rate=0.1, law_learning_rate=0.01)   # RLLC
  rllc.optimizer("M(0.9)+M(0)@ones", learning_rate=0.01, law_learning_rate=0.01)  # L0 = 1
  rllc.optimizer("lm:M(0.9)+M(0)", law=(0.9, 1.0), learning_rate=0.1)       # fixed law

What each name means (factory, family, hyperparameters and defaults,
buffers, grids, results name) is declared in rllc.catalog; this module builds
it. Each gives a `BuiltOptimizer`: the optax transformation, the
learned_optimization Optimizer (`.lopt()`), and a `name` such as
`RLLC[M(0.9)+M(0)]_lr0.1_law0.01` that is the stable key of its results. The
command line, TOML protocols and reports all use these names.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, Any

from rllc import catalog

if TYPE_CHECKING:
  import optax

# The suite's catalog under its older name: a mapping short name -> entry.
REGISTRY = catalog.DEFAULT


@dataclasses.dataclass(frozen=True)
class BuiltOptimizer:
  """An optimizer of the suite, in both of its forms."""

  entry: catalog.Entry  # what it is
  hparams: dict[str, Any]  # the resolved hyperparameters, to record beside results
  tx: optax.GradientTransformation
  buffers: int  # parameter-sized buffers in its state (declared in its entry; tests count them)

  @functools.cached_property
  def name(self) -> str:
    """The stable results key, e.g. "Adam_lr0.001_b10.9_b20.999_eps1e-08".

    Made on first use, from concrete hyperparameters: a build from traced
    ones (inside a vmapped program) has a transformation but no name.
    """
    return self.entry.result_name(self.hparams)

  def lopt(self):
    """The same optimizer as a learned_optimization `Optimizer`."""
    from rllc import lopt  # imports learned_optimization: only when asked for

    return lopt.OptaxAdapter(self.tx, self.name)


def optimizer(name_or_spec: str, **hparams) -> BuiltOptimizer:
  """Builds an optimizer of the active catalog from its name or a propagator spec.

  Args:
    name_or_spec: a catalog name ("sgd", "momentum", "nesterov", "adam", ...),
      a propagator spec for RLLC ("M(0.9)+M(0)", or "M(0.9)+M(0)@ones" with
      its initial-law convention), or "lm:" and a spec for the same memory
      with a fixed law.
    **hparams: the optimizer's hyperparameters, e.g. learning_rate.

  Returns:
    The BuiltOptimizer.

  Raises:
    ValueError: for an unknown name, a bad spec, or unknown or missing
      hyperparameters, naming the culprit and what would be valid.

  Example:
    A name's defaults are filled in, and the results name shows them:

    >>> import rllc
    >>> adam = rllc.optimizer("adam", learning_rate=1e-3)
    >>> adam.name, adam.buffers
    ('Adam_lr0.001_b10.9_b20.999_eps1e-08', 2)
    >>> rllc.optimizer("M(0.9)+M(0)", learning_rate=0.03, law_learning_rate=0.01).name
    'RLLC[M(0.9)+M(0)]_lr0.03_law0.01'
  """
  entry = catalog.lookup(name_or_spec)
  resolved = entry.resolve(hparams)
  return BuiltOptimizer(entry, resolved, entry.transformation(**resolved), entry.buffers(resolved))
