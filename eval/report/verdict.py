"""The report's first answer: does each of our families beat the best baseline, task by task?

Per protocol (its own rule's table, eval.report.comparison), task, metric
(final test accuracy, then final test loss; loss only on a task that reports
no accuracy) and family of ours with a number there (RLLC, fixed-law memory,
adaptive memory; the catalog's `ours`), one row:

- the family's best row by that metric, as displayed; ties: the first in the
  table's order;
- the best baseline of that column, as the table marks it;
- the difference (ours - baseline, in display units), its Welch 95% interval,
  and the one-sided Welch's t-test over seeds, H1: ours is better, computed
  whichever side is ahead (so a family behind the baseline shows a p above
  0.5, not a blank);
- Holm's adjustment over this section's tests only: the answer is its own
  family of hypotheses, stated before any run (a protocol's question), and
  not the comparison tables' (eval.report.robustness.adjust), which test only
  the cells that win as displayed;
- the seeds per arm a one-sided test would need for 80% power at the
  measured means and spreads (eval.report.robustness.seeds_needed).

A row says "beats" only when ours is strictly better as displayed and
"significant" only when its Holm-adjusted p is below comparison.ALPHA; a row
that does not beat says "behind" when the Welch 95% interval of the
difference lies wholly on the baseline's side (uncorrected: a reading of the
interval, not a test of the opposite hypothesis).
"""

import dataclasses

from eval.report import comparison, robustness, statistics
from rllc import catalog


@dataclasses.dataclass(frozen=True)
class Answer:
  """One (protocol, task, family of ours): its best row against the best baseline."""

  protocol: str
  task: str
  family: str
  metric: comparison.Metric
  ours: str  # the family's best optimizer on the task
  baseline: str  # the column's best baseline
  ours_cell: comparison.Cell
  baseline_cell: comparison.Cell
  test: comparison.Test  # p one-sided (H1: ours better), p_adjusted Holm over the section

  @property
  def beats(self) -> bool:
    return self.metric.better(self.ours_cell.mean, self.baseline_cell.mean)

  @property
  def behind(self) -> bool:
    """Whether the baseline is better beyond the Welch 95% interval: it excludes 0 on its side."""
    low, high = self.test.interval or (0.0, 0.0)
    return low > 0 if self.metric.lower_is_better else high < 0

  @property
  def verdict(self) -> str:
    if not self.beats:
      if self.ours_cell.mean == self.baseline_cell.mean:
        return "ties"
      return "does not beat; behind, 95% CI excludes 0" if self.behind else "does not beat"
    if self.test.p is None:
      return f"beats as displayed; no test: {self.test.why}"
    return "beats, significant" if self.test.significant else "beats, not significant"


def answers(tables: list[comparison.Comparison]) -> list[Answer]:
  """The rows of the answer for each table, in table, task and family order, Holm applied."""
  found = [a for table in tables for a in _table_answers(table)]
  tested = [i for i, a in enumerate(found) if a.test.p is not None]
  adjusted = statistics.holm([found[i].test.p for i in tested]) if tested else []
  for i, p in zip(tested, adjusted, strict=True):
    test = dataclasses.replace(found[i].test, p_adjusted=float(p), family=len(tested))
    found[i] = dataclasses.replace(found[i], test=test)
  return found


def _table_answers(table: comparison.Comparison) -> list[Answer]:
  found = []
  families = [f.name for f in catalog.active().families if f.ours]
  for task in table.tasks:
    for metric in reversed(comparison.METRICS):  # accuracy first, then loss
      cells = {opt: table.cells[opt, task, metric.key] for opt in table.optimizers}
      baseline = next((o for o, c in cells.items() if c.best_baseline), None)
      if baseline is None:  # no baseline here, or an "n/a" accuracy
        continue
      for family in families:
        mine = [o for o, c in cells.items() if table.families[o] == family and c.state == "ok"]
        if mine:
          best = _best(mine, cells, metric)
          found.append(_answer(table, task, family, metric, best, baseline))
  return found


def _best(optimizers: list[str], cells: dict, metric: comparison.Metric) -> str:
  best = optimizers[0]
  for opt in optimizers[1:]:
    if metric.better(cells[opt].mean, cells[best].mean):
      best = opt
  return best


def _answer(table, task, family, metric, ours: str, baseline: str) -> Answer:
  mine = metric.values(table.selected[ours, task])
  theirs = metric.values(table.selected[baseline, task])
  test = dataclasses.replace(
    comparison.welch(mine, theirs, metric, baseline),
    interval=robustness.interval(mine, theirs),
    seeds_needed=robustness.seeds_needed(mine, theirs, metric),
  )
  return Answer(
    table.protocol,
    task,
    family,
    metric,
    ours,
    baseline,
    table.cells[ours, task, metric.key],
    table.cells[baseline, task, metric.key],
    test,
  )
