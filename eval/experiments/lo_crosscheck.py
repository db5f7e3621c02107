"""Cross-check of the engine against learned_optimization's own training loop.

One (task, optimizer, hyperparameters, seed) trains twice: through
learned_optimization's `eval_training.single_task_training_curves`, with the
optimizer behind the suite's adapter (rllc.lopt.OptaxAdapter), and through
the suite's engine (eval.run.engine.train_grid), which scans and compiles the
steps itself and draws the batches inside the program. Both read the same
learned_optimization Task (tasks.lo_tasks). The per-step training losses are
compared:

- **same batches** (a task on the suite's data, or one without data): the
  Task's own iterators are keyed to the engine's batch order for the seed and
  learned_optimization's loop starts from the engine's initialization (the
  seed's keys, as eval.run.engine draws them). Both loops then make the same
  arithmetic in another order of XLA's choosing, and the curves agree up to
  float32 rounding, amplified by training. The table gives both curves side
  by side and the largest difference.
- **batches differ** (`--orders differ`, or a task reading its own iterators,
  which each loop consumes on its own): learned_optimization's loop runs as a
  user would run it, its iterators and initialization from `key(seed)`.
  Curves cannot agree step by step; the mean final training loss (the mean
  over the last `WINDOW` steps) over several seeds is compared: the
  difference of the two means against twice its standard error (Welch), the
  seed spread.

  python -m eval.experiments.lo_crosscheck                 # the committed report
  python -m eval.experiments.lo_crosscheck --task lo:QuadraticTask --optimizer am-sgd \\
      --hp learning_rate=0.1 --steps 50 --out /tmp/check.md

The committed report (no --task): lo:ImageMLP_Mnist_128x128x128_Relu and
lo:QuadraticTask with M(0.9)+M(0) and am-sgd, same batches at seed 0, and the
MNIST task with batch orders that differ over `SEEDS` seeds; it writes
reports/lo_crosscheck.md and the full curves in reports/lo_crosscheck_curves.csv.
A module of eval.experiments rather than an `rllc` command: it is a check of the
engine that writes a committed report, as the other experiments are, not a step
of a benchmark, and it needs both training loops, which the command line keeps
out of its light commands.
"""

import argparse
import csv
import dataclasses
import importlib.metadata
import math
import sys
import time
from pathlib import Path

import jax
import numpy as np

from eval.run import engine
from rllc import catalog, lopt
from rllc.compat import lo_compat
from tasks import lo_tasks

_tasks_base = lo_compat.load("learned_optimization.tasks.base")
eval_training = lo_compat.load("learned_optimization.eval_training")

WINDOW = 20  # steps of the final training loss
SEEDS = 3  # seeds of a comparison whose batch orders differ
ROWS = 11  # steps shown per curve table
DEFAULT_STEPS = 200
MNIST = "lo:ImageMLP_Mnist_128x128x128_Relu"
QUADRATIC = "lo:QuadraticTask"
OPTIMIZERS = (
  ("M(0.9)+M(0)", {"learning_rate": 0.1, "law_learning_rate": 0.01}),
  ("am-sgd", {"learning_rate": 0.1}),
)


@dataclasses.dataclass
class Curves:
  """One comparison: the training-loss curves of both loops, (runs, steps) each."""

  task: str
  optimizer: str  # the results name of the setting
  seeds: tuple[int, ...]
  same_batches: bool
  lo: np.ndarray  # learned_optimization's loop
  engine: np.ndarray  # the suite's engine
  lo_seconds: float  # wall time, compilation included
  engine_seconds: float

  def largest_difference(self) -> tuple[float, float, int]:
    """(largest |lo - engine|, the largest relative to |lo|, the step of the first)."""
    gap = np.abs(self.lo[0] - self.engine[0])
    step = int(np.argmax(gap))
    relative = gap / np.maximum(np.abs(self.lo[0]), np.finfo(np.float32).tiny)
    return float(gap[step]), float(np.max(relative)), step

  def finals(self) -> tuple[np.ndarray, np.ndarray]:
    """Per seed, the mean training loss of the last WINDOW steps, of each loop."""
    window = min(WINDOW, self.lo.shape[1])
    return self.lo[:, -window:].mean(1), self.engine[:, -window:].mean(1)


class _Pinned(_tasks_base.Task):
  """A Task whose initialization ignores the loop's key: the engine's, for the same start."""

  def __init__(self, task, init_key: jax.Array):
    super().__init__()
    self._task, self._init_key = task, init_key
    self.datasets = task.datasets

  @property
  def name(self) -> str:
    return self._task.name

  def init_with_state(self, key):
    return self._task.init_with_state(self._init_key)

  def loss_with_state(self, params, state, key, data):
    return self._task.loss_with_state(params, state, key, data)

  def loss_with_state_and_aux(self, params, state, key, data):
    return self._task.loss_with_state_and_aux(params, state, key, data)

  def normalizer(self, loss):
    return self._task.normalizer(loss)


def engine_keys(seed: int) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(initialization, batch order, per-step) keys of a seed, as eval.run.engine draws them."""
  return tuple(jax.random.split(jax.random.key(seed), 3))


def _lo_curve(task, entry: catalog.Entry, hparams: dict, steps: int, key: jax.Array):
  """Per-step training losses of learned_optimization's single_task_training_curves."""
  resolved = entry.resolve(hparams)
  opt = lopt.OptaxAdapter(entry.transformation(**resolved), entry.result_name(resolved))
  # It makes num_steps + 1 steps, evaluating every eval_every: once at each end here.
  curves = eval_training.single_task_training_curves(
    task, opt, steps - 1, key, eval_every=max(steps - 1, 1), eval_batches=1, last_eval_batches=1
  )
  return np.asarray(curves["train/loss"], np.float64)


def _engine_curves(task, entry: catalog.Entry, hparams: dict, seeds, steps: int) -> np.ndarray:
  """Per-step training losses of the engine, one row per seed (NaN once diverged)."""
  result = engine.train_grid(
    task,
    entry,
    [(hparams, seed) for seed in seeds],
    engine.Schedule(steps, steps, 1),
    devices=jax.local_devices()[:1],
  )
  return np.asarray(
    [[math.nan if v is None else v for v in m["curves"]["train_loss"]] for m in result.members]
  )


def compare(
  task_name: str,
  optimizer: str,
  hparams: dict,
  *,
  steps: int = DEFAULT_STEPS,
  seeds: tuple[int, ...] = (0,),
  same_batches: bool = True,
) -> Curves:
  """Trains one setting through both loops; see the module docstring.

  Args:
    task_name: a learned_optimization task (tasks.lo_tasks.get_task).
    optimizer: a catalog name or propagator spec.
    hparams: its hyperparameters.
    steps: training steps of each run.
    seeds: the runs' seeds (one, when the batches are the same).
    same_batches: key the Task's iterators and initialization to the engine's; impossible
      (so False) for a task that reads its own iterators.

  Returns:
    The curves of both loops.
  """
  entry = catalog.lookup(optimizer)
  probe = lo_tasks.get_task(task_name)
  same_batches = same_batches and not isinstance(probe.splits, lo_tasks.IteratorSplits)
  lo_rows, lo_seconds = [], 0.0
  for seed in seeds:
    start = time.perf_counter()
    if same_batches:
      init_key, data_key, _ = engine_keys(seed)
      task = lo_tasks.get_task(task_name, train_key=data_key)
      lo_rows.append(_lo_curve(_Pinned(task.task, init_key), entry, hparams, steps, init_key))
    else:
      task = lo_tasks.get_task(task_name, seed=seed)
      lo_rows.append(_lo_curve(task.task, entry, hparams, steps, jax.random.key(seed)))
    lo_seconds += time.perf_counter() - start
  start = time.perf_counter()
  engine_rows = _engine_curves(probe, entry, hparams, seeds, steps)
  engine_seconds = time.perf_counter() - start
  return Curves(
    task=task_name,
    optimizer=entry.result_name(entry.resolve(hparams)),
    seeds=tuple(seeds),
    same_batches=same_batches,
    lo=np.stack(lo_rows),
    engine=engine_rows,
    lo_seconds=lo_seconds,
    engine_seconds=engine_seconds,
  )


def _shown_steps(steps: int) -> list[int]:
  return sorted({round(i * (steps - 1) / (ROWS - 1)) for i in range(ROWS)})


def same_section(c: Curves) -> list[str]:
  """Markdown: both curves side by side and the largest difference."""
  gap, relative, at = c.largest_difference()
  largest = (
    f"{gap:.3g} at step {at} (largest relative to the loss: {relative:.3g})"
    if gap > 0
    else "none, the curves are the same bit for bit"
  )
  lines = [
    f"### {c.task}, {c.optimizer}, seed {c.seeds[0]}: same batches",
    "",
    f"Largest difference over the {c.lo.shape[1]} steps: {largest}. Wall time, compilation"
    f" included: learned_optimization's loop {c.lo_seconds:.1f} s, the engine"
    f" {c.engine_seconds:.1f} s.",
    "",
    "| step | learned_optimization | engine | \\|difference\\| |",
    "| ---: | ---: | ---: | ---: |",
  ]
  for step in _shown_steps(c.lo.shape[1]):
    lo, ours = c.lo[0, step], c.engine[0, step]
    lines.append(f"| {step} | {lo:.7g} | {ours:.7g} | {abs(lo - ours):.2g} |")
  return [*lines, ""]


def differ_section(c: Curves) -> list[str]:
  """Markdown: mean final training loss over seeds of each loop, and the verdict."""
  lo, ours = c.finals()
  n = len(c.seeds)
  error = math.sqrt(lo.var(ddof=1) / n + ours.var(ddof=1) / n)
  diff = float(lo.mean() - ours.mean())
  verdict = "within" if abs(diff) <= 2 * error else "outside"
  return [
    f"### {c.task}, {c.optimizer}, seeds {c.seeds[0]}-{c.seeds[-1]}: batch orders differ",
    "",
    f"Final training loss (mean of the last {min(WINDOW, c.lo.shape[1])} steps), per seed:",
    "",
    "| loop | " + " | ".join(f"seed {s}" for s in c.seeds) + " | mean ± std |",
    "| --- | " + " | ".join("---:" for _ in c.seeds) + " | ---: |",
    f"| learned_optimization | {' | '.join(f'{v:.4f}' for v in lo)}"
    f" | {lo.mean():.4f} ± {lo.std(ddof=1):.4f} |",
    f"| engine | {' | '.join(f'{v:.4f}' for v in ours)}"
    f" | {ours.mean():.4f} ± {ours.std(ddof=1):.4f} |",
    "",
    f"Difference of the means {diff:+.4f}, standard error {error:.4f}: {verdict} the seed spread"
    f" (|difference| {'<=' if verdict == 'within' else '>'} 2 standard errors). Wall time:"
    f" learned_optimization's loop {c.lo_seconds:.1f} s for {n} runs, the engine"
    f" {c.engine_seconds:.1f} s for the {n} in one program.",
    "",
  ]


def write_curves(path: Path, comparisons: list[Curves]) -> None:
  """Every step of every curve, long form: task, optimizer, batches, seed, step, lo, engine."""
  with path.open("w", newline="") as stream:
    writer = csv.writer(stream)
    writer.writerow(["task", "optimizer", "batches", "seed", "step", "lo", "engine"])
    for c in comparisons:
      batches = "same" if c.same_batches else "differ"
      for row, seed in enumerate(c.seeds):
        for step in range(c.lo.shape[1]):
          lo, ours = c.lo[row, step], c.engine[row, step]
          writer.writerow([c.task, c.optimizer, batches, seed, step, f"{lo:.9g}", f"{ours:.9g}"])


def report(comparisons: list[Curves], command: str) -> str:
  """The Markdown report of some comparisons."""
  versions = ", ".join(
    f"{p} {importlib.metadata.version(p)}" for p in ("jax", "optax", "learned-optimization")
  )
  lines = [
    "# The engine against learned_optimization's own training loop",
    "",
    f"Made by `{command}` ({versions}, {jax.devices()[0].platform} backend).",
    "",
    "Each setting trains through learned_optimization's"
    " `eval_training.single_task_training_curves` (the optimizer behind rllc.lopt.OptaxAdapter)"
    " and through the suite's engine, on the same learned_optimization Task (tasks.lo_tasks);"
    " the curves are the per-step training losses. With the same batches and initialization"
    " the loops differ only in how XLA orders the float32 arithmetic; with batch orders that"
    " differ, the mean final loss over seeds is compared with the seed spread"
    " (eval/experiments/lo_crosscheck.py says how). The full curves are in"
    " lo_crosscheck_curves.csv.",
    "",
  ]
  for c in comparisons:
    lines += same_section(c) if c.same_batches else differ_section(c)
  return "\n".join(lines)


def _hparams(pairs: list[str]) -> dict:
  parsed = {}
  for pair in pairs:
    key, _, value = pair.partition("=")
    parsed[key] = float(value)
  return parsed


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
    prog="python -m eval.experiments.lo_crosscheck", description=__doc__.split("\n\n")[0]
  )
  parser.add_argument("--task", help="one learned_optimization task (default: the report's)")
  parser.add_argument("--optimizer", default="M(0.9)+M(0)", help="a catalog name or spec")
  parser.add_argument("--hp", action="append", default=[], help="NAME=NUMBER, repeatable")
  parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
  parser.add_argument("--seeds", type=int, default=SEEDS, help="seeds when batches differ")
  parser.add_argument("--orders", choices=("same", "differ"), default="same")
  parser.add_argument("--out", default="reports/lo_crosscheck.md")
  argv = sys.argv[1:] if argv is None else argv
  args = parser.parse_args(argv)
  if args.task:
    same = args.orders == "same"
    seeds = (0,) if same else tuple(range(args.seeds))
    hparams = _hparams(args.hp) or dict(OPTIMIZERS).get(args.optimizer, {})
    cases = [(args.task, args.optimizer, hparams, seeds, same)]
  else:
    cases = [(task, opt, hp, (0,), True) for task in (MNIST, QUADRATIC) for opt, hp in OPTIMIZERS]
    cases += [(MNIST, opt, hp, tuple(range(args.seeds)), False) for opt, hp in OPTIMIZERS]
  comparisons = []
  for task, opt, hparams, seeds, same in cases:
    c = compare(task, opt, hparams, steps=args.steps, seeds=seeds, same_batches=same)
    comparisons.append(c)
    print("\n".join(same_section(c) if c.same_batches else differ_section(c)), flush=True)
  out = Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  command = "python -m eval.experiments.lo_crosscheck" + "".join(
    f" {a}" if " " not in a else f" '{a}'" for a in argv
  )
  out.write_text(report(comparisons, command))
  write_curves(out.with_name(out.stem + "_curves.csv"), comparisons)
  print(f"wrote {out} and {out.with_name(out.stem + '_curves.csv')}")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
