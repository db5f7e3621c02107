"""Speed of the optimizer updates, as ratios to a reference measured in the same process.

Each optimizer is compared, on the same ~1M-parameter float32 pytree (an
MLP's shapes), with the reference it extends: RLLC with optax.adam, AM-SGD
with optax.sgd(momentum=0.9), AM-AdamW with optax.adamw. Columns:

- `update/vs`: one jitted `tx.update(grads, state, params)` call; `cpu`: the
  same in the process's CPU time, which a loaded machine disturbs less than
  wall time (descheduling does not count in it).
- `passes` and `bound`: the parameter-sized buffers the update must read and
  write, and their ratio to the reference's: the memory-traffic bound of a
  perfect compiler. Adam reads g, mu, nu and writes mu, nu and the update
  (6); RLLC with k units reads M and g for M^T g, then again to write the new
  M and the update ((k+1) + (2k+2)); momentum reads g, m and writes m, u (4);
  AM-SGD first reads g and d for its sums (2 + 4); AdamW also reads the
  params (7); AM-AdamW first reads g, d, v, x for its sums (4 + 7).
- `XLA passes` and `XLA bound`: the same count on the program XLA compiled
  (`hlo_passes`): every array each instruction of it reads or writes. XLA:CPU
  writes one output per loop, so momentum's m and update are two loops (5),
  and an intermediate that two loops need goes through memory.
- `bandwidth/copy`: `passes` x 4 bytes over the update's time, as a fraction
  of a plain jitted copy's bandwidth, measured the same way.
- `train step/vs`: the step as the benchmark engine runs it: inside one
  `lax.scan` over 10 steps, the update and `optax.apply_updates` with the
  carried state donated, each step on its own precomputed gradient.
- `MLP step/vs`: the same scanned step with the gradient of a real backward
  pass: the MLP of these shapes (784-1024-200-10, ReLU, softmax
  cross-entropy) on a random batch of 128 per step. What a training run pays.

Then the AM kernels alone (rllc.adaptive_memory's own per-leaf functions), on
the same pytree, in one call and inside a scan of 10, as ratios to AdamW's
update: AM-AdamW's sums for beta and its step with beta given, AM-SGD's dot
products, the sums of two materialized buffers, and a copy.

Timings are interleaved over repeats and the median is taken, so the noise of
a shared machine falls on all optimizers alike. `--at COMMIT` adds AM-SGD and
AM-AdamW as rllc/adaptive_memory.py was at a git commit (rows "am-sgd@COMMIT"):
a change's before and after, timed in the same process and rounds.

  python -m eval.experiments.bench_update [--repeats 15] [--optimizers am-sgd,am-adamw]
    [--update-only] [--at COMMIT] [--out reports/bench_update.txt]
"""

import argparse
import functools
import math
import os
import re
import statistics
import subprocess
import sys
import time
import types

import jax
import jax.numpy as jnp
import optax

import rllc
from eval.store import machine, store
from rllc import adaptive_memory

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


def _update_timer(tx, params, grads, clock=time.perf_counter):
  """Seconds per jitted update call, chaining the state: wall time, or `clock`'s (CPU time)."""
  update = jax.jit(tx.update)
  state = tx.init(params)
  jax.block_until_ready(update(grads, state, params))

  def run():
    nonlocal state
    start = clock()
    for _ in range(CALLS):
      out, state = update(grads, state, params)
    jax.block_until_ready((out, state))
    return (clock() - start) / CALLS

  return run


def _copy_timer(params):
  """Seconds per jitted copy (x + 1 into a new buffer) of the whole pytree."""
  copy = jax.jit(lambda x: jax.tree.map(lambda v: v + 1.0, x))
  jax.block_until_ready(copy(params))  # compiled before the first timed round

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


def _am_adamw_kernel(kernel, **extra):
  """One of rllc.am_adamw's per-leaf passes, mapped over the tree, at step 10 (lr 1e-3, mu 1e-4)."""
  pre = adaptive_memory._Preconditioner(0.999, 1e-8, 1 - 0.9**10, 1 - 0.999**10)
  kw = dict(pre=pre, lam=0.1, mu=1e-4, learning_rate=1e-3, acc=jnp.float32, **extra)
  return lambda *trees: jax.tree.map(functools.partial(kernel, **kw), *trees)


def _am_sgd_sums(g, d):
  """AM-SGD's sums g^T d and |g|^2 per leaf, as rllc.am_sgd computes them."""
  sums = functools.partial(adaptive_memory._am_sums, first=False, acc=jnp.float32)
  return jax.tree.map(lambda g, d: sums(g, d, jnp.float32(1.0))[:2], g, d)


def hlo_passes(fn, *args) -> float:
  """Parameter-sized passes over memory of `jax.jit(fn)(*args)` as XLA compiled it.

  Every instruction of the compiled entry computation that runs (a fusion, a
  copy, a library call) reads its operands and writes its result through
  memory: their elements, summed and divided by the elements of `args[0]`.
  Parameters, constants, tuples, bitcasts and barriers move nothing. Small
  arrays (scalars, beta) add a negligible fraction.
  """
  text = jax.jit(fn).lower(*args).compile().as_text()
  entry = text[text.index("\nENTRY") :].splitlines()[1:]
  sizes, moved = {}, 0
  for line in entry:
    match = _INSTRUCTION.match(line)
    if not match:
      continue
    name, shape, opcode, operands = match.groups()
    sizes[name] = sum(
      math.prod(map(int, filter(None, dims.split(",")))) for dims in _DIMS.findall(shape)
    )
    if opcode not in _MOVES_NOTHING:
      moved += sizes[name] + sum(sizes.get(o, 0) for o in _OPERAND.findall(operands))
  return moved / sum(leaf.size for leaf in jax.tree.leaves(args[0]))


_INSTRUCTION = re.compile(r"\s*(?:ROOT )?%(\S+) = (\(.*?\)|\S+) ([\w-]+)\((.*?)\)(?:, |$)")
_DIMS = re.compile(r"[a-z]\w*\[([\d,]*)\]")
_OPERAND = re.compile(r"%([^\s,)]+)")
_MOVES_NOTHING = {"parameter", "constant", "tuple", "get-tuple-element", "bitcast", "opt-barrier"}


def _medians(timers: dict, repeats: int) -> dict:
  samples = {name: [] for name in timers}
  for _ in range(repeats):
    for name, timer in timers.items():
      samples[name].append(timer())
  return {name: statistics.median(s) for name, s in samples.items()}


def _trees() -> tuple:
  """params and grads with SHAPES, a gradient per scanned step, and a batch per MLP step."""
  keys = jax.random.split(jax.random.key(0), 2 * len(SHAPES))
  params, grads = (
    {n: scale * jax.random.normal(k, s) for (n, s), k in zip(SHAPES.items(), half, strict=True)}
    for scale, half in ((1.0, keys[: len(SHAPES)]), (1e-2, keys[len(SHAPES) :]))
  )
  grad_steps = jax.tree.map(
    lambda g: g * jnp.linspace(1.0, 2.0, CALLS).reshape(-1, *[1] * g.ndim), grads
  )
  batch_keys = jax.random.split(jax.random.key(1), 2)
  batches = (
    jax.random.normal(batch_keys[0], (CALLS, 128, SHAPES["w1"][0])),
    jax.random.randint(batch_keys[1], (CALLS, 128), 0, SHAPES["w3"][1]),
  )
  return params, grads, grad_steps, batches


def _rows() -> dict:
  """name -> (transformation, parameter-sized passes it must make, reference row)."""
  return {
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


def _rows_at(commit: str) -> dict:
  """AM-SGD's and AM-AdamW's rows with rllc/adaptive_memory.py as it was at a git commit.

  The file is read with `git show` and run as a module of its own, so that the
  code before a change is timed in the same process and rounds as after it.
  """
  shown = subprocess.run(
    ["git", "show", f"{commit}:rllc/adaptive_memory.py"], capture_output=True, text=True
  )
  if shown.returncode:
    raise ValueError(shown.stderr.strip() or f"git show {commit} failed")
  module = types.ModuleType(f"adaptive_memory_at_{commit}")
  exec(compile(shown.stdout, f"{commit}:rllc/adaptive_memory.py", "exec"), module.__dict__)
  return {
    f"am-sgd@{commit}": (module.am_sgd(0.1), 6, "momentum"),
    f"am-adamw@{commit}": (module.am_adamw(1e-3, weight_decay=1e-4), 11, "adamw"),
  }


def _kernels(params, grads, repeats: int) -> dict:
  """Median seconds of the AM kernels alone, by (kernel, "call" | "scan")."""
  moments = (grads, params, jax.tree.map(jnp.abs, grads), params)  # g, d, v >= 0, x
  sum_two = lambda a, b: jax.tree.map(lambda a, b: (jnp.sum(a), jnp.sum(b)), a, b)  # noqa: E731
  sums = _am_adamw_kernel(adaptive_memory._am_adamw_sums)
  step = _am_adamw_kernel(adaptive_memory._am_adamw_step, beta=0.5)
  return _medians(
    _kernel_timers(KERNELS[0], sums, moments)
    | _kernel_timers(KERNELS[1], step, moments)
    | _kernel_timers(KERNELS[2], _am_sgd_sums, moments[:2])
    | _kernel_timers(KERNELS[3], sum_two, moments[:2])
    | _kernel_timers(KERNELS[4], lambda a: jax.tree.map(lambda v: v + 1.0, a), (params,)),
    repeats,
  )


KERNELS = (
  "AM-AdamW sums for beta",
  "AM-AdamW step, beta given",
  "AM-SGD sums (dot products)",
  "two sums",
  "copy",
)


def _table(rows: dict, n: int, update: dict, xla: dict, step: dict, mlp_step: dict) -> list[str]:
  """The optimizer table: ratios to each row's reference, bounds from the pass counts."""
  copy_bandwidth = 2 * 4 * n / update["copy"]
  lines = [
    f"{'optimizer':30s} {'vs':>9s} {'update/vs':>10s} {'cpu':>5s} {'passes':>7s} {'bound':>6s}"
    f" {'XLA passes':>11s} {'XLA bound':>10s} {'bandwidth/copy':>15s}"
    f" {'train step/vs':>14s} {'MLP step/vs':>12s}"
  ]
  for name, (_, passes, ref) in rows.items():
    bandwidth = passes * 4 * n / update[name] / copy_bandwidth
    scanned = [f"{t[name] / t[ref]:.2f}" if t else "-" for t in (step, mlp_step)]
    lines.append(
      f"{name:30s} {ref:>9s} {update[name] / update[ref]:10.2f}"
      f" {update[name, 'cpu'] / update[ref, 'cpu']:5.2f} {passes:7d}"
      f" {passes / rows[ref][1]:6.2f} {xla[name]:11.1f} {xla[name] / xla[ref]:10.2f}"
      f" {bandwidth:15.2f} {scanned[0]:>14s} {scanned[1]:>12s}"
    )
  return lines


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--repeats", type=int, default=15, help="timed rounds (median taken)")
  parser.add_argument("--optimizers", help="comma-separated rows to time (their references too)")
  parser.add_argument("--update-only", action="store_true", help="the update column only")
  parser.add_argument("--at", help="also time AM-SGD and AM-AdamW as they were at this git commit")
  parser.add_argument("--out", help="also write the table to this file")
  args = parser.parse_args(argv)
  rows = _rows()
  if args.optimizers:
    unknown = sorted(set(args.optimizers.split(",")) - set(rows))
    if unknown:
      parser.error(f"--optimizers: unknown {', '.join(unknown)}; valid: {', '.join(rows)}")
    wanted = {r for name in args.optimizers.split(",") for r in (name, rows[name][2])}
    rows = {name: row for name, row in rows.items() if name in wanted}
  if args.repeats < 1:
    parser.error(f"--repeats must be at least 1, not {args.repeats}")
  if args.at:
    try:
      at = _rows_at(args.at)
    except ValueError as error:
      parser.error(f"--at {args.at}: not a commit with rllc/adaptive_memory.py ({error})")
    rows |= {name: row for name, row in at.items() if row[2] in rows}

  params, grads, grad_steps, batches = _trees()
  n = sum(p.size for p in jax.tree.leaves(params))
  xla = {
    name: hlo_passes(tx.update, grads, tx.init(params), params) for name, (tx, *_) in rows.items()
  }
  timers = {"copy": _copy_timer(params)}
  for name, (tx, _, _) in rows.items():
    timers[name] = _update_timer(tx, params, grads)
    timers[name, "cpu"] = _update_timer(tx, params, grads, time.process_time)
  update = _medians(timers, args.repeats)
  step = mlp_step = kernels = None
  if not args.update_only:
    step, mlp_step = (
      _medians(
        {name: _step_timer(tx, params, xs, grad) for name, (tx, _, _) in rows.items()},
        args.repeats,
      )
      for xs, grad in ((grad_steps, _precomputed), (batches, _backward))
    )
    kernels = _kernels(params, grads, args.repeats)

  lines = [
    "$ python -m eval.experiments.bench_update " + " ".join(sys.argv[1:] if argv is None else argv),
    f"jax {jax.__version__}, backend {jax.default_backend()}, CPU {machine.cpu()['cpu']}"
    f" ({os.cpu_count()} cores), {n:,} float32 parameters, median of {args.repeats} rounds",
    *_table(rows, n, update, xla, step, mlp_step),
  ]
  if kernels and "adamw" in update:
    lines += ["", "Kernels alone, over AdamW's update (1.00):"]
    lines.append(f"{'kernel':30s} {'one call':>9s} {'in a scan':>10s}")
    for kernel in KERNELS:
      call, scan = (kernels[kernel, how] / update["adamw"] for how in ("call", "scan"))
      lines.append(f"{kernel:30s} {call:9.2f} {scan:10.2f}")
  text = "\n".join(lines) + "\n"
  sys.stdout.write(text)
  if args.out:
    store.atomic_write(args.out, text)  # whole or not at all


if __name__ == "__main__":
  main()
