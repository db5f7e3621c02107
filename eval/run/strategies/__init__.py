"""Layout strategies of the engine: how a group's members share programs and devices.

BY_NAME maps each layout's name (as records and `strategy=` give it) to its
class; eval.run.layout's rule picks one per backend and task kind.
"""

from eval.run.strategies import base, batched, host

BY_NAME: dict[str, type[base.Strategy]] = {
  cls.name: cls for cls in (batched.Vmapped, batched.Mapped, host.Host)
}
STRATEGIES = tuple(BY_NAME)  # ("vmap", "map", "host")
