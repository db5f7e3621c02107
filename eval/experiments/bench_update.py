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
- `MLP step`: the same scanned step with the gradient of a real backward
  pass: the MLP of these shapes (784-1024-200-10, ReLU, softmax
  cross-entropy) on a random batch of 128 per step. What a training run pays.

Then what bounds them: kernels timed alone on the same pytree, in one call
and inside a scan of 10, as ratios to AdamW's update: AM-AdamW's two sums for
beta (the summand loop, with the square root and divisions of P, and the
column sums) and its step with beta given (the second pass), AM-SGD's dot
products, the sums of two materialized buffers, and a copy.

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


def _mlp_loss(params, inputs, labels):
  """Softmax cross-entropy of the MLP whose weights have SHAPES."""
  h = jax.nn.relu(inputs @ params["w1"] + params["b1"])
  h = jax.nn.relu(h @ params["w2"] + params["b2"])
  logits = h @ params["w3"] + params["b3"]
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def _precomputed(params, grads):
  """The step's gradient, precomputed (one buffer per step): XLA cannot fold it into the update."""
  del params
  return grads


def _backward(params, batch):
  """The step's gradient from a backward pass of the MLP on its batch."""
  return jax.grad(_mlp_loss)(params, *batch)


def _step_timer(tx, params, xs, gradient):
  """Seconds per training step (gradient, update, apply) inside a scanned, donated loop."""

  def steps(carry, xs):
    def body(carry, x):
      params, state = carry
      updates, state = tx.update(gradient(params, x), state, params)
      return (optax.apply_updates(params, updates), state), None

    return jax.lax.scan(body, carry, xs)[0]

  run_steps = jax.jit(steps, donate_argnums=0)
  carry = run_steps(jax.tree.map(jnp.copy, (params, tx.init(params))), xs)

  def run():
    nonlocal carry
    start = time.perf_counter()
    carry = jax.block_until_ready(run_steps(carry, xs))
    return (time.perf_counter() - start) / CALLS

  return run


def _kernel_timers(name, kernel, operands) -> dict:
  """Seconds of `kernel(*operands)` in one jitted call and per trip of a scan of CALLS trips."""
  call = jax.jit(kernel)

  def looped(operands):
    def body(_, i):
      # Operands that depend on the trip, the output carried: nothing to hoist.
      return kernel(*jax.tree.map(lambda x: x + i, operands)), None

    out = jax.eval_shape(kernel, *operands)
    zeros = jax.tree.map(lambda o: jnp.zeros(o.shape, o.dtype), out)
    return jax.lax.scan(body, zeros, jnp.arange(CALLS, dtype=jnp.float32))[0]

  loop = jax.jit(looped)
  jax.block_until_ready((call(*operands), loop(operands)))

  def run_call():
    start = time.perf_counter()
    for _ in range(CALLS):
      out = call(*operands)
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / CALLS

  def run_loop():
    start = time.perf_counter()
    jax.block_until_ready(loop(operands))
    return (time.perf_counter() - start) / CALLS

  return {(name, "call"): run_call, (name, "scan"): run_loop}


def _am_adamw_sums(g, d, v, x, b2=0.999, eps=1e-8, lam=0.1, mu=1e-4, eta=1e-3):
  """AM-AdamW's two sums for beta, per leaf, as rllc.am_adamw computes them (at step 10)."""

  def leaf(g, d, v, x):
    correction1, correction2 = 1 - 0.9**10, 1 - b2**10
    v = b2 * v + (1 - b2) * g * g
    p = correction1 * (eps + jnp.sqrt(v / correction2))
    w = 1 / ((1 + lam * p) * p)
    e = d - g
    num = (1 + mu * eta) * g * (d / p + mu * x) - w * e * (g + lam * p * d) - mu * x * e
    columns = x.shape[-1]
    summands = jnp.stack([num.reshape(-1, columns), (w * e * e).reshape(-1, columns)])
    return jnp.sum(jnp.sum(summands, axis=1), axis=1)

  return jax.tree.map(leaf, g, d, v, x)


def _am_adamw_step(g, d, v, x, beta=0.5, b2=0.999, eps=1e-8, lam=0.1, mu=1e-4, eta=1e-3):
  """AM-AdamW's step with beta given (its second pass): update, new d and v, per leaf."""

  def leaf(g, d, v, x):
    v = b2 * v + (1 - b2) * g * g
    p = (1 - 0.9**10) * (eps + jnp.sqrt(v / (1 - b2**10)))
    new_d = ((beta + lam * p) * d + (1 - beta) * g) / (1 + lam * p)
    return -eta * (new_d / p + mu * x) / (1 + mu * eta), new_d, v

  return jax.tree.map(leaf, g, d, v, x)


def _am_sgd_sums(g, d):
  """AM-SGD's sums g^T d and |g|^2 per leaf, dot products as rllc.am_sgd computes them."""
  return jax.tree.map(
    lambda g, d: (jnp.dot(g.ravel(), d.ravel()), jnp.dot(g.ravel(), g.ravel())), g, d
  )


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
    {name: _step_timer(tx, params, grad_steps, _precomputed) for name, (tx, _, _) in rows.items()},
    args.repeats,
  )
  batch_keys = jax.random.split(jax.random.key(1), 2)
  batches = (
    jax.random.normal(batch_keys[0], (CALLS, 128, SHAPES["w1"][0])),
    jax.random.randint(batch_keys[1], (CALLS, 128), 0, SHAPES["w3"][1]),
  )
  mlp_step = _medians(
    {name: _step_timer(tx, params, batches, _backward) for name, (tx, _, _) in rows.items()},
    args.repeats,
  )
  moments = (grads, params, jax.tree.map(jnp.abs, grads), params)  # g, d, v >= 0, x
  sum_two = lambda a, b: jax.tree.map(lambda a, b: (jnp.sum(a), jnp.sum(b)), a, b)  # noqa: E731
  kernels = _medians(
    _kernel_timers("AM-AdamW sums for beta", _am_adamw_sums, moments)
    | _kernel_timers("AM-AdamW step, beta given", _am_adamw_step, moments)
    | _kernel_timers("AM-SGD sums (dot products)", _am_sgd_sums, moments[:2])
    | _kernel_timers("two sums", sum_two, moments[:2])
    | _kernel_timers("copy", lambda a: jax.tree.map(lambda v: v + 1.0, a), (params,)),
    args.repeats,
  )
  copy_bandwidth = 2 * 4 * n / update["copy"]

  lines = [
    "$ python -m eval.experiments.bench_update " + " ".join(sys.argv[1:] if argv is None else argv),
    f"jax {jax.__version__}, backend {jax.default_backend()}, {n:,} float32 parameters,"
    f" median of {args.repeats} rounds",
    f"{'optimizer':30s} {'vs':>9s} {'update/vs':>10s} {'passes':>7s} {'bandwidth/copy':>15s}"
    f" {'train step/vs':>14s} {'MLP step/vs':>12s}",
  ]
  for name, (_, passes, ref) in rows.items():
    bandwidth = passes * 4 * n / update[name]
    lines.append(
      f"{name:30s} {ref:>9s} {update[name] / update[ref]:10.2f} {passes:7d}"
      f" {bandwidth / copy_bandwidth:15.2f} {step[name] / step[ref]:14.2f}"
      f" {mlp_step[name] / mlp_step[ref]:12.2f}"
    )
  lines += [
    "",
    "Kernels alone, over AdamW's update (1.00):",
    f"{'kernel':30s} {'one call':>9s} {'in a scan':>10s}",
  ]
  for kernel in (
    "AM-AdamW sums for beta",
    "AM-AdamW step, beta given",
    "AM-SGD sums (dot products)",
    "two sums",
    "copy",
  ):
    lines.append(
      f"{kernel:30s} {kernels[kernel, 'call'] / update['adamw']:9.2f}"
      f" {kernels[kernel, 'scan'] / update['adamw']:10.2f}"
    )
  text = "\n".join(lines) + "\n"
  sys.stdout.write(text)
  if args.out:
    store.atomic_write(args.out, text)  # whole or not at all


if __name__ == "__main__":
  main()
