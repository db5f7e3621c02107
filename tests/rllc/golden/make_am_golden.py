"""Writes am_golden.<machine key>.npz: a few steps of the adaptive-memory optimizers.

The golden pins the bits of AM-SGD, AM-MGD, AM-AdamW, their scale_by chains
and EMA momentum, so that a rewrite of rllc/adaptive_memory.py can be checked
bit for bit (tests/rllc/test_adaptive_memory.py). Bits hold for one machine
class and jaxlib (eval.store.machine): this script writes the golden of the
machine it runs on, recording its class. Run from the repository root, at a
commit whose bits you mean to pin (the test names those of the committed
files):

  .venv/bin/python tests/rllc/golden/make_am_golden.py

Every case runs STEPS jitted updates on a two-leaf float32 pytree from fixed
params, fed a fixed sequence of gradients and losses (stored in the file too,
so the test needs no RNG), and applies each update to the params.
"""

import importlib.util
import pathlib

import jax
import numpy as np
import optax

import rllc

STEPS = 4
SHAPES = {"b": (3,), "w": (2, 3)}
HERE = pathlib.Path(__file__).parent
_SPEC = importlib.util.spec_from_file_location("make_memory_golden", HERE / "make_memory_golden.py")
_memory_golden = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_memory_golden)
machine_key = _memory_golden.machine_key  # one definition of what a golden's bits hold for


def cases() -> dict:
  """name -> (transformation, whether its update takes the loss)."""
  return {
    "am_sgd": (rllc.am_sgd(0.1), False),
    "am_sgd per_leaf reset": (rllc.am_sgd(0.1, reset_threshold=0.5, per_leaf=True), False),
    "scale_by_am_sgd chain": (
      optax.chain(rllc.scale_by_am_sgd(beta_min=0.1), optax.scale_by_learning_rate(0.1)),
      False,
    ),
    "am_mgd": (rllc.am_mgd(0.05), True),
    "am_adamw": (rllc.am_adamw(0.01, weight_decay=0.01), False),
    "am_adamw per_leaf": (rllc.am_adamw(0.01, per_leaf=True), False),
    "scale_by_am_adamw chain": (
      optax.chain(
        rllc.scale_by_am_adamw(weight_decay=0.01),
        optax.add_decayed_weights(0.01),
        optax.scale_by_learning_rate(0.01),
      ),
      False,
    ),
    "ema_momentum": (rllc.ema_momentum(0.1, 0.9), False),
  }


def path_for(key: str) -> pathlib.Path:
  return HERE / f"am_golden.{key}.npz"


def inputs() -> dict[str, np.ndarray]:
  """The params, STEPS gradients (stacked) and STEPS losses every case is fed."""
  rng = np.random.default_rng(29)
  out = {f"params/{n}": rng.standard_normal(s).astype(np.float32) for n, s in SHAPES.items()}
  for name, shape in SHAPES.items():
    out[f"grads/{name}"] = rng.standard_normal((STEPS, *shape)).astype(np.float32)
  out["losses"] = np.linspace(1.0, 0.9, STEPS, dtype=np.float32)
  return out


def run(name: str, tx, takes_loss: bool, data: dict) -> dict[str, np.ndarray]:
  """The updates, states and params of STEPS jitted steps, stacked over steps, by key."""
  update = jax.jit(tx.update)
  params = {n: data[f"params/{n}"] for n in SHAPES}
  state = tx.init(params)
  steps = []
  for t in range(STEPS):
    grads = {n: data[f"grads/{n}"][t] for n in SHAPES}
    extra = {"value": data["losses"][t]} if takes_loss else {}
    updates, state = update(grads, state, params, **extra)
    params = optax.apply_updates(params, updates)
    steps.append((updates, state, params))
  flat = [jax.tree_util.tree_leaves_with_path(step) for step in steps]
  return {
    f"{name}/{jax.tree_util.keystr(path)}": np.stack([np.asarray(s[i][1]) for s in flat])
    for i, (path, _) in enumerate(flat[0])
  }


def main() -> None:
  data = inputs()
  arrays = dict(data)
  for name, (tx, takes_loss) in cases().items():
    arrays.update(run(name, tx, takes_loss, data))
  _memory_golden.save(path_for(machine_key()), arrays)


if __name__ == "__main__":
  main()
