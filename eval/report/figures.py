"""The report's figures: accuracy curves, learning laws, adaptive betas, sensitivity, overhead.

`write_figures` draws, per task, whichever of these has data and writes each as
`figures/<kind>_<task>.png` and `.svg` under the report's directory:

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

The same inputs give byte-identical files, in any process: the figures are drawn
without pyplot on fixed rcParams, SVG ids come from a fixed salt, no file carries
a date or version, and each optimizer keeps one color across the whole report.
"""

import dataclasses
import math
from collections import defaultdict
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure as MplFigure

from eval.report.selection import Selected
from eval.store import records as records_lib
from eval.store import store as store_lib
from rllc import spec as spec_lib
from rllc.analysis import linear
from rllc.catalog import FIXED_LAW_PREFIX, split_initial_law
from rllc.schedule import learning_rate_np, split_options

KINDS = ("accuracy", "step", "law", "memory", "beta", "sensitivity", "overhead")
STYLE = {
  "font.family": "DejaVu Sans",
  "font.size": 9,
  "axes.titlesize": 9,
  "legend.fontsize": 8,
  "svg.fonttype": "none",  # text stays text: searchable, and no glyph paths
  "svg.hashsalt": "rllc-report",  # fixed ids for clip paths and markers
  "path.simplify": False,
}
DPI = 100
PANEL = (4.8, 3.4)  # inches per panel
WIDE = 7.2  # inches: the width of a one-panel figure with its legend below
LEGEND_COLUMNS = 4
ROW = 0.2  # inches per legend row or overhead bar
LINE_STYLES = ("-", "--", ":")  # once the colors are used up, the next round is dashed


@dataclasses.dataclass(frozen=True)
class Figure:
  """One written figure: `out_dir/stem.png` and `out_dir/stem.svg`."""

  kind: str  # one of KINDS
  task: str
  stem: str  # relative to out_dir, without extension, e.g. figures/accuracy_mnist-mlp
  caption: str  # one sentence


def write_figures(
  records: list[dict], selected: list[Selected], overhead: list[dict], out_dir: Path
) -> list[Figure]:
  """Writes every figure that has data; returns them sorted by task, then in KINDS order."""
  (Path(out_dir) / "figures").mkdir(parents=True, exist_ok=True)
  names = {r["optimizer"] for r in records} | {s.optimizer for s in selected}
  names |= {row["optimizer"] for row in overhead}
  palette = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"].colors
  styles = {
    name: {"color": palette[i % len(palette)], "ls": LINE_STYLES[i // len(palette) % 3]}
    for i, name in enumerate(sorted(names))
  }
  tasks = sorted({r["task"] for r in records} | {row["task"] for row in overhead})
  figures = []
  with matplotlib.rc_context(STYLE):
    for task in tasks:
      rows = [s for s in selected if s.task == task]
      drawn = {
        "accuracy": _accuracy(records, rows, styles),
        "step": _step(records, rows, styles),
        "law": _law(records, rows),
        "memory": _memory(records, rows),
        "beta": _beta(records, rows, styles),
        "sensitivity": _sensitivity(records, task, styles),
        "overhead": _overhead([row for row in overhead if row["task"] == task], styles),
      }
      for kind in KINDS:
        if drawn[kind] is None:
          continue
        fig, caption = drawn[kind]
        stem = f"figures/{kind}_{task}"
        fig.suptitle(f"{task}: {kind}")
        fig.savefig(Path(out_dir) / f"{stem}.png", dpi=DPI, metadata={"Software": None})
        fig.savefig(Path(out_dir) / f"{stem}.svg", metadata={"Date": None, "Creator": None})
        figures.append(Figure(kind, task, stem, caption))
  return figures


def _new(panels: int, cols: int = 3, height: float = PANEL[1]) -> tuple[MplFigure, list]:
  """A pyplot-free figure with `panels` axes, at most `cols` per row, `height` inches each."""
  cols = min(panels, cols)
  rows = math.ceil(panels / cols)
  fig = MplFigure(figsize=(PANEL[0] * cols, height * rows), dpi=DPI, layout="constrained")
  axes = fig.subplots(rows, cols, squeeze=False).ravel()
  for ax in axes[panels:]:
    ax.set_visible(False)
  return fig, list(axes[:panels])


def _legend_below(fig: MplFigure, ax) -> None:
  """The axes' legend below it in columns, the figure made wide and tall enough to hold it."""
  entries = len(ax.get_legend_handles_labels()[1])
  fig.set_size_inches(WIDE, PANEL[1] + ROW * math.ceil(entries / LEGEND_COLUMNS))
  fig.legend(loc="outside lower center", ncols=min(entries, LEGEND_COLUMNS))


def _setting(record: dict) -> tuple[str, str, str, str]:
  """A record's setting: task, optimizer, protocol and hyperparameters (as canonical JSON)."""
  hparams = store_lib.canonical_json(record["hparams"])
  return *records_lib.group(record), hparams


def _runs(records: list[dict], row: Selected) -> list[dict]:
  """The records of a selected setting, by seed."""
  setting = (row.task, row.optimizer, row.protocol, store_lib.canonical_json(row.hparams))
  return sorted((r for r in records if _setting(r) == setting), key=lambda r: r["seed"])


def _floats(values: list) -> np.ndarray:
  """A curve as float64, None (after a divergence) as NaN."""
  return np.array([math.nan if v is None else v for v in values], np.float64)


def _seeds_text(counts: list[int]) -> str:
  """The seed count for a caption: "2 seeds", or "2–3 seeds" when settings differ."""
  low, high = min(counts), max(counts)
  return f"{low} seed{'s' * (high > 1)}" if low == high else f"{low}–{high} seeds"


def accuracy_bands(
  records: list[dict], row: Selected
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """Eval steps, and the mean, min and max over seeds of the test accuracy in percent."""
  runs = _runs(records, row)
  curves = 100 * np.stack([_floats(r["curves"]["test_accuracy"]) for r in runs])
  steps = np.asarray(runs[0]["curves"]["eval_step"])
  return steps, curves.mean(0), curves.min(0), curves.max(0)


def _accuracy(records: list[dict], rows: list[Selected], styles: dict):
  """Test accuracy bands of the selected settings, and the caption; None without any (a task
  that reports no accuracy has none)."""
  rows = [row for row in rows if not math.isnan(row.test_accuracy[0])]
  if not rows:
    return None
  fig, (ax,) = _new(1)
  for row in rows:
    steps, mean, low, high = accuracy_bands(records, row)
    style = styles[row.optimizer]
    ax.fill_between(steps, low, high, color=style["color"], alpha=0.2, lw=0)
    if len(steps) == 1:  # one evaluation (steps <= eval_every): a line of one point is invisible
      style = {**style, "marker": "o"}
      ax.vlines(steps, low, high, color=style["color"], alpha=0.5)
    ax.plot(steps, mean, **style, lw=1.5, label=row.optimizer)
  ax.set(xlabel="step", ylabel="test accuracy (%)")
  _legend_below(fig, ax)
  seeds = _seeds_text([len(_runs(records, row)) for row in rows])
  caption = (
    "Test accuracy of each optimizer's selected setting vs training step: "
    f"mean over {seeds} as a line, min–max over seeds as a shaded band."
  )
  return fig, caption


def effective_steps(records: list[dict], row: Selected) -> tuple[np.ndarray, np.ndarray] | None:
  """Eval steps and the mean over seeds of a selected setting's effective step (None: no curve).

  Records written before the effective step was recorded have no curve.
  """
  runs = _runs(records, row)
  if any("effective_step" not in r["curves"] for r in runs):
    return None
  values = np.stack([_floats(r["curves"]["effective_step"]) for r in runs])
  return np.asarray(runs[0]["curves"]["eval_step"]), values.mean(0)


def _step(records: list[dict], rows: list[Selected], styles: dict):
  """The effective step of the selected settings vs step, log scale; None without any."""
  curves = [(row, effective_steps(records, row)) for row in rows]
  curves = [(row, *curve) for row, curve in curves if curve is not None]
  if not curves:
    return None
  fig, (ax,) = _new(1)
  dropped = []
  for row, steps, step in curves:
    positive = np.where(step > 0, step, np.nan)  # a log axis has no room for W(L) <= 0
    if np.isnan(positive).all():
      dropped.append(row.optimizer)
      continue
    style = {**styles[row.optimizer], "marker": "o", "ms": 3}
    ax.plot(steps, positive, **style, lw=1.2, label=row.optimizer)
  ax.set(xlabel="step", ylabel="effective step", yscale="log")
  _legend_below(fig, ax)
  seeds = _seeds_text([len(_runs(records, row)) for row, *_ in curves])
  missing = f" Not positive anywhere, so not drawn: {', '.join(dropped)}." if dropped else ""
  caption = (
    "Effective step of each optimizer's selected setting at each evaluation, mean over "
    f"{seeds}, log scale: lr(t) for SGD- and Adam-like steps, lr(t) / (1 - β) for heavy ball,"
    " c1(t) W(L_t) for RLLC and fixed laws (W(L) = aᵀ(I − B)⁻¹L, rllc analyze), η(t) for"
    f" adaptive memory (rllc.analysis.step).{missing}"
  )
  return fig, caption


def unit_names(spec: str, count: int) -> list[str]:
  """The memory units' labels (rllc.spec: "M2(0.6)[1]", "CM(0.9i).re", ...), or c1, c2, ..."""
  try:
    bare, _ = split_initial_law(split_options(spec)[0].removeprefix(FIXED_LAW_PREFIX))
    names = list(spec_lib.parse_propagator(bare).labels)
  except ValueError:  # not a spec
    names = []
  return names if len(names) == count else [f"c{i + 1}" for i in range(count)]


def _mean_curve(runs: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
  """The `key` curve's steps and its mean over seeds (entries may be lists: an axis each)."""
  values = np.stack([np.asarray(r["curves"][key], np.float64) for r in runs])
  return np.asarray(runs[0]["curves"]["step"]), values.mean(0)


def _law(records: list[dict], rows: list[Selected]):
  """One panel per selected setting with a law curve, and the caption; None without any."""
  laws = []
  for row in rows:
    runs = _runs(records, row)
    if runs[0]["family"] in ("rllc", "fixed-law") and "law" in runs[0]["curves"]:
      laws.append((row.optimizer, *_mean_curve(runs, "law"), len(runs)))
  if not laws:
    return None
  fig, axes = _new(len(laws))
  for ax, (optimizer, steps, law, _) in zip(axes, laws, strict=True):
    for unit, name in enumerate(unit_names(optimizer, law.shape[1])):
      ax.plot(steps, law[:, unit], color=f"C{unit % 10}", lw=1.2, label=name)
    ax.set(title=optimizer, xlabel="step", ylabel="law coefficient")
    ax.legend()
  seeds = _seeds_text([n for *_, n in laws])
  caption = (
    "Learning-law coefficients vs step of each selected RLLC setting, one line per memory "
    f"unit, mean over {seeds}."
  )
  return fig, caption


def memory_reading(records: list[dict], row: Selected):
  """Steps, h W(L_t) and h S(L_t) / 2 of a selected RLLC setting's mean law; None if it has none.

  h is the setting's learning rate c1 (theta_t = theta_{t-1} - c1 M_t L_t); a
  propagator with spectral radius >= 1 has no memoryless reading (None).
  """
  runs = _runs(records, row)
  if runs[0]["family"] != "rllc" or "law" not in runs[0]["curves"]:
    return None
  steps, law = _mean_curve(runs, "law")
  try:
    h = learning_rate_np(row.hparams, steps - 1)[:, None]  # c1(t), constant without a schedule
    effective = h * linear.law_trajectory(split_options(row.optimizer)[0], law)
  except ValueError:
    return None
  return steps, effective[:, 0], effective[:, 1]


def _memory(records: list[dict], rows: list[Selected]):
  """Per selected RLLC setting, h W(L_t) and h S(L_t) / 2 of its mean law; None without any."""
  panels = [(row.optimizer, memory_reading(records, row)) for row in rows]
  panels = [(optimizer, *reading) for optimizer, reading in panels if reading is not None]
  if not panels:
    return None
  fig, axes = _new(len(panels))
  for ax, (optimizer, steps, rate, penalty) in zip(axes, panels, strict=True):
    ax.plot(steps, rate, color="C0", lw=1.2, label="effective lr h W(L_t)")
    ax.plot(steps, penalty, color="C3", lw=1.2, label="penalty h S(L_t) / 2")
    ax.axhline(0.0, color="0.5", lw=0.6, ls=":")
    ax.set(title=optimizer, xlabel="step", ylabel="per step")
    ax.legend()
  caption = (
    "The memoryless reading of each selected RLLC setting's mean law L_t (memory paper, formula"
    " (9); rllc analyze): theta <- theta - h W grad[L + (h S / 2) |grad L|^2], the law frozen at"
    " each step; a penalty below zero means the memory anti-regularizes."
  )
  return fig, caption


def _beta(records: list[dict], rows: list[Selected], styles: dict):
  """β_t of the selected adaptive-memory settings, and the caption; None without any."""
  betas, per_leaf = [], False
  for row in rows:
    runs = _runs(records, row)
    if runs[0]["family"] == "adaptive-memory" and "beta" in runs[0]["curves"]:
      steps, beta = _mean_curve(runs, "beta")
      per_leaf |= beta.ndim > 1
      betas.append((row.optimizer, steps, beta.reshape(len(steps), -1).mean(1), len(runs)))
  if not betas:
    return None
  fig, (ax,) = _new(1)
  for optimizer, steps, beta, _ in betas:
    ax.plot(steps, beta, **styles[optimizer], lw=1.2, label=optimizer)
  ax.set(xlabel="step", ylabel="β_t")
  _legend_below(fig, ax)
  leaves = ", and over the parameter leaves where β is per leaf" if per_leaf else ""
  caption = (
    "Momentum coefficient β_t vs step of each selected adaptive-memory setting, mean over "
    f"{_seeds_text([n for *_, n in betas])}{leaves}."
  )
  return fig, caption


def sensitivity_points(
  records: list[dict], task: str
) -> dict[str, list[tuple[float, float | None, bool]]]:
  """Per optimizer on `task`, sorted by learning rate: (lr, score, diverged).

  A setting (hparams and protocol) scores the mean final validation loss over its
  seeds, or diverged if any seed diverged or has no finite loss. A learning rate
  shared by several settings keeps the best score; it is diverged (score None)
  only if all of its settings are.
  """
  settings = defaultdict(list)
  for r in records:
    if r["task"] == task:
      settings[_setting(r)].append(r)
  best = defaultdict(lambda: math.inf)
  for (_, optimizer, _, _), runs in settings.items():
    losses = [records_lib.final_metrics(r)["valid_loss"] for r in runs]
    ok = all(r["status"] == "ok" for r in runs)
    ok = ok and all(v is not None and math.isfinite(v) for v in losses)
    lr = runs[0]["hparams"]["learning_rate"]
    best[optimizer, lr] = min(best[optimizer, lr], float(np.mean(losses)) if ok else math.inf)
  points = defaultdict(list)
  for (optimizer, lr), score in sorted(best.items()):
    diverged = not math.isfinite(score)
    points[optimizer].append((lr, None if diverged else score, diverged))
  return dict(points)


def _sensitivity(records: list[dict], task: str, styles: dict):
  """The plot of sensitivity_points, diverged learning rates as x at the top edge."""
  points = sensitivity_points(records, task)
  if not points:
    return None
  fig, (ax,) = _new(1)
  scores = []
  for optimizer, rows in points.items():
    lrs = [lr for lr, _, diverged in rows if not diverged]
    finite = [score for _, score, diverged in rows if not diverged]
    scores += finite
    ax.plot(lrs, finite, **styles[optimizer], marker="o", ms=4, label=optimizer)
    lost = [lr for lr, _, diverged in rows if diverged]
    if lost:  # at the top edge: x in data, y in axes coordinates
      ax.plot(
        lost,
        [1.0] * len(lost),
        ls="none",
        marker="x",
        color=styles[optimizer]["color"],
        ms=8,
        mew=2,
        clip_on=False,
        transform=ax.get_xaxis_transform(),
        gid=f"diverged-{optimizer}",
      )
  if any(diverged for rows in points.values() for *_, diverged in rows):
    ax.plot([], [], ls="none", marker="x", color="0.3", mew=2, label="diverged")
  ax.set_xscale("log")
  if scores and min(scores) > 0:
    ax.set_yscale("log")
  ax.set(xlabel="learning rate", ylabel="final validation loss")
  _legend_below(fig, ax)
  caption = (
    "Final validation loss vs learning rate over each optimizer's whole grid (mean over seeds, "
    "the best setting where several share a learning rate); an x at the top edge marks a "
    "learning rate where every setting had a diverged seed."
  )
  return fig, caption


def _measured(row: dict) -> bool:
  """Whether an overhead row has both sizes."""
  return row["state_bytes"] is not None and bool(row["param_bytes"])


def _overhead(rows: list[dict], styles: dict):
  """Bars of state size and step time per optimizer, and the caption; None without rows."""
  if not rows:
    return None
  fig, axes = _new(2, height=max(PANEL[1], 1.0 + ROW * len(rows)))
  state = [r["state_bytes"] / r["param_bytes"] if _measured(r) else None for r in rows]
  time = [r["step_time_ratio"] for r in rows]
  panels = ((state, "state size / parameter size"), (time, "step time / Adam's"))
  for ax, (values, label) in zip(axes, panels, strict=True):
    for y, (row, value) in enumerate(zip(rows, values, strict=True)):
      if value is None:
        ax.text(0, y, " n/a", ha="left", va="center", color="0.4")
      else:
        ax.barh(y, value, color=styles[row["optimizer"]]["color"], height=0.7)
        ax.text(value, y, f" {value:.2f}", ha="left", va="center")
    ax.axvline(1.0, color="0.3", lw=0.8, ls="--")
    ax.set_yticks(range(len(rows)), [r["optimizer"] for r in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)  # the first row on top
    ax.set_xlim(0, 1.15 * max([1.0] + [v for v in values if v is not None]))
    ax.set_xlabel(label)
  caption = (
    "Optimizer state size relative to the parameters, and time per step relative to Adam's on "
    "the same task, per optimizer (n/a where not measured)."
  )
  return fig, caption
