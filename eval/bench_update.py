"""Speed of one jitted optimizer update, as a ratio to optax.adam.

Times, in one process and on the same ~1M-parameter pytree, the jitted
`tx.update` of RLLC with k = 1, 2, 3, 4 memory units and of optax.adam, with
the optimizer state donated as a training loop would. Each optimizer's time
is reported as a ratio to Adam's, and its effective bandwidth (the bytes it
must move per step, divided by its time) as a fraction of the bandwidth of a
plain jitted copy measured in the same process.

Bytes each must move per step, in parameter-sized passes: Adam reads g, mu,
nu and writes mu, nu and the update (6); RLLC reads M and g for M^T g, then
again to write the new M and the update ((k+1) + (2k+2)).

  python -m eval.bench_update [--repeats 30] [--inner 20]
"""

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import optax

import rllc

# An MLP-shaped pytree of about 1.01M float32 parameters.
SHAPES = {
  "w1": (784, 1024),
  "b1": (1024,),
  "w2": (1024, 200),
  "b2": (200,),
  "w3": (200, 10),
  "b3": (10,),
}
SPECS = {1: "M(0.9)", 2: "M(0.9)+M(0)", 3: "M(0.9)+M2(0.6)", 4: "M(0.9)+M(0)+M2(0.6)"}


def _timer(fn, state, grads, inner):
  """Returns a function that times `inner` chained calls, in seconds per call."""

  def run():
    nonlocal state
    start = time.perf_counter()
    for _ in range(inner):
      out, state = fn(grads, state)
    jax.block_until_ready((out, state))
    return (time.perf_counter() - start) / inner

  return run


def _update_timer(tx, params, grads, inner):
  update = jax.jit(tx.update, donate_argnums=1)
  state = tx.init(params)
  update(grads, state)  # compile on a throwaway state; the first was donated
  return _timer(update, tx.init(params), grads, inner)


def _copy_timer(params, inner):
  copy = jax.jit(lambda g, x: (None, jax.tree.map(lambda v: v + 1.0, x)), donate_argnums=1)
  return _timer(copy, jax.tree.map(jnp.copy, params), None, inner)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--repeats", type=int, default=30, help="timed rounds (median taken)")
  parser.add_argument("--inner", type=int, default=20, help="calls per timed round")
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

  timers = {
    "copy": _copy_timer(params, args.inner),
    "adam": _update_timer(optax.adam(1e-3), params, grads, args.inner),
  }
  passes = {"copy": 2, "adam": 6}
  for k, spec in SPECS.items():
    name = f"rllc k={k} {spec}"
    timers[name] = _update_timer(rllc.rllc(spec, 0.1, 0.01), params, grads, args.inner)
    passes[name] = 3 * k + 3

  samples = {name: [] for name in timers}
  for _ in range(args.repeats):  # interleaved, so machine noise hits all alike
    for name, timer in timers.items():
      samples[name].append(timer())
  median = {name: statistics.median(s) for name, s in samples.items()}
  copy_bw = passes["copy"] * 4 * n / median["copy"]

  print(
    f"jax {jax.__version__}, backend {jax.default_backend()}, {n:,} float32 parameters,"
    f" median of {args.repeats} x {args.inner} calls"
  )
  print(f"{'optimizer':34s} {'time / adam':>12s} {'passes':>7s} {'bandwidth / copy':>17s}")
  for name in timers:
    bw = passes[name] * 4 * n / median[name]
    print(
      f"{name:34s} {median[name] / median['adam']:12.2f} {passes[name]:7d} {bw / copy_bw:17.2f}"
    )


if __name__ == "__main__":
  main()
