"""Speed of the optimizer updates, as ratios to a reference measured in the same process.

Each optimizer is compared, on the same ~1M-parameter float32 pytree (an
MLP's shapes), with the reference it extends: RLLC with optax.adam, AM-SGD
with optax.sgd(momentum=0.9), AM-AdamW with optax.adamw. Two measurements:

- `update`: one jitted `tx.update(grads, state, params)` call. Also its
  effective bandwidth (the bytes it must move / its time) as a fraction of a
  plain jitted copy's, measured the same way. Bytes per step, in
  parameter-sized passes: Adam reads g, mu, nu and writes mu, nu and the
  update (6); RLLC with k units reads M and g for M^T g, then again to write
  the new M and the update ((k+1) + (2k+2)); momentum reads g, m and writes
  m, u (4); AM-SGD first reads g and d for its three sums (2 + 4); AdamW
  also reads the params (7); AM-AdamW first reads g, d, v, x for its sums
  (4 + 7).
- `train step`: the step as the benchmark engine runs it: inside one
  `lax.scan` over 10 steps, the update and `optax.apply_updates` with the
  carried state donated, each step on its own precomputed gradient.

Timings are interleaved over repeats and the median is taken, so the noise of
a shared machine falls on all optimizers alike.

  python -m eval.experiments.bench_update [--repeats 15] [--out reports/bench_update.txt]
"""

import argparse
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import optax

import rllc
from eval.store import store

SHAPES = {
  "w1": (784, 1024),
  "b1": (1024,),
  "w2": (1024, 200),
  "b2": (200,),
  "w3": (200, 10),
  "b3": (10,),
}
SPECS = {1: "M(0.9)", 2: "M(0.9)+M(0)", 3: "M(0.9)+M2(0.6)", 4: "M(0.9)+M(0)+M2(0.6)"}
CALLS = 10  # update calls, or scanned steps, per timed round


def _update_timer(tx, params, grads):
  """Seconds per jitted update call, chaining the state."""
  update = jax.jit(tx.update)
  state = tx.init(params)
  jax.block_until_ready(update(grads, state, params))

  def run():
    nonlocal state
    start = time.perf_counter()
    for _ in range(CALLS):
      out, state = update(grads, state, params)
    jax.block_until_ready((out, state))
    return (time.perf_counter() - start) / CALLS

  return run


def _copy_timer(params):
  """Seconds per jitted copy (x + 1 into a new buffer) of the whole pytree."""
  copy = jax.jit(lambda x: jax.tree.map(lambda v: v + 1.0, x))

  def run():
    start = time.perf_counter()
    for _ in range(CALLS):
      out = copy(params)
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / CALLS

  return run


def _train_step_timer(tx, params, grad_steps):
  """Seconds per training step inside a scanned, donated loop.

  The gradients of the steps are precomputed (one buffer per step, as a
  backward pass would leave them), so XLA cannot fold them into the update.
  """

  def steps(carry, grad_steps):
    def body(carry, grads):
      params, state = carry
      updates, state = tx.update(grads, state, params)
      return (optax.apply_updates(params, updates), state), None

    return jax.lax.scan(body, carry, grad_steps)[0]

  run_steps = jax.jit(steps, donate_argnums=0)
  carry = run_steps((jax.tree.map(jnp.copy, params), tx.init(params)), grad_steps)

  def run():
    nonlocal carry
    start = time.perf_counter()
    carry = jax.block_until_ready(run_steps(carry, grad_steps))
    return (time.perf_counter() - start) / CALLS

  return run


def _medians(timers: dict, repeats: int) -> dict:
  samples = {name: [] for name in timers}
  for _ in range(repeats):
    for name, timer in timers.items():
      samples[name].append(timer())
  return {name: statistics.median(s) for name, s in samples.items()}


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--repeats", type=int, default=15, help="timed rounds (median taken)")
  parser.add_argument("--out", help="also write the table to this file")
  args = parser.parse_args(argv)

  keys = jax.random.split(jax.random.key(0), 2 * len(SHAPES))
  params = {
    n: jax.random.normal(k, s)
    for (n, s), k in zip(SHAPES.items(), keys[: len(SHAPES)], strict=True)
  }
  grads = {
    n: 1e-2 * jax.random.normal(k, s)
    for (n, s), k in zip(SHAPES.items(), keys[len(SHAPES) :], strict=True)
  }
  n = sum(p.size for p in jax.tree.leaves(params))
  grad_steps = jax.tree.map(
    lambda g: g * jnp.linspace(1.0, 2.0, CALLS).reshape(-1, *[1] * g.ndim), grads
  )
  # name -> (transformation, parameter-sized passes it must make, reference row)
  rows = {
    "adam": (optax.adam(1e-3), 6, "adam"),
    **{
      f"rllc k={k} {spec}": (rllc.rllc(spec, 0.1, 0.01), 3 * k + 3, "adam")
      for k, spec in SPECS.items()
    },
    "momentum": (optax.sgd(0.1, momentum=0.9), 4, "momentum"),
    "am-sgd": (rllc.am_sgd(0.1), 6, "momentum"),
    "adamw": (optax.adamw(1e-3), 7, "adamw"),
    "am-adamw": (rllc.am_adamw(1e-3, weight_decay=1e-4), 11, "adamw"),
  }
  update = _medians(
    {"copy": _copy_timer(params)}
    | {name: _update_timer(tx, params, grads) for name, (tx, _, _) in rows.items()},
    args.repeats,
  )
  step = _medians(
    {name: _train_step_timer(tx, params, grad_steps) for name, (tx, _, _) in rows.items()},
    args.repeats,
  )
  copy_bandwidth = 2 * 4 * n / update["copy"]

  lines = [
    "$ python -m eval.experiments.bench_update " + " ".join(sys.argv[1:] if argv is None else argv),
    f"jax {jax.__version__}, backend {jax.default_backend()}, {n:,} float32 parameters,"
    f" median of {args.repeats} rounds",
    f"{'optimizer':30s} {'vs':>9s} {'update/vs':>10s} {'passes':>7s} {'bandwidth/copy':>15s}"
    f" {'train step/vs':>14s}",
  ]
  for name, (_, passes, ref) in rows.items():
    bandwidth = passes * 4 * n / update[name]
    lines.append(
      f"{name:30s} {ref:>9s} {update[name] / update[ref]:10.2f} {passes:7d}"
      f" {bandwidth / copy_bandwidth:15.2f} {step[name] / step[ref]:14.2f}"
    )
  text = "\n".join(lines) + "\n"
  sys.stdout.write(text)
  if args.out:
    store.atomic_write(args.out, text)  # whole or not at all


if __name__ == "__main__":
  main()
