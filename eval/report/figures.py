"""The report's per-task figures as specs: accuracy, step, law, memory, beta, sensitivity, overhead.

`specs` gathers, per task, the data of whichever of these has any, as a
FigureSpec (eval.report.document) of a plot type of eval.report.plots;
eval.report.draw draws it to `figures/<kind>_<task>.svg`:

- accuracy: test accuracy vs step of each selected setting, mean over its seeds
  with a min–max band (the RLLC paper's figures 1, 4 and 5);
- step: the effective step each selected setting took at each evaluation
  (rllc.analysis.step: lr(t) times its gain, c1(t) W(L_t) for a memory), log
  scale: whether a law learned a schedule;
- law: the RLLC learning-law coefficients vs step, one panel per optimizer, one
  line per memory unit (the paper's figure 2);
- memory: the memoryless reading of each RLLC law L_t (the memory paper's
  formula (9), rllc.analysis.linear): effective learning rate h W(L_t) and
  implicit gradient-norm penalty h S(L_t) / 2 vs step;
- beta: adaptive-memory momentum coefficients β_t vs step;
- sensitivity: final validation loss vs learning rate over the whole grid, with
  diverged learning rates marked;
- overhead: optimizer state size and step time relative to the parameters and Adam.

Each optimizer keeps one color across the whole report: every plot carries
the report's optimizer names.
"""

import math
from collections import defaultdict

import numpy as np

from eval.report import plots
from eval.report.document import FigureSpec
from eval.report.selection import Selected
from eval.store import store as store_lib
from eval.store import tidy
from rllc import spec as spec_lib
from rllc.analysis import linear
from rllc.catalog import FIXED_LAW_PREFIX, split_initial_law
from rllc.schedule import learning_rate_np, split_options

KINDS = ("accuracy", "step", "law", "memory", "beta", "sensitivity", "overhead")


def specs(frames: tidy.Frames, selected: list[Selected], overhead: list[dict]) -> list[FigureSpec]:
  """Every figure that has data, sorted by task, then in KINDS order.

  frames: the report's runs and curves (eval.store.tidy.report_frames).
  """
  runs = frames.runs
  names = set(runs["optimizer"]) | {s.optimizer for s in selected}
  names = tuple(sorted(names | {row["optimizer"] for row in overhead}))
  tasks = sorted(set(runs["task"]) | {row["task"] for row in overhead})
  figures = []
  for task in tasks:
    rows = [s for s in selected if s.task == task]
    of_task = _of_task(frames, task, rows)  # each kind looks among its task's runs only
    drawn = {
      "accuracy": accuracy(of_task, rows, names),
      "step": step(of_task, rows, names),
      "law": law(of_task, rows),
      "memory": memory(of_task, rows),
      "beta": beta(of_task, rows, names),
      "sensitivity": sensitivity(of_task, task, names),
      "overhead": overhead_plot([row for row in overhead if row["task"] == task], names),
    }
    for kind in KINDS:
      if drawn[kind] is not None:
        plot, caption = drawn[kind]
        stem = f"figures/{kind}_{task}"
        figures.append(FigureSpec(kind, task, stem, caption, f"{task}: {kind}", plot))
  return figures


def _of_task(frames: tidy.Frames, task: str, rows: list[Selected]) -> tidy.Frames:
  """The runs of one task, and the curves of its selected settings' runs (the ones drawn)."""
  runs = frames.runs[frames.runs["task"] == task]
  keys = {key for row in rows for key in _of_setting(runs, row)["key"]}
  return tidy.Frames(runs, frames.curves[frames.curves["key"].isin(keys)])


def _runs(frames: tidy.Frames, row: Selected):
  """The runs (rows of the frame) of a selected setting, by seed."""
  return _of_setting(frames.runs, row)


def _of_setting(runs, row: Selected):
  """The rows of `runs` that ran a selected setting, by seed."""
  setting = store_lib.canonical_json(row.hparams)
  mine = (runs["task"] == row.task) & (runs["optimizer"] == row.optimizer)
  mine &= (runs["protocol"] == row.protocol) & (runs["setting"] == setting)
  return runs[mine].sort_values("seed", kind="stable")


def _curves(frames: tidy.Frames, runs, name: str) -> tuple[np.ndarray, list[np.ndarray]] | None:
  """The first run's steps of curve `name`, and the curve of each run (steps, or steps x
  units), from the long form; None if a run has no such curve."""
  curves = frames.curves
  rows = curves[(curves["curve"] == name) & curves["key"].isin(set(runs["key"]))]
  by_key = dict(tuple(rows.groupby("key", sort=False)))
  if any(key not in by_key for key in runs["key"]):
    return None
  arrays = [_curve_of(by_key[key]) for key in runs["key"]]
  return arrays[0][0], [values for _, values in arrays]


def _curve_of(rows) -> tuple[np.ndarray, np.ndarray]:
  """One run's steps and values of a curve, its units (if any) as a second axis."""
  values, steps = rows["value"].to_numpy(np.float64), rows["step"].to_numpy()
  if rows["unit"].isna().all():
    return steps, values
  units = int(rows["unit"].max()) + 1
  return steps[::units], values.reshape(-1, units)


def _seeds_text(counts: list[int]) -> str:
  """The seed count for a caption: "2 seeds", or "2–3 seeds" when settings differ."""
  low, high = min(counts), max(counts)
  return f"{low} seed{'s' * (high > 1)}" if low == high else f"{low}–{high} seeds"


def accuracy_bands(
  frames: tidy.Frames, row: Selected
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """Eval steps, and the mean, min and max over seeds of the test accuracy in percent."""
  steps, values = _curves(frames, _runs(frames, row), "test_accuracy")
  curves = 100 * np.stack(values)
  return steps, curves.mean(0), curves.min(0), curves.max(0)


def effective_steps(frames: tidy.Frames, row: Selected) -> tuple[np.ndarray, np.ndarray] | None:
  """Eval steps and the mean over seeds of a selected setting's effective step (None: no curve).

  Records written before the effective step was recorded have no curve.
  """
  found = _curves(frames, _runs(frames, row), "effective_step")
  if found is None:
    return None
  steps, values = found
  return steps, np.stack(values).mean(0)


def unit_names(spec: str, count: int) -> list[str]:
  """The memory units' labels (rllc.spec: "M2(0.6)[1]", "CM(0.9i).re", ...), or c1, c2, ..."""
  try:
    bare, _ = split_initial_law(split_options(spec)[0].removeprefix(FIXED_LAW_PREFIX))
    names = list(spec_lib.parse_propagator(bare).labels)
  except ValueError:  # not a spec
    names = []
  return names if len(names) == count else [f"c{i + 1}" for i in range(count)]


def _mean_curve(frames: tidy.Frames, runs, key: str) -> tuple[np.ndarray, np.ndarray] | None:
  """The `key` curve's steps and its mean over seeds (a curve may have units: an axis each);
  None if a run has no such curve."""
  found = _curves(frames, runs, key)
  if found is None:
    return None
  steps, values = found
  return steps, np.stack(values).mean(0)


def memory_reading(frames: tidy.Frames, row: Selected):
  """Steps, h W(L_t) and h S(L_t) / 2 of a selected RLLC setting's mean law; None if it has none.

  h is the setting's learning rate c1 (theta_t = theta_{t-1} - c1 M_t L_t); a
  propagator with spectral radius >= 1 has no memoryless reading (None).
  """
  runs = _runs(frames, row)
  found = _mean_curve(frames, runs, "law") if runs["family"].iloc[0] == "rllc" else None
  if found is None:
    return None
  steps, law = found
  try:
    h = learning_rate_np(row.hparams, steps - 1)[:, None]  # c1(t), constant without a schedule
    effective = h * linear.law_trajectory(split_options(row.optimizer)[0], law)
  except ValueError:
    return None
  return steps, effective[:, 0], effective[:, 1]


def sensitivity_points(
  frames: tidy.Frames, task: str
) -> dict[str, list[tuple[float, float | None, bool]]]:
  """Per optimizer on `task`, sorted by learning rate: (lr, score, diverged).

  A setting (hparams and protocol) scores the mean final validation loss over its
  seeds, or diverged if any seed diverged or has no finite loss. A learning rate
  shared by several settings keeps the best score; it is diverged (score None)
  only if all of its settings are.
  """
  runs = frames.runs[frames.runs["task"] == task]
  best = defaultdict(lambda: math.inf)
  for (optimizer, _, _), setting in runs.groupby(["optimizer", "protocol", "setting"], sort=False):
    losses = setting["valid_loss"].to_numpy()
    ok = bool((setting["status"] == "ok").all() and np.isfinite(losses).all())
    lr = setting["hparams"].iloc[0]["learning_rate"]
    best[optimizer, lr] = min(best[optimizer, lr], float(np.mean(losses)) if ok else math.inf)
  points = defaultdict(list)
  for (optimizer, lr), score in sorted(best.items()):
    diverged = not math.isfinite(score)
    points[optimizer].append((lr, None if diverged else score, diverged))
  return dict(points)


def accuracy(frames: tidy.Frames, rows: list[Selected], names: tuple[str, ...]):
  """Test accuracy bands of the selected settings, and the caption; None without any (a task
  that reports no accuracy has none)."""
  rows = [row for row in rows if not math.isnan(row.test_accuracy[0])]
  if not rows:
    return None
  bands = tuple((row.optimizer, *accuracy_bands(frames, row)) for row in rows)
  seeds = _seeds_text([len(_runs(frames, row)) for row in rows])
  caption = (
    "Test accuracy of each optimizer's selected setting vs training step: "
    f"mean over {seeds} as a line, min–max over seeds as a shaded band."
  )
  return plots.AccuracyPlot(names, bands), caption


def step(frames: tidy.Frames, rows: list[Selected], names: tuple[str, ...]):
  """The effective step of the selected settings vs step, log scale; None without any."""
  curves = [(row, effective_steps(frames, row)) for row in rows]
  curves = [(row, *curve) for row, curve in curves if curve is not None]
  if not curves:
    return None
  positive = [np.where(value > 0, value, np.nan) for _, _, value in curves]  # log axis: > 0
  dropped = [
    row.optimizer for (row, *_), p in zip(curves, positive, strict=True) if np.isnan(p).all()
  ]
  drawn = tuple((row.optimizer, s, p) for (row, s, _), p in zip(curves, positive, strict=True))
  seeds = _seeds_text([len(_runs(frames, row)) for row, *_ in curves])
  missing = f" Not positive anywhere, so not drawn: {', '.join(dropped)}." if dropped else ""
  caption = (
    "Effective step of each optimizer's selected setting at each evaluation, mean over "
    f"{seeds}, log scale: lr(t) for SGD- and Adam-like steps, lr(t) / (1 - β) for heavy ball,"
    " c1(t) W(L_t) for RLLC and fixed laws (W(L) = aᵀ(I − B)⁻¹L, rllc analyze), η(t) for"
    f" adaptive memory (rllc.analysis.step).{missing}"
  )
  return plots.StepPlot(names, drawn), caption


def law(frames: tidy.Frames, rows: list[Selected]):
  """One panel per selected setting with a law curve, and the caption; None without any."""
  panels, seeds = [], []
  for row in rows:
    runs = _runs(frames, row)
    found = _mean_curve(frames, runs, "law")
    if runs["family"].iloc[0] in ("rllc", "fixed-law") and found is not None:
      steps, mean = found
      panels.append((row.optimizer, steps, mean, tuple(unit_names(row.optimizer, mean.shape[1]))))
      seeds.append(len(runs))
  if not panels:
    return None
  caption = (
    "Learning-law coefficients vs step of each selected RLLC setting, one line per memory "
    f"unit, mean over {_seeds_text(seeds)}."
  )
  return plots.LawPlot(tuple(panels)), caption


def memory(frames: tidy.Frames, rows: list[Selected]):
  """Per selected RLLC setting, h W(L_t) and h S(L_t) / 2 of its mean law; None without any."""
  panels = [(row.optimizer, memory_reading(frames, row)) for row in rows]
  panels = tuple((optimizer, *reading) for optimizer, reading in panels if reading is not None)
  if not panels:
    return None
  caption = (
    "The memoryless reading of each selected RLLC setting's mean law L_t (memory paper, formula"
    " (9); rllc analyze): theta <- theta - h W grad[L + (h S / 2) |grad L|^2], the law frozen at"
    " each step; a penalty below zero means the memory anti-regularizes."
  )
  return plots.MemoryPlot(panels), caption


def beta(frames: tidy.Frames, rows: list[Selected], names: tuple[str, ...]):
  """β_t of the selected adaptive-memory settings, and the caption; None without any."""
  betas, seeds, per_leaf = [], [], False
  for row in rows:
    runs = _runs(frames, row)
    found = _mean_curve(frames, runs, "beta")
    if runs["family"].iloc[0] == "adaptive-memory" and found is not None:
      steps, value = found
      per_leaf |= value.ndim > 1
      betas.append((row.optimizer, steps, value.reshape(len(steps), -1).mean(1)))
      seeds.append(len(runs))
  if not betas:
    return None
  leaves = ", and over the parameter leaves where β is per leaf" if per_leaf else ""
  caption = (
    "Momentum coefficient β_t vs step of each selected adaptive-memory setting, mean over "
    f"{_seeds_text(seeds)}{leaves}."
  )
  return plots.BetaPlot(names, tuple(betas)), caption


def sensitivity(frames: tidy.Frames, task: str, names: tuple[str, ...]):
  """The plot of sensitivity_points, and the caption; None without any point."""
  points = sensitivity_points(frames, task)
  if not points:
    return None
  caption = (
    "Final validation loss vs learning rate over each optimizer's whole grid (mean over seeds, "
    "the best setting where several share a learning rate); an x at the top edge marks a "
    "learning rate where every setting had a diverged seed."
  )
  return plots.SensitivityPlot(names, points), caption


def overhead_plot(rows: list[dict], names: tuple[str, ...]):
  """State size and step time per optimizer (comparison.overhead's rows); None without rows."""
  if not rows:
    return None
  measured = [r["state_bytes"] is not None and bool(r["param_bytes"]) for r in rows]
  bars = tuple(
    (r["optimizer"], r["state_bytes"] / r["param_bytes"] if m else None, r["step_time_ratio"])
    for r, m in zip(rows, measured, strict=True)
  )
  caption = (
    "Optimizer state size relative to the parameters, and time per step relative to Adam's on "
    "the same task, per optimizer (n/a where not measured)."
  )
  return plots.OverheadPlot(names, bars), caption
