"""The single entry point for importing learned_optimization 0.0.1.

learned_optimization 0.0.1 was written against JAX ~0.2 and refers to names
that current JAX has removed (``jax.tree_map``, ``jax.ShapedArray``,
``jax.lib.xla_client.Device``, ...). Its modules fail at import time (or on
first use) without them. ``load`` puts back exactly those names, bound to
their modern equivalents, and then imports the requested module, so the rest
of the project never imports learned_optimization directly.

Usage::

  eval_training = lo_compat.load("learned_optimization.eval_training")
"""

import importlib
import types
from collections.abc import Callable
from typing import Any

import jax
import jax.core
import jax.lib

_PACKAGE = "learned_optimization"

# Removed top-level ``jax`` names -> their current equivalents. Lazily
# resolved so that a missing modern name fails loudly in ``load``, not at
# import of this module. ``tree_multimap`` was folded into ``tree_map``
# (now ``jax.tree.map``), which already accepts several trees.
_JAX_ALIASES: dict[str, Callable[[], Any]] = {
  "tree_map": lambda: jax.tree.map,
  "tree_multimap": lambda: jax.tree.map,
  "tree_leaves": lambda: jax.tree.leaves,
  "tree_flatten": lambda: jax.tree.flatten,
  "tree_unflatten": lambda: jax.tree.unflatten,
  "tree_structure": lambda: jax.tree.structure,
  "ShapedArray": lambda: jax.core.ShapedArray,
}

# Names this module put back (name -> object), for introspection and tests.
RESTORED: dict[str, Any] = {}

_installed = False


def _install() -> None:
  """Restores the removed JAX names, once, and only where they are missing."""
  global _installed
  if _installed:
    return
  for name, resolve in _JAX_ALIASES.items():
    if not hasattr(jax, name):
      setattr(jax, name, resolve())
      RESTORED[f"jax.{name}"] = getattr(jax, name)

  # learned_optimization only uses ``jax.lib.xla_client.Device`` in type
  # annotations, which are evaluated at import time. ``jax.lib.xla_client`` no
  # longer exists, so a tiny namespace module carrying just ``Device`` is
  # enough; we do not resurrect the rest of the old XLA client API.
  xla_client = getattr(jax.lib, "xla_client", None)
  if xla_client is None:
    xla_client = types.ModuleType(
      "jax.lib.xla_client",
      "Compatibility stub for learned_optimization (see rllc.compat.lo_compat).",
    )
    jax.lib.xla_client = xla_client
  if not hasattr(xla_client, "Device"):
    xla_client.Device = jax.Device
    RESTORED["jax.lib.xla_client.Device"] = jax.Device
  _installed = True


def load(module: str) -> types.ModuleType:
  """Imports a learned_optimization module after restoring removed JAX names.

  Args:
    module: Dotted module name inside the ``learned_optimization`` package,
      e.g. ``"learned_optimization.optimizers.base"``.

  Returns:
    The imported module.

  Raises:
    ValueError: If ``module`` is not part of ``learned_optimization``; the
      JAX patches are meant for that package only.
  """
  if module != _PACKAGE and not module.startswith(_PACKAGE + "."):
    raise ValueError(f"lo_compat.load only imports {_PACKAGE} modules, got {module!r}.")
  _install()
  return importlib.import_module(module)
