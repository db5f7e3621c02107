"""Writes memory_golden.npz: a few steps of `rllc.rllc` and `rllc.linear_memory`.

The golden pins the bits of RLLC and fixed-law linear memory at constant
learning rates, so that a rewrite of their code (tests/rllc/test_memory_golden.py)
can be checked bit for bit. Bits hold for one machine class and jaxlib
(eval.store.machine): this script writes the golden of the machine it runs on,
memory_golden.<machine key>.npz, recording its class. Run from the repository
root, at a commit whose bits you mean to pin (the test's docstring names those
of the committed files):

  .venv/bin/python tests/rllc/golden/make_memory_golden.py

Every case runs STEPS jitted updates on a two-leaf float32 pytree, fed a fixed
sequence of gradients (stored in the file too, so the test needs no RNG).
"""

import pathlib

import jax
import numpy as np

import rllc

STEPS = 4
SHAPES = {"b": (3,), "w": (2, 3)}
# (spec, learning rate c1, law learning rate c2) of the RLLC cases, each run
# with both initial-law conventions.
RLLC_CASES = (
  ("M(0.9)+M(0)", 0.1, 0.01),
  ("M2(0.6)", 0.03, 0.03),
  ("M(0.9)+M(-0.9)+CM(0.9i)", 0.01, 0.003),
)
# (spec, fixed law, learning rate c1) of the linear-memory cases: Nesterov
# (Lemma 4.1), a Jordan block and complex momentum.
LINEAR_CASES = (
  ("M(0.9)+M(0)", (0.9, 1.0), 0.1),
  ("M2(0.6)", (1.0, -0.5), 0.03),
  ("M(0.9)+M(-0.9)+CM(0.9i)", (1.0, 0.5, 0.25, -0.25), 0.01),
)
# The first golden, made at 8ee4162 on a machine whose class was not recorded.
ORIGINAL = pathlib.Path(__file__).with_name("memory_golden.npz")


def machine_key() -> str:
  """This machine's class and jaxlib version, as a file-name part: what a golden's bits hold for."""
  import jaxlib

  from eval.store import machine

  print_ = machine.fingerprint()
  return f"{print_['arch']}-{print_['class'].rpartition('#')[2]}-jaxlib{jaxlib.__version__}"


def path_for(key: str) -> pathlib.Path:
  return ORIGINAL.with_name(f"memory_golden.{key}.npz")


def gradients() -> list[dict]:
  rng = np.random.default_rng(15)
  return [
    {name: rng.standard_normal(shape).astype(np.float32) for name, shape in SHAPES.items()}
    for _ in range(STEPS)
  ]


def params0() -> dict:
  return {name: np.zeros(shape, np.float32) for name, shape in SHAPES.items()}


def run(tx, grads) -> tuple[list, list]:
  """The updates and states of STEPS jitted updates."""
  update = jax.jit(tx.update)
  state = tx.init(params0())
  updates, states = [], []
  for g in grads:
    u, state = update(g, state)
    updates.append(u)
    states.append(state)
  return updates, states


def rllc_key(spec, initial_law) -> str:
  return f"rllc/{spec}/{initial_law}"


def linear_key(spec) -> str:
  return f"linear/{spec}"


def flatten(prefix: str, updates: list, states: list) -> dict[str, np.ndarray]:
  """The arrays of one case, stacked over steps (and memory units), under "prefix/field[/leaf]"."""
  out = {}
  for name in SHAPES:
    out[f"{prefix}/updates/{name}"] = np.stack([np.asarray(u[name]) for u in updates])
    out[f"{prefix}/memory/{name}"] = np.stack(
      [np.stack([np.asarray(unit[name]) for unit in s.memory]) for s in states]
    )
  out[f"{prefix}/law"] = np.stack([np.asarray(s.law) for s in states])
  out[f"{prefix}/count"] = np.stack([np.asarray(s.count) for s in states])
  if hasattr(states[0], "gram"):
    out[f"{prefix}/gram"] = np.stack([np.asarray(s.gram) for s in states])
  return out


def main() -> None:
  grads = gradients()
  arrays = {f"grads/{name}": np.stack([g[name] for g in grads]) for name in SHAPES}
  for spec, lr, llr in RLLC_CASES:
    for initial_law in rllc.INITIAL_LAWS:
      tx = rllc.rllc(spec, lr, llr, initial_law=initial_law)
      arrays.update(flatten(rllc_key(spec, initial_law), *run(tx, grads)))
  for spec, law, lr in LINEAR_CASES:
    tx = rllc.linear_memory(spec, np.asarray(law, np.float32), lr)
    arrays.update(flatten(linear_key(spec), *run(tx, grads)))
  save(path_for(machine_key()), arrays)


def save(path: pathlib.Path, arrays: dict[str, np.ndarray]) -> None:
  """Writes a golden: its arrays and the machine class that made them (`meta/machine_class`)."""
  from eval.store import machine

  arrays = {**arrays, "meta/machine_class": np.array(machine.fingerprint()["class"])}
  np.savez_compressed(path, **arrays)
  print(f"wrote {path} ({path.stat().st_size} bytes, {len(arrays)} arrays)")


if __name__ == "__main__":
  main()
