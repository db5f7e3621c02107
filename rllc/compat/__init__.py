"""The stack-compat layer: shims that let third-party code written for an older JAX run today.

It sits below both `rllc` and `tasks`: it imports nothing of the project, and
it is the only part of `rllc` that `tasks` may import (tests/test_layers.py
holds both). `rllc.compat.lo_compat.load(...)` is the one way the project
imports learned_optimization.

Importing this package runs `rllc/__init__.py`, which imports nothing on its
own (its names load on first use), so `tasks` does not pull in the optimizers.
"""
