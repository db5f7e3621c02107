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
- Holm's adjustment per protocol, over the tests of every row of ours
  against its column's best baseline (all its tasks and both metrics), so
  that picking a family's best row on the seeds it is tested on is paid for:
  each protocol asks its own question, and the comparison tables
  (eval.report.robustness.adjust) keep their own family, every win of the
  report;
- the seeds per arm a one-sided test would need for 80% power at the
  measured means and spreads (eval.report.robustness.seeds_needed).

A row says "beats" only when ours is strictly better as displayed and
"significant" only when its Holm-adjusted p is below comparison.ALPHA; a row
that does not beat says "behind" when the Welch 95% interval of the
difference lies wholly on the baseline's side (uncorrected: a reading of the
interval, not a test of the opposite hypothesis).
"""

import dataclasses

from eval.report import comparison, robustness
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
  """The rows of the answer for each table, in table, task, metric and family order.

  Holm's adjustment is per table (a protocol's question) over every row of ours
  against the column's best baseline, on every task and metric, not over the
  best rows alone: a family's best row is picked on the seeds it is tested on,
  and the family of hypotheses pays for that pick.
  """
  return [a for table in tables for a in _table_answers(table)]


def _table_answers(table: comparison.Comparison) -> list[Answer]:
  every = {}  # (task, metric key, optimizer) -> its test against the best baseline
  best = []  # (task, metric, family, optimizer, baseline): the rows the answer shows
  families = [f.name for f in catalog.active().families if f.ours]
  for task in table.tasks:
    for metric in reversed(comparison.METRICS):  # accuracy first, then loss
      cells = {opt: table.cells[opt, task, metric.key] for opt in table.optimizers}
      baseline = next((o for o, c in cells.items() if c.best_baseline), None)
      if baseline is None:  # no baseline here, or an "n/a" accuracy
        continue
      for family in families:
        mine = [o for o, c in cells.items() if table.families[o] == family and c.state == "ok"]
        for opt in mine:
          every[task, metric.key, opt] = _test(table, task, metric, opt, baseline)
        if mine:
          best.append((task, metric, family, _best(mine, cells, metric), baseline))
  every = robustness.with_holm(every)
  return [
    Answer(
      table.protocol,
      task,
      family,
      metric,
      ours,
      baseline,
      table.cells[ours, task, metric.key],
      table.cells[baseline, task, metric.key],
      every[task, metric.key, ours],
    )
    for task, metric, family, ours, baseline in best
  ]


def _best(optimizers: list[str], cells: dict, metric: comparison.Metric) -> str:
  best = optimizers[0]
  for opt in optimizers[1:]:
    if metric.better(cells[opt].mean, cells[best].mean):
      best = opt
  return best


def _test(table, task, metric, ours: str, baseline: str) -> comparison.Test:
  """The one-sided Welch test of a row of ours against the baseline, with interval and power."""
  mine = metric.values(table.selected[ours, task])
  theirs = metric.values(table.selected[baseline, task])
  return robustness.completed(
    comparison.welch(mine, theirs, metric, baseline), mine, theirs, metric
  )
