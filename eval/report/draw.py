"""Draws a report's figure specs (eval.report.document.FigureSpec) as SVG, optionally PNG.

The only module of the report that imports matplotlib: each plot type of
eval.report.plots has its drawing here. The same specs give byte-identical
files, in any process: the figures are drawn without pyplot on fixed
rcParams, SVG ids come from a fixed salt, no file carries a date or version,
and each optimizer keeps one color across the whole report (its place in
the plot's `names`).
"""

import math
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib import ticker
from matplotlib.figure import Figure as MplFigure

from eval.report import plots
from eval.report.document import FigureSpec

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
_OTHER = {"color": "0.3", "ls": "-"}  # a name outside the plot's names


def styles(names: tuple[str, ...]) -> dict[str, dict]:
  """Each optimizer's color and line style: tab10 (tab20 beyond 10 names), then dashes."""
  palette = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"].colors
  return {
    name: {"color": palette[i % len(palette)], "ls": LINE_STYLES[i // len(palette) % 3]}
    for i, name in enumerate(sorted(names))
  }


def write(specs, out_dir: Path, png: bool = False) -> list[Path]:
  """Draws each spec to out_dir/STEM.svg (and .png with `png`); returns the files written."""
  written = []
  with matplotlib.rc_context(STYLE):
    for spec in specs:
      fig = figure(spec)
      path = Path(out_dir) / f"{spec.stem}.svg"
      path.parent.mkdir(parents=True, exist_ok=True)
      fig.savefig(path, metadata={"Date": None, "Creator": None})
      written.append(path)
      if png:
        fig.savefig(path.with_suffix(".png"), dpi=DPI, metadata={"Software": None})
        written.append(path.with_suffix(".png"))
  return written


def figure(spec: FigureSpec) -> MplFigure:
  """The matplotlib figure of a spec, titled (draw inside matplotlib.rc_context(STYLE))."""
  fig = _DRAWERS[type(spec.plot)](spec.plot)
  fig.suptitle(spec.title)
  return fig


def new(panels: int, cols: int = 3, height: float = PANEL[1]) -> tuple[MplFigure, list]:
  """A pyplot-free figure with `panels` axes, at most `cols` per row, `height` inches each."""
  cols = min(panels, cols)
  rows = math.ceil(panels / cols)
  fig = MplFigure(figsize=(PANEL[0] * cols, height * rows), dpi=DPI, layout="constrained")
  axes = fig.subplots(rows, cols, squeeze=False).ravel()
  for ax in axes[panels:]:
    ax.set_visible(False)
  return fig, list(axes[:panels])


def legend_below(fig: MplFigure, ax) -> None:
  """The axes' legend below it in columns, the figure made wide and tall enough to hold it."""
  entries = len(ax.get_legend_handles_labels()[1])
  fig.set_size_inches(WIDE, PANEL[1] + ROW * math.ceil(entries / LEGEND_COLUMNS))
  fig.legend(loc="outside lower center", ncols=min(entries, LEGEND_COLUMNS))


def _accuracy(plot: plots.AccuracyPlot) -> MplFigure:
  colors = styles(plot.names)
  fig, (ax,) = new(1)
  for optimizer, steps, mean, low, high in plot.bands:
    style = colors[optimizer]
    ax.fill_between(steps, low, high, color=style["color"], alpha=0.2, lw=0)
    if len(steps) == 1:  # one evaluation (steps <= eval_every): a line of one point is invisible
      style = {**style, "marker": "o"}
      ax.vlines(steps, low, high, color=style["color"], alpha=0.5)
    ax.plot(steps, mean, **style, lw=1.5, label=optimizer)
  ax.set(xlabel="step", ylabel="test accuracy (%)")
  legend_below(fig, ax)
  return fig


def _step(plot: plots.StepPlot) -> MplFigure:
  colors = styles(plot.names)
  fig, (ax,) = new(1)
  for optimizer, steps, positive in plot.curves:
    if np.isnan(positive).all():  # the caption names it
      continue
    style = {**colors[optimizer], "marker": "o", "ms": 3}
    ax.plot(steps, positive, **style, lw=1.2, label=optimizer)
  ax.set(xlabel="step", ylabel="effective step", yscale="log")
  legend_below(fig, ax)
  return fig


def _law(plot: plots.LawPlot) -> MplFigure:
  fig, axes = new(len(plot.panels))
  for ax, (optimizer, steps, law, units) in zip(axes, plot.panels, strict=True):
    for unit, name in enumerate(units):
      ax.plot(steps, law[:, unit], color=f"C{unit % 10}", lw=1.2, label=name)
    ax.set(title=optimizer, xlabel="step", ylabel="law coefficient")
    ax.legend()
  return fig


def _memory(plot: plots.MemoryPlot) -> MplFigure:
  fig, axes = new(len(plot.panels))
  for ax, (optimizer, steps, rate, penalty) in zip(axes, plot.panels, strict=True):
    ax.plot(steps, rate, color="C0", lw=1.2, label="effective lr h W(L_t)")
    ax.plot(steps, penalty, color="C3", lw=1.2, label="penalty h S(L_t) / 2")
    ax.axhline(0.0, color="0.5", lw=0.6, ls=":")
    ax.set(title=optimizer, xlabel="step", ylabel="per step")
    ax.legend()
  return fig


def _beta(plot: plots.BetaPlot) -> MplFigure:
  colors = styles(plot.names)
  fig, (ax,) = new(1)
  for optimizer, steps, beta in plot.curves:
    ax.plot(steps, beta, **colors[optimizer], lw=1.2, label=optimizer)
  ax.set(xlabel="step", ylabel="β_t")
  legend_below(fig, ax)
  return fig


def _sensitivity(plot: plots.SensitivityPlot) -> MplFigure:
  """Diverged learning rates as x at the top edge."""
  colors = styles(plot.names)
  fig, (ax,) = new(1)
  scores = []
  for optimizer, rows in plot.points.items():
    lrs = [lr for lr, _, diverged in rows if not diverged]
    finite = [score for _, score, diverged in rows if not diverged]
    scores += finite
    ax.plot(lrs, finite, **colors[optimizer], marker="o", ms=4, label=optimizer)
    lost = [lr for lr, _, diverged in rows if diverged]
    if lost:  # at the top edge: x in data, y in axes coordinates
      ax.plot(
        lost,
        [1.0] * len(lost),
        ls="none",
        marker="x",
        color=colors[optimizer]["color"],
        ms=8,
        mew=2,
        clip_on=False,
        transform=ax.get_xaxis_transform(),
        gid=f"diverged-{optimizer}",
      )
  if any(diverged for rows in plot.points.values() for *_, diverged in rows):
    ax.plot([], [], ls="none", marker="x", color="0.3", mew=2, label="diverged")
  ax.set_xscale("log")
  if scores and min(scores) > 0:
    ax.set_yscale("log")
  ax.set(xlabel="learning rate", ylabel="final validation loss")
  legend_below(fig, ax)
  return fig


def _overhead(plot: plots.OverheadPlot) -> MplFigure:
  colors = styles(plot.names)
  rows = plot.rows
  fig, axes = new(2, height=max(PANEL[1], 1.0 + ROW * len(rows)))
  panels = (
    ([r[1] for r in rows], "state size / parameter size"),
    ([r[2] for r in rows], "step time / Adam's"),
  )
  for ax, (values, label) in zip(axes, panels, strict=True):
    for y, (row, value) in enumerate(zip(rows, values, strict=True)):
      if value is None:
        ax.text(0, y, " n/a", ha="left", va="center", color="0.4")
      else:
        ax.barh(y, value, color=colors[row[0]]["color"], height=0.7)
        ax.text(value, y, f" {value:.2f}", ha="left", va="center")
    ax.axvline(1.0, color="0.3", lw=0.8, ls="--")
    ax.set_yticks(range(len(rows)), [r[0] for r in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)  # the first row on top
    ax.set_xlim(0, 1.15 * max([1.0] + [v for v in values if v is not None]))
    ax.set_xlabel(label)
  return fig


def _width(index: int, count: int) -> float:
  """Line widths from 3 down to 1 in drawing order, so that a line drawn over an equal one
  leaves it visible around it (ties are common in profiles and budgets)."""
  return 1.0 + 2.0 * (count - 1 - index) / max(count - 1, 1)


def _profile(plot: plots.ProfilePlot) -> MplFigure:
  colors = styles(plot.names)
  fig, axes = new(2)
  for ax, (title, optimizers, rho) in zip(axes, plot.panels, strict=True):
    if rho is None:  # no task reports accuracy: an empty error panel
      ax.set(title=f"{title}: no task reports accuracy")
      continue
    for s, opt in enumerate(optimizers):
      label = opt if ax is axes[0] else None
      width = _width(s, len(optimizers))
      ax.step(plot.taus, rho[s], where="post", lw=width, label=label, **colors.get(opt, _OTHER))
    ax.set(
      xlabel="tau (ratio to the best on the task)",
      ylabel="fraction of tasks rho(tau)",
      title=title,
      xlim=(1.0, plot.tau_max),
      ylim=(-0.03, 1.03),
    )
  legend_below(fig, axes[0])
  fig.set_size_inches(2 * PANEL[0], fig.get_size_inches()[1])
  return fig


def _budget(plot: plots.BudgetPlot) -> MplFigure:
  colors = styles(plot.names)
  fig, axes = new(2)
  for i, (optimizer, loss, accuracy) in enumerate(plot.curves):
    n = np.arange(1, len(loss) + 1)
    style = colors.get(optimizer, _OTHER)
    width = _width(i, len(plot.curves))
    axes[0].plot(n, loss, marker="o", ms=3, lw=width, label=optimizer, **style)
    axes[1].plot(n, accuracy, marker="o", ms=3, lw=width, **style)
  axes[0].set(xlabel="grid points drawn n", ylabel="expected test loss")
  axes[1].set(xlabel="grid points drawn n", ylabel="expected test accuracy (%)")
  for ax in axes:
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
  legend_below(fig, axes[0])
  fig.set_size_inches(2 * PANEL[0], fig.get_size_inches()[1])
  return fig


_DRAWERS = {
  plots.AccuracyPlot: _accuracy,
  plots.StepPlot: _step,
  plots.LawPlot: _law,
  plots.MemoryPlot: _memory,
  plots.BetaPlot: _beta,
  plots.SensitivityPlot: _sensitivity,
  plots.OverheadPlot: _overhead,
  plots.ProfilePlot: _profile,
  plots.BudgetPlot: _budget,
}
