"""What a report's figures show, as data: one type per kind of figure, no matplotlib.

eval.report.figures and eval.report.review_sections fill these from the
store's records; eval.report.draw draws them. `names` is every optimizer of
the report in sorted order, which fixes each one's color and line style
across all figures.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class AccuracyPlot:
  """Test accuracy (%) vs step per selected setting: mean line, min-max band over seeds."""

  names: tuple[str, ...]
  bands: tuple[
    tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray], ...
  ]  # opt, steps, mean, low, high


@dataclasses.dataclass(frozen=True)
class StepPlot:
  """The effective step vs step per selected setting, log scale (NaN where not positive)."""

  names: tuple[str, ...]
  curves: tuple[tuple[str, np.ndarray, np.ndarray], ...]  # optimizer, steps, positive steps


@dataclasses.dataclass(frozen=True)
class LawPlot:
  """A panel per RLLC setting: its law's coefficients vs step, a line per memory unit."""

  panels: tuple[tuple[str, np.ndarray, np.ndarray, tuple[str, ...]], ...]  # opt, steps, law, units


@dataclasses.dataclass(frozen=True)
class MemoryPlot:
  """A panel per RLLC setting: h W(L_t) and h S(L_t) / 2 vs step."""

  panels: tuple[tuple[str, np.ndarray, np.ndarray, np.ndarray], ...]  # opt, steps, rate, penalty


@dataclasses.dataclass(frozen=True)
class BetaPlot:
  """β_t vs step per adaptive-memory setting."""

  names: tuple[str, ...]
  curves: tuple[tuple[str, np.ndarray, np.ndarray], ...]  # optimizer, steps, beta


@dataclasses.dataclass(frozen=True)
class SensitivityPlot:
  """Per optimizer, (learning rate, score or None, diverged) sorted by learning rate."""

  names: tuple[str, ...]
  points: dict[str, list[tuple[float, float | None, bool]]]


@dataclasses.dataclass(frozen=True)
class OverheadPlot:
  """Bars per optimizer: state size over parameter size, step time over Adam's (None: n/a)."""

  names: tuple[str, ...]
  rows: tuple[tuple[str, float | None, float | None], ...]  # optimizer, state, time


@dataclasses.dataclass(frozen=True)
class ProfilePlot:
  """Performance profiles rho(tau), a panel per cost (rho None: no task to compare on)."""

  names: tuple[str, ...]
  taus: np.ndarray
  tau_max: float
  panels: tuple[tuple[str, tuple[str, ...], np.ndarray | None], ...]  # title, optimizers, rho


@dataclasses.dataclass(frozen=True)
class BudgetPlot:
  """Expected test loss and accuracy (%) vs grid points drawn, per optimizer."""

  names: tuple[str, ...]
  curves: tuple[tuple[str, np.ndarray, np.ndarray], ...]  # optimizer, loss, accuracy
