"""Training throughput of the vectorized engine, against per-run loops, in one process.

The job measured is the RLLC paper's grid of "M(0.9)+M(0)" on mnist-mlp (an
MLP 784-128-128-128-10 at batch 128): learning_rate {0.001, 0.003, 0.01,
0.03, 0.1, 0.3} x law_learning_rate {0.003, 0.01, 0.03}, seeds 0, 1, 2. The
data is MNIST when it is cached (tasks.registry.get_task), else random data
of MNIST's shapes (54,000 / 6,000 / 10,000 images of 28x28x1); the output
says which. The speed does not depend on the values.

Rows, each in config-steps per second (runs x steps / seconds) and as the
achieved FLOP/s over the machine's GEMM peak (a jitted 2048x2048 float32
matmul, best of 10, in the same process):

- (a) vectorized: the engine's program for the whole grid, `vmap over
  members (lax.scan over steps (step))`, as eval.run.engine.train_grid runs it
  (engine.Programs, one chunk, the member axis sharded over all local
  devices: on a CPU, run with XLA_FLAGS=--xla_force_host_platform_device_count=N
  to split it into N devices, which `rllc bench` does by itself).
- (b) sequential: the learned_optimization way, one run after another, a
  jitted single-step function per setting called from a Python loop (one
  dispatch per step), the same batches, loss and optimizer as the engine.
  Only --sequential-settings settings of the grid are timed (the per-step
  rate does not depend on which).
- (c) engine, one run: the engine's program with a single member.
- (d) bare loop: a hand-written jitted flax + optax loop of one run, a
  lax.scan of the plain step (batch, value and gradient of optax's
  cross-entropy of the flax model, update, apply) and nothing else: no
  divergence tracking, no curves, no quantities.

Conv rows (--conv-tasks, default mnist-conv and cifar10-resnet20, the latter
on random data of CIFAR-10's shape when it is not cached), --conv-members
runs of the paper grid, a few steps a call (--conv-steps): (e) the grid in
the layout train_grid chooses (engine.default_strategy), (f) in each other
layout (for --conv-alternatives only: vmap is slow there), (g) the engine
with one run, which is how the members run one by one, (h) a bare jitted
step called from Python, (h') a bare scanned loop (alternatives only). FLOP
per step there is XLA's cost analysis of the loss's value and gradient.
(a'), (a'') are the mnist-mlp grid in the other layouts, over --steps / 10 steps.

PyTorch: when it imports, the last rows time the same MLP and conv net step in
PyTorch (eval.experiments.torch_peer: eager, as many threads as the CPUs
XLA:CPU uses) in this process, against the engine's one-run rows (c) and
mnist-conv's (g); otherwise a line says it is not importable.

The engine rows time the compiled interval program itself (compiled ahead of
time, run once, then timed), so compilation and evaluation are excluded
exactly. train_grid compiles its programs inside every call, so the `check`
row of (a) times train_grid the way the issue proposes: two calls, N1 =
steps / 10 and N2 = steps steps with one evaluation at the end (eval_every =
steps), and (t(N2) - t(N1)) / (N2 - N1) as the per-step cost, without the
fixed cost of a call (compilation, initialization, the evaluation, host
work), which is shown too. Being the difference of two calls that each
compile, it is noisy; for one member the steps are too cheap for it to
resolve a 10% overhead, so (c) has no check row. The evaluation of (a)
(valid + test, whole splits, every member) and the compile times are
reported separately.

FLOP per training step: 3 x forward (backward ~ 2 x forward), forward = 2 x
batch x sum(in x out) over the dense layers: ~103 MFLOP for mnist-mlp. The
optimizer's elementwise work is not counted.

Rows (a) to (d) are timed in turns over --repeats rounds and the median is
taken (the best is shown too), so the noise of a shared machine falls on all
alike; the ratios are of medians.

GPU: run the same command on a machine with a GPU; everything runs on the
default device (train_grid is given that device only), and the GEMM peak is
that device's at the default matmul precision, so comparing this table with a
CPU one measures the GPU gain.

  python -m eval.experiments.bench_engine [--steps 200] [--settings 18] [--seeds 3]
    [--sequential-settings 3] [--single-steps 1000] [--repeats 7]
    [--no-train-grid] [--synthetic] [--conv-tasks mnist-conv,cifar10-resnet20]
    [--conv-alternatives mnist-conv] [--conv-members 4] [--conv-steps 3]
    [--conv-repeats 3] [--out reports/bench_engine.txt]
"""

import argparse
import dataclasses
import itertools
import math
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import rllc
from eval.experiments import torch_peer
from eval.run import engine
from eval.run.strategies import base
from eval.store import store
from rllc import catalog
from rllc.catalog import PAPER_RLLC_LAW_LR, PAPER_RLLC_LR
from tasks import augment as augment_lib
from tasks import data as data_lib
from tasks import registry as task_registry
from tasks.image_tasks import ImageTask

OPTIMIZER = "M(0.9)+M(0)"
TASK = "mnist-mlp"
BATCH = 128
GRID = [
  {"learning_rate": lr, "law_learning_rate": law}
  for lr, law in itertools.product(PAPER_RLLC_LR, PAPER_RLLC_LAW_LR)
]
SINGLE = {"learning_rate": 0.01, "law_learning_rate": 0.01}  # the setting of (c) and (d)
GEMM_N = 2048
GEMM_REPEATS = 10
# Random data where a data set is not cached: its image shape, and split sizes
# (train, valid, test): MNIST's; CIFAR-10's smaller (the speed of a step does
# not depend on them, the evaluation's is not timed for the conv tasks).
SYNTHETIC = {
  "mnist": ((28, 28, 1), (54_000, 6_000, 10_000)),
  "cifar10": ((32, 32, 3), (10_000, 1_000, 1_000)),
}
CONV_TASKS = ("mnist-conv", "cifar10-resnet20")
COPY_BYTES = 64 << 20  # the array of the copy peak


def _log(message: str) -> None:
  print(message, file=sys.stderr, flush=True)


def _task(name: str, synthetic: bool) -> tuple[ImageTask, str]:
  """A registry task on its data when it is cached, else on random data of its shapes."""
  dataset = task_registry.dataset_of(name)
  reason = "--synthetic"
  if not synthetic:
    try:
      task = task_registry.get_task(name, batch_size=BATCH)
      return task, f"{dataset} ({data_lib.load(dataset).source})"
    except data_lib.DataError:
      reason = f"{dataset} is not cached"
  shape, sizes = SYNTHETIC[dataset]
  rng = np.random.default_rng(0)

  def split(n):
    images = rng.standard_normal((n, *shape), dtype=np.float32)
    return images, rng.integers(0, 10, n).astype(np.int32)

  data = data_lib.ImageData(
    dataset, *(split(n) for n in sizes), 10, (0.0,) * shape[-1], (1.0,) * shape[-1], "synthetic"
  )
  spec = task_registry.TASKS[name]
  task = ImageTask(
    name,
    data,
    spec.model(10),
    batch_size=BATCH,
    augment=augment_lib.augment if spec.augment else None,
  )
  split_text = " / ".join(f"{n:,}" for n in sizes)
  shape_text = "x".join(map(str, shape))
  return task, f"synthetic: random normal images, {split_text} x {shape_text} ({reason})"


def _spread(items: list, k: int) -> list:
  """k items spread evenly over the list, the first included."""
  return [items[i * len(items) // k] for i in range(k)]


def _settings_text(runs) -> str:
  settings = dict.fromkeys((hp["learning_rate"], hp["law_learning_rate"]) for hp, _ in runs)
  seeds = ", ".join(str(s) for s in sorted({seed for _, seed in runs}))
  if len(settings) == len(GRID):
    return f"all {len(GRID)} of the paper grid x seeds {seeds}"
  return " ".join(f"({lr:g}, {law:g})" for lr, law in settings) + f" x seeds {seeds}"


def _step_flop(task: ImageTask) -> tuple[float, float]:
  """FLOP of one training step: (3 x forward, the count without the data's gradient).

  Forward is 2 x batch x sum(in x out) over the dense kernels. The backward
  pass computes every kernel's gradient (one forward's worth) and the
  gradient of every layer's input but the first's (the data needs none).
  """
  shapes = jax.eval_shape(task.init, jax.random.key(0))
  kernels = [x.shape for x in jax.tree.leaves(shapes) if len(x.shape) == 2]
  forward = 2 * BATCH * sum(i * o for i, o in kernels)
  first = 2 * BATCH * sum(i * o for i, o in kernels if i == math.prod(task.splits.image_shape))
  return 3 * forward, 3 * forward - first


def _gemm_peak() -> float:
  """FLOP/s of a jitted float32 GEMM, best of GEMM_REPEATS after a warm-up."""
  ka, kb = jax.random.split(jax.random.key(0))
  a = jax.random.normal(ka, (GEMM_N, GEMM_N), jnp.float32)
  b = jax.random.normal(kb, (GEMM_N, GEMM_N), jnp.float32)
  matmul = jax.jit(jnp.matmul)
  jax.block_until_ready(matmul(a, b))
  best = math.inf
  for _ in range(GEMM_REPEATS):
    start = time.perf_counter()
    jax.block_until_ready(matmul(a, b))
    best = min(best, time.perf_counter() - start)
  return 2 * GEMM_N**3 / best


def _copy_peak() -> float:
  """Bytes moved per second by a jitted copy (x + 1 into a new array), best of GEMM_REPEATS."""
  x = jnp.ones(COPY_BYTES // 4, jnp.float32)
  copy = jax.jit(lambda v: v + 1.0)
  jax.block_until_ready(copy(x))
  best = math.inf
  for _ in range(GEMM_REPEATS):
    start = time.perf_counter()
    jax.block_until_ready(copy(x))
    best = min(best, time.perf_counter() - start)
  return 2 * COPY_BYTES / best


def _counted_flop(task) -> float:
  """FLOP of one training step (value and gradient of the loss) by XLA's cost analysis."""
  key = jax.random.key(0)
  params, state = task.init_with_state(key)
  batch = task.splits.batch("train", key, 0)

  def loss(p):
    return task.loss_with_state(p, state, key, batch)[0]

  cost = jax.jit(jax.value_and_grad(loss)).lower(params).compile().cost_analysis()
  return float((cost[0] if isinstance(cost, list) else cost)["flops"])


def _programs(task, members, steps, devices, strategy) -> tuple[base.Strategy, dict, jax.Array]:
  """The engine's strategy object for `members` of OPTIMIZER (engine.Programs), one chunk of
  intervals of `steps`, and the members' varying hyperparameters and seeds as arrays of the
  member axis (engine.member_arrays, unplaced).

  Raises:
    ValueError: members whose fixed hyperparameters differ (more than one program).
  """
  groups, vectorized = engine.split_hparams(members)
  if len(groups) != 1:
    raise ValueError("the members need one program")
  static = {k: v for k, v in members[0][0].items() if k not in vectorized}
  schedule = engine.Schedule(steps, steps, steps)
  # The member axis is split evenly over the devices it is sharded on (train_grid pads a
  # chunk to them; a timed chunk is not padded, so it uses the devices that divide it).
  devices = devices[: math.gcd(len(members), len(devices))]
  programs = engine.Programs(
    task,
    catalog.lookup(OPTIMIZER),
    static,
    schedule,
    devices,
    width=len(members),
    strategy=strategy,
  )
  hps, seeds = engine.member_arrays(members, vectorized)
  return programs.strategy, hps, seeds


def _engine_program(task, members, steps, devices, strategy="vmap"):
  """The engine's own compiled programs for `members` (engine.Programs, as train_grid runs them).

  One chunk over `devices`, its members laid out by `strategy`: the members'
  hyperparameters that vary are arrays of the member axis
  (engine.split_hparams), sharded over the devices. The interval program is
  compiled ahead of time (Strategy.compile), then run once before timing.

  Returns:
    (seconds-per-step timer, compile seconds, seconds of one evaluation timer).
  """
  runner, hps, seeds = _programs(task, members, steps, devices, strategy)
  chunk = runner.start(hps, seeds)
  start = time.perf_counter()
  runner.compile(chunk, steps)
  compile_seconds = time.perf_counter() - start

  def advance():  # the carry is donated: each call continues from the last
    runner.advance(chunk, 0, steps)
    jax.block_until_ready(chunk.carries)

  advance()  # first execution: allocations

  def timer():
    start = time.perf_counter()
    advance()
    return (time.perf_counter() - start) / steps

  def evaluation():
    jax.block_until_ready(runner.evaluate(chunk))  # compiles
    start = time.perf_counter()
    jax.block_until_ready(runner.evaluate(chunk))
    return time.perf_counter() - start

  return timer, compile_seconds, evaluation


def _transformation(hp: dict) -> optax.GradientTransformationExtraArgs:
  return optax.with_extra_args_support(rllc.optimizer(OPTIMIZER, **hp).tx)


def _sequential(task, runs, steps):
  """One jitted step per setting, called from a Python loop; runs one after another.

  Returns:
    (timer: seconds per step of every run, compile seconds of all settings).
  """
  steps_of = {}  # setting -> jitted step
  compile_seconds = 0.0
  prepared = []
  for hp, seed in runs:
    key = tuple(sorted(hp.items()))
    tx = _transformation(hp)
    if key not in steps_of:

      def step(params, opt_state, data_key, step_key, t, tx=tx):
        batch = task.splits.batch("train", data_key, t)
        loss, grads = jax.value_and_grad(task.loss)(params, jax.random.fold_in(step_key, t), batch)
        updates, opt_state = tx.update(grads, opt_state, params, value=loss)
        return optax.apply_updates(params, updates), opt_state, loss

      steps_of[key] = jax.jit(step)
    init_key, data_key, step_key = jax.random.split(jax.random.key(seed), 3)
    params = task.init(init_key)
    run = (steps_of[key], params, tx.init(params), data_key, step_key)
    start = time.perf_counter()
    jax.block_until_ready(run[0](*run[1:], 0))  # compiles once per setting
    compile_seconds += time.perf_counter() - start
    prepared.append(run)

  def timer():
    start = time.perf_counter()
    for step, params, opt_state, data_key, step_key in prepared:
      for t in range(steps):
        params, opt_state, _ = step(params, opt_state, data_key, step_key, t)
      jax.block_until_ready(params)
    return (time.perf_counter() - start) / steps

  return timer, compile_seconds


def _bare(task, hp, seed, steps):
  """A hand-written scanned flax + optax loop of one run; a seconds-per-step timer."""
  tx = _transformation(hp)
  init_key, data_key, _ = jax.random.split(jax.random.key(seed), 3)
  params = task.init(init_key)

  def loss_fn(params, batch):
    logits = task.model.apply({"params": params}, batch["image"])
    return optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()

  def train(carry, data_key):
    def body(carry, t):
      params, opt_state = carry
      batch = task.splits.batch("train", data_key, t)
      loss, grads = jax.value_and_grad(loss_fn)(params, batch)
      updates, opt_state = tx.update(grads, opt_state, params, value=loss)
      return (optax.apply_updates(params, updates), opt_state), None

    return jax.lax.scan(body, carry, jnp.arange(steps))[0]

  carry = (params, tx.init(params))
  compiled = jax.jit(train).lower(carry, data_key).compile()
  jax.block_until_ready(compiled(carry, data_key))

  def timer():
    start = time.perf_counter()
    jax.block_until_ready(compiled(carry, data_key))
    return (time.perf_counter() - start) / steps

  return timer


def _bare_with_state(task, hp, seed, steps):
  """A scanned loop of one run of a task with model state (BatchNorm) and augmentation.

  The plain step and nothing else: batch, value and gradient of the task's
  loss (flax model, augmentation, new BatchNorm statistics), update, apply.
  The data is an argument of the program, as in the engine. A seconds-per-step
  timer.
  """
  tx = _transformation(hp)
  init_key, data_key, step_key = jax.random.split(jax.random.key(seed), 3)
  params, model_state = task.init_with_state(init_key)

  def train(carry, splits):
    on = task.with_splits(splits)

    def body(carry, t):
      params, model_state, opt_state = carry
      batch = on.splits.batch("train", data_key, t)
      (loss, model_state), grads = jax.value_and_grad(on.loss_with_state, has_aux=True)(
        params, model_state, jax.random.fold_in(step_key, t), batch
      )
      updates, opt_state = tx.update(grads, opt_state, params, value=loss)
      return (optax.apply_updates(params, updates), model_state, opt_state), None

    return jax.lax.scan(body, carry, jnp.arange(steps))[0]

  carry = (params, model_state, tx.init(params))
  compiled = jax.jit(train).lower(carry, task.splits).compile()
  jax.block_until_ready(compiled(carry, task.splits))

  def timer():
    start = time.perf_counter()
    jax.block_until_ready(compiled(carry, task.splits))
    return (time.perf_counter() - start) / steps

  return timer


def _chunk_timer(task, members, steps, devices, strategy):
  """Seconds per step of the engine's programs for `members` (Strategy.start / advance).

  Compiled and run once before timing; the chunk carries on from call to call.
  Returns (timer, seconds of the first call: compilation and one run).
  """
  runner, hps, seeds = _programs(task, members, steps, devices, strategy)
  chunk = runner.start(hps, seeds)

  def timer():
    start = time.perf_counter()
    jax.block_until_ready(runner.advance(chunk, 0, steps))
    jax.block_until_ready(chunk.carries)
    return (time.perf_counter() - start) / steps

  first = timer() * steps
  return timer, first


def _bare_step_loop(task, hp, seed, steps):
  """One jitted plain step (as _bare_with_state's) called from a Python loop; a timer."""
  tx = _transformation(hp)
  init_key, data_key, step_key = jax.random.split(jax.random.key(seed), 3)
  params, model_state = task.init_with_state(init_key)

  @jax.jit
  def step(carry, splits, t):
    params, model_state, opt_state = carry
    on = task.with_splits(splits)
    batch = on.splits.batch("train", data_key, t)
    (loss, model_state), grads = jax.value_and_grad(on.loss_with_state, has_aux=True)(
      params, model_state, jax.random.fold_in(step_key, t), batch
    )
    updates, opt_state = tx.update(grads, opt_state, params, value=loss)
    return optax.apply_updates(params, updates), model_state, opt_state

  state = {"carry": (params, model_state, tx.init(params))}
  jax.block_until_ready(step(state["carry"], task.splits, 0))

  def timer():
    start = time.perf_counter()
    for t in range(steps):
      state["carry"] = step(state["carry"], task.splits, t)
    jax.block_until_ready(state["carry"])
    return (time.perf_counter() - start) / steps

  return timer


def _conv_rows(name, args, devices) -> tuple[list[str], dict[str, float]]:
  """The rows of one conv task: the grid, its members one by one, bare loops.

  (e) the engine's grid of --conv-members members (settings spread over the
  paper grid, seed 0) in the layout train_grid chooses on this backend
  (engine.default_strategy); for the tasks of --conv-alternatives, (f) the
  grid in each other layout and (h') a bare scanned loop; (g) the engine's
  one-member program on one device, which is how the members run one by one;
  (h) a bare loop of one run, a jitted step called from Python. Each timed
  for --conv-steps steps a call over --conv-repeats interleaved rounds.
  """
  task, note = _task(name, args.synthetic)
  members = [(hp, 0) for hp in _spread(GRID, args.conv_members)]
  chosen = engine.default_strategy(task, jax.default_backend())
  alternatives = name in args.conv_alternatives.split(",")
  others = [s for s in engine.STRATEGIES if s != chosen] if alternatives else []
  layouts = {"f" + "'" * i: strategy for i, strategy in enumerate(others)}
  _log(f"{name}: compiling and a first run of each row ...")
  timers, first, labels = _conv_timers(task, members, devices, args.conv_steps, chosen, layouts)
  if alternatives:
    labels["h'"] = "(h') bare scanned loop, 1 run"
    timers["h'"] = _bare_with_state(task, SINGLE, 0, args.conv_steps)
  _log(f"{name}: timing {args.conv_repeats} rounds ...")
  samples = _samples(timers, args.conv_repeats)
  runs = {k: len(members) if k[0] in "ef" else 1 for k in timers}
  per_config = {k: statistics.median(v) / runs[k] for k, v in samples.items()}
  best = {k: min(v) / runs[k] for k, v in samples.items()}
  flop = _counted_flop(task)
  lines = [
    "",
    f"task {name} (batch {BATCH}), optimizer {OPTIMIZER}, {args.conv_steps} steps a call",
    f"data: {note}",
    f"FLOP per training step (XLA's count of value and gradient): {flop / 1e9:.2f} G",
    f"{'':42s} {'runs':>4s} {'ms/cfg-st':>10s} {'(best)':>9s} {'cfg-st/s':>9s} {'GFLOP/s':>8s}"
    f" {'/peak':>6s}",
  ]
  for k in timers:
    rate = 1 / per_config[k]
    lines.append(
      f"{labels[k]:42s} {runs[k]:4d} {1e3 * per_config[k]:10.2f} {1e3 * best[k]:9.2f}"
      f" {rate:9.2f} {rate * flop / 1e9:8.2f} {rate * flop / args.peak:6.3f}"
    )
  lines += _conv_ratios(per_config, layouts, alternatives)
  lines.append(
    "first call (compile + one run): " + ", ".join(f"({k}) {first[k]:.1f} s" for k in first)
  )
  return lines, per_config


def _conv_timers(task, members, devices, steps, chosen, layouts) -> tuple[dict, dict, dict]:
  """Rows (e), (f...), (g) and (h) of a conv task: (timers, first-call seconds, labels)."""
  timers, first = {}, {}
  labels = {"e": f"(e) engine's layout: {chosen}, {len(members)} runs"}
  timers["e"], first["e"] = _chunk_timer(task, members, steps, devices, chosen)
  for key, strategy in layouts.items():
    labels[key] = f"({key}) other layout: {strategy}, {len(members)} runs"
    timers[key], first[key] = _chunk_timer(task, members, steps, devices, strategy)
  labels["g"] = "(g) members one by one (engine, 1 run)"
  timers["g"], first["g"] = _chunk_timer(task, members[:1], steps, devices[:1], chosen)
  labels["h"] = "(h) bare loop, jitted step, 1 run"
  timers["h"] = _bare_step_loop(task, SINGLE, 0, steps)
  return timers, first, labels


def _conv_ratios(per_config: dict, layouts: dict, alternatives: bool) -> list[str]:
  """The ratio lines of a conv task's rows."""

  def vs(a, b):
    return per_config[b] / per_config[a]

  lines = [
    f"(e)/(g) grid vs its members one by one:      {vs('e', 'g'):6.2f}x"
    f"   (aim >= 1.0x: {'met' if vs('e', 'g') >= 1.0 else 'not met'})"
  ]
  for k, strategy in layouts.items():
    lines.append(f"{f'({k})/(g) {strategy} grid vs one by one:':44s} {vs(k, 'g'):6.2f}x")
  lines.append(f"(g)/(h) engine vs bare loop, one run:        {vs('g', 'h'):6.3f}")
  if alternatives:
    scanned = vs("h'", "h")
    lines.append(f"(h')/(h) scanned vs per-step bare loop:      {scanned:6.3f}")
  return lines


def _torch_rows(mlp_seconds: float, conv_seconds: float | None) -> list[str]:
  """The PyTorch peer's step times against the engine's one-run rows, or why there are none."""
  version = torch_peer.available()
  if version is None:
    return ["", "PyTorch: not importable here (no dependency of the suite): no peer rows"]
  seconds = torch_peer.step_seconds()
  threads = len(os.sched_getaffinity(0))
  lines = [
    "",
    f"PyTorch {version}, eager, {threads} threads, batch {BATCH}, SGD with momentum, same process",
    f"  mlp  {1e3 * seconds['mlp']:8.2f} ms a step; engine's one run (c) {1e3 * mlp_seconds:.2f}"
    f" ms: {mlp_seconds / seconds['mlp']:.2f}x PyTorch's time",
  ]
  conv = f"  conv {1e3 * seconds['conv']:8.2f} ms a step"
  if conv_seconds is not None:
    conv += (
      f"; engine's mnist-conv run-step (g) {1e3 * conv_seconds:.2f} ms:"
      f" {conv_seconds / seconds['conv']:.2f}x PyTorch's time (aim <= 1.0x)"
    )
  return lines + [conv]


def _train_grid_difference(task, members, steps) -> tuple[float, float]:
  """train_grid's seconds per step and fixed seconds per call, from two calls.

  Calls for N1 = steps // 10 and N2 = steps steps (one evaluation each, at the
  end); per step (t2 - t1) / (N2 - N1), fixed t1 - N1 x per step.
  """
  lengths = (max(1, steps // 10), steps)
  seconds = []
  for n in lengths:
    start = time.perf_counter()
    engine.train_grid(task, catalog.lookup(OPTIMIZER), members, engine.Schedule(n, n, n))
    seconds.append(time.perf_counter() - start)
  per_step = (seconds[1] - seconds[0]) / (lengths[1] - lengths[0])
  return per_step, seconds[0] - lengths[0] * per_step


def _samples(timers: dict, repeats: int) -> dict[str, list[float]]:
  """Each timer's results over `repeats` rounds, the timers taking turns within a round."""
  samples = {name: [] for name in timers}
  for _ in range(repeats):
    for name, timer in timers.items():
      samples[name].append(timer())
  return samples


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=200, help="steps of (a), (b) (default 200)")
  parser.add_argument(
    "--settings", type=int, default=len(GRID), help=f"grid settings of (a) (of {len(GRID)})"
  )
  parser.add_argument("--seeds", type=int, default=3, help="seeds per setting (0, 1, ...)")
  parser.add_argument(
    "--sequential-settings", type=int, default=3, help="settings timed in (b) (default 3)"
  )
  parser.add_argument("--single-steps", type=int, help="steps of (c) and (d) (default 5 x --steps)")
  parser.add_argument("--repeats", type=int, default=7, help="timed rounds (median taken)")
  parser.add_argument("--no-train-grid", action="store_true", help="skip the train_grid check row")
  parser.add_argument(
    "--synthetic", action="store_true", help="random data even when MNIST is cached"
  )
  parser.add_argument(
    "--conv-tasks",
    default=",".join(CONV_TASKS),
    help="conv tasks of rows (e)-(h), comma-separated, '' for none",
  )
  parser.add_argument(
    "--conv-alternatives",
    default="mnist-conv",
    help="conv tasks whose grid is also timed in the other layouts (default mnist-conv)",
  )
  parser.add_argument("--conv-members", type=int, default=4, help="runs of (e), (f) (default 4)")
  parser.add_argument(
    "--conv-steps", type=int, default=3, help="steps a call of (e)-(h) (default 3)"
  )
  parser.add_argument("--conv-repeats", type=int, default=3, help="timed rounds of (e)-(h)")
  parser.add_argument("--out", help="also write the table to this file")
  return parser


def _arguments(argv) -> argparse.Namespace:
  """The command line, checked (argparse's error, exit 2, naming the flag); --single-steps
  resolved to its default, --conv-tasks to a list."""
  parser = _parser()
  args = parser.parse_args(argv)
  args.conv_tasks = [name for name in args.conv_tasks.split(",") if name]
  for name in args.conv_tasks:
    if name not in task_registry.TASKS:
      parser.error(f"unknown task {name!r} in --conv-tasks")
  args.single_steps = args.single_steps or 5 * args.steps
  if not 1 <= args.settings <= len(GRID) or not 1 <= args.sequential_settings <= len(GRID):
    parser.error(f"--settings and --sequential-settings must be in 1..{len(GRID)}")
  if min(args.steps, args.single_steps, args.seeds, args.repeats) < 1:
    parser.error("--steps, --single-steps, --seeds and --repeats must be positive")
  if min(args.conv_members, args.conv_steps, args.conv_repeats) < 1:
    parser.error("--conv-members, --conv-steps and --conv-repeats must be positive")
  return args


@dataclasses.dataclass
class _MlpRows:
  """What the mnist-mlp rows (a) to (d) measured, keyed by row."""

  labels: dict[str, str]  # row -> its label
  layouts: dict[str, str]  # row of the grid in a layout, (a), (a'), ... -> its strategy
  runs: dict[str, int]  # row -> runs it times
  steps: dict[str, int]  # row -> steps a call
  samples: dict[str, list[float]]  # row -> seconds per step of all its runs, one per round
  checks: dict[str, tuple[float, float]]  # row -> train_grid's (seconds per step, fixed seconds)
  compile: dict[str, float]  # row -> compile seconds
  evaluation: float  # seconds of (a)'s evaluation


def _measure_mlp(args, task, members, sequential_runs, devices) -> _MlpRows:
  """Compiles, then times rows (a), (a') ..., (b), (c) and (d) in turns; the train_grid check."""
  chosen = engine.default_strategy(task, jax.default_backend())
  others = {
    "a" + "'" * (i + 1): s for i, s in enumerate(x for x in engine.STRATEGIES if x != chosen)
  }
  _log(f"(a) compiling the engine's program of {len(members)} members ...")
  grid_timer, grid_compile, grid_evaluation = _engine_program(
    task, members, args.steps, devices, chosen
  )
  other_steps = max(1, args.steps // 10)
  other_timers = {
    k: _chunk_timer(task, members, other_steps, devices, s)[0] for k, s in others.items()
  }
  width = len(members) // 3  # "chunked vmap": the grid as 3 vmapped chunks, one timed
  chunked = "a" + "'" * (len(others) + 1) if width >= 1 else None
  if chunked:
    other_timers[chunked] = _chunk_timer(task, members[:width], other_steps, devices, "vmap")[0]
  _log(f"(b) compiling {args.sequential_settings} per-setting steps ...")
  seq_timer, seq_compile = _sequential(task, sequential_runs, args.steps)
  _log("(c) compiling the engine's program of one member ...")
  one_timer, one_compile, _ = _engine_program(task, [(SINGLE, 0)], args.single_steps, devices[:1])
  _log("(d) compiling the bare loop ...")
  bare_timer = _bare(task, SINGLE, 0, args.single_steps)
  _log(f"timing {args.repeats} rounds ...")
  samples = _samples(
    {"a": grid_timer, **other_timers, "b": seq_timer, "c": one_timer, "d": bare_timer},
    args.repeats,
  )
  _log("(a) evaluation ...")
  evaluation = grid_evaluation()
  checks = {}
  if not args.no_train_grid:
    _log("train_grid checks ...")
    checks["a"] = _train_grid_difference(task, members, args.steps)
  runs = {"a": len(members), **dict.fromkeys(others, len(members))}
  runs.update({"b": len(sequential_runs), "c": 1, "d": 1})
  steps = {"a": args.steps, **dict.fromkeys(others, other_steps), "b": args.steps}
  steps.update({"c": args.single_steps, "d": args.single_steps})
  labels = {k: f"({k}) engine, {s} layout, {_runs(len(members))}" for k, s in others.items()}
  labels = {"a": f"(a) engine, {chosen} layout, {_runs(len(members))}", **labels}
  layouts = {"a": chosen, **others}
  if chunked:
    runs[chunked], steps[chunked] = width, other_steps
    labels[chunked] = f"({chunked}) engine, vmap, chunks of {width}"
    layouts[chunked] = f"vmap in chunks of {width}"
  labels["b"] = f"(b) sequential per-step jit, {_runs(len(sequential_runs))}"
  labels.update({"c": "(c) engine, 1 run", "d": "(d) bare scan loop, 1 run"})
  compile_seconds = {"a": grid_compile, "b": seq_compile, "c": one_compile}
  runs = dict(sorted(runs.items()))  # the table's order: (a), (a'), ..., (b), (c), (d)
  return _MlpRows(labels, layouts, runs, steps, samples, checks, compile_seconds, evaluation)


def _runs(n: int) -> str:
  return f"{n} run" + "s" * (n > 1)


def _mlp_header(args, argv, devices, data_note, flop, flop_exact, copy_peak) -> list[str]:
  """The command, the stack and devices, the task and data, and the peaks."""
  command = "$ python -m eval.experiments.bench_engine " + " ".join(
    sys.argv[1:] if argv is None else argv
  )
  return [
    command.rstrip(),
    f"jax {jax.__version__}, backend {jax.default_backend()}, {len(devices)} x"
    f" {devices[0].device_kind} device(s) for (a), {os.cpu_count()} CPUs; {args.repeats}"
    " interleaved rounds, median (and best) shown",
    f"task {TASK} (MLP 784-128-128-128-10, batch {BATCH}), optimizer {OPTIMIZER}",
    f"data: {data_note}",
    f"FLOP per training step: 3 x forward = {flop / 1e6:.1f} M (used below; without the"
    f" data's gradient {flop_exact / 1e6:.1f} M)",
    f"GEMM peak: {GEMM_N}x{GEMM_N} float32 matmul, best of {GEMM_REPEATS}:"
    f" {args.peak / 1e9:.2f} GFLOP/s; copy peak: {COPY_BYTES >> 20} MiB float32 x + 1,"
    f" {copy_peak / 1e9:.2f} GB/s",
    "",
    f"{'':42s} {'runs':>4s} {'steps':>5s} {'ms/step':>9s} {'ms/cfg-st':>9s} {'(best)':>9s}"
    f" {'cfg-st/s':>9s} {'GFLOP/s':>7s} {'/peak':>6s}",
  ]


def _mlp_table(rows: _MlpRows, flop: float, peak: float) -> tuple[list[str], dict[str, float]]:
  """The rows (a) to (d) and the check row: (lines, seconds per config-step of each row)."""
  per_step = {k: statistics.median(v) for k, v in rows.samples.items()}  # seconds, all the runs
  per_config = {k: per_step[k] / rows.runs[k] for k in rows.runs}  # seconds per config-step
  best_config = {k: min(rows.samples[k]) / rows.runs[k] for k in rows.runs}

  def row(label, runs, steps, seconds, best):
    rate = runs / seconds  # config-steps per second
    best_text = f"{1e3 * best:9.3f}" if best is not None else f"{'-':>9s}"
    return (
      f"{label:42s} {runs:4d} {steps:5d} {1e3 * seconds:9.3f} {1e3 * seconds / runs:9.3f}"
      f" {best_text} {rate:9.1f} {rate * flop / 1e9:7.2f} {rate * flop / peak:6.3f}"
    )

  lines = [
    row(rows.labels[k], rows.runs[k], rows.steps[k], per_step[k], best_config[k]) for k in rows.runs
  ]
  for k, (seconds, fixed) in rows.checks.items():
    label = f"  check (a): train_grid, {_runs(rows.runs[k])}"
    line = row(label, rows.runs[k], rows.steps[k], seconds, None)
    lines.append(line + f"  +{fixed:.1f} s/call")
  return lines, per_config


def _mlp_summary(args, rows: _MlpRows, per_config, flop, members, sequential_runs) -> list[str]:
  """The ratios of the mnist-mlp rows against their aims, compile times, and the settings."""

  def ratio(a, b):  # throughput of row a over row b
    return per_config[b] / per_config[a]

  chosen = rows.layouts["a"]
  a_peak = flop / per_config["a"] / args.peak
  per_step_a = statistics.median(rows.samples["a"])
  return [
    "",
    f"(a)/(b) vectorized vs sequential per-step loop: {ratio('a', 'b'):6.2f}x"
    f"   (aim >= 1.6x: {'met' if ratio('a', 'b') >= 1.6 else 'not met'})",
    f"(a)/(d) vectorized vs bare loop of one run:     {ratio('a', 'd'):6.2f}x"
    f"   (aim >= 1.2x: {'met' if ratio('a', 'd') >= 1.2 else 'not met'})",
    *(
      f"{f'(a)/({k}) {chosen} vs {s} layout:':48s}{ratio('a', k):6.2f}x"
      for k, s in rows.layouts.items()
      if k != "a"
    ),
    f"(c)/(d) engine vs bare loop, one run:           {ratio('c', 'd'):6.3f}"
    f"   (per-run overhead {per_config['c'] / per_config['d'] - 1:+.1%},"
    f" aim within 10%: {'met' if per_config['c'] <= 1.1 * per_config['d'] else 'not met'})",
    f"(a) FLOP/s / GEMM peak:                         {a_peak:6.3f}"
    f"   (aim >= 0.65: {'met' if a_peak >= 0.65 else 'not met'})",
    "",
    f"compile: (a) {rows.compile['a']:.1f} s, (b) {rows.compile['b']:.1f} s for"
    f" {args.sequential_settings} setting(s), (c) {rows.compile['c']:.1f} s",
    f"(a) evaluation of valid + test, {len(members)} members: {rows.evaluation:.2f} s"
    f" = {rows.evaluation / per_step_a:.0f} training steps",
    "",
    "Engine rows: the engine's compiled interval program, timed after compiling and one",
    "run (no compilation, no evaluation). Check row: (t(N2) - t(N1)) / (N2 - N1) of two",
    "train_grid calls, N1 = steps / 10, N2 = steps, one evaluation each; + the fixed",
    "cost of a call (compilation, init, evaluation, host work). Ratios: medians.",
    f"(a) settings (learning_rate, law_learning_rate): {_settings_text(members)}",
    f"(b) settings: {_settings_text(sequential_runs)}; (c), (d): {_settings_text([(SINGLE, 0)])}",
  ]


def _mlp_section(args, argv) -> tuple[str, dict[str, float]]:
  """The mnist-mlp section's text, and its seconds per config-step of each row."""
  task, data_note = _task(TASK, args.synthetic)
  seeds = range(args.seeds)
  members = [(hp, s) for hp in _spread(GRID, args.settings) for s in seeds]
  sequential_runs = [(hp, s) for hp in _spread(GRID, args.sequential_settings) for s in seeds]
  flop, flop_exact = _step_flop(task)
  _log("GEMM and copy peaks ...")
  args.peak = _gemm_peak()
  copy_peak = _copy_peak()
  devices = jax.local_devices()  # as train_grid: the member axis sharded over all of them
  rows = _measure_mlp(args, task, members, sequential_runs, devices)
  lines = _mlp_header(args, argv, devices, data_note, flop, flop_exact, copy_peak)
  table, per_config = _mlp_table(rows, flop, args.peak)
  lines += table + _mlp_summary(args, rows, per_config, flop, members, sequential_runs)
  return "\n".join(lines) + "\n", per_config


def main(argv=None) -> None:
  args = _arguments(argv)
  engine.one_device_per_core()  # as rllc bench (XLA_FLAGS set by hand wins)
  text, per_config = _mlp_section(args, argv)
  # Each section as soon as it is measured: a conv task takes minutes.
  sys.stdout.write(text)
  conv_seconds = None
  devices = jax.local_devices()
  for name in args.conv_tasks:
    if args.out:
      store.atomic_write(args.out, text)  # whole sections or not at all
    rows, per_conv = _conv_rows(name, args, devices)
    conv_seconds = per_conv["g"] if name == "mnist-conv" else conv_seconds
    section = "\n".join(rows) + "\n"
    sys.stdout.write(section)
    sys.stdout.flush()
    text += section
  section = "\n".join(_torch_rows(per_config["c"], conv_seconds)) + "\n"
  sys.stdout.write(section)
  text += section
  if args.out:
    store.atomic_write(args.out, text)


if __name__ == "__main__":
  main()
