"""The report's review sections (issue 18): are the comparison's wins robust?

From the comparison tables (eval.report.comparison) and the report's tidy frame
(eval.store.tidy.report_frame), with the mathematics of eval.report.statistics;
this module computes, eval.report.review_sections writes the sections and
eval.report.draw draws the figures. Per comparison table (a protocol under a
selection rule):

- Performance profiles over the table's tasks, of the selected setting's
  mean test loss and mean test error (1 - accuracy): ratio to the best
  optimizer on each task, rho(tau) for tau in [1, TAU_MAX] as a figure, and
  the area score. Needs two or more tasks.
- Aggregates over tasks x seeds: the mean and the interquartile mean of the
  normalized score (a seed's test loss or error over the best optimizer's
  mean on its task, the profile's ratio run by run), and the probability of
  improvement P(ours < best baseline), each with a stratified-bootstrap
  interval (RESAMPLES resamples of the seeds within each task, numpy seed
  BOOTSTRAP_SEED). Needs two or more tasks.
- Tuning-budget curves: for each (task, optimizer), the expected test loss
  and accuracy of the setting that the table's rule selects from n grid
  points drawn at random, n = 1 ... N, exact.

And over the whole report, `adjust`: Holm's adjustment over every test of
every table, a Welch interval of each tested difference, and the seeds per
arm that would detect it with 80% power; eval.report.render shows them in the
significance tables and marks ‡ by the adjusted p.
"""

import dataclasses
import math
import re

import numpy as np

from eval.report import comparison, selection, statistics

TAU_MAX = 2.0  # the profiles' range and the area score's upper limit
TAUS = np.linspace(1.0, TAU_MAX, 401)  # where the figure evaluates rho
RESAMPLES = 2000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95
POWER = 0.8
POWER_LIMIT = 1000  # seeds per arm searched; beyond: "not reachable"
BUDGET_AT = (1, 5)  # the table's fixed budgets, beside an equal budget and the full grid

# The profiles' and aggregates' costs: lower is better.
COSTS = {"loss": "test loss", "error": "test error"}


def cost_tasks(table: comparison.Comparison, key: str) -> tuple[str, ...]:
  """The tasks a cost compares on: the test error needs a task that reports accuracy."""
  return tuple(t for t in table.tasks if key == "loss" or t not in table.without_accuracy)


def seed_costs(row: selection.Selected, key: str) -> np.ndarray:
  """A selected setting's per-seed test loss, or test error = 1 - accuracy."""
  if key == "loss":
    return np.asarray(row.seed_test_loss, np.float64)
  return 1.0 - np.asarray(row.seed_test_accuracy, np.float64)


# ---------------------------------------------------------------- what is computed


@dataclasses.dataclass(frozen=True)
class Profile:
  """Performance profile of one cost over a table's tasks."""

  cost: str  # a key of COSTS
  optimizers: tuple[str, ...]
  ratios: np.ndarray  # (tasks, optimizers); inf: no result (missing or diverged)
  area: np.ndarray  # (optimizers,), statistics.profile_area at TAU_MAX
  best_on: np.ndarray  # (optimizers,), rho(1): the fraction of tasks it is the best on
  results: np.ndarray  # (optimizers,), tasks with a result


@dataclasses.dataclass(frozen=True)
class AggregateRow:
  optimizer: str
  ours: bool
  mean: statistics.Interval | None  # None: see why
  iqm: statistics.Interval | None
  improvement: statistics.Interval | None  # P(this < the best baseline), ours only
  why: str = ""


@dataclasses.dataclass(frozen=True)
class Aggregate:
  """Normalized-score aggregates of one cost over a table's tasks x seeds."""

  cost: str
  tasks: tuple[str, ...]  # the tasks aggregated over
  left_out: tuple[str, ...]  # tasks whose best mean cost is 0 (no ratio), or nobody finished
  baseline: str | None  # the baseline of the lowest mean normalized score
  rows: tuple[AggregateRow, ...]


@dataclasses.dataclass(frozen=True)
class Budget:
  """Expected test loss and accuracy of validation's pick among n random grid points."""

  task: str
  optimizer: str
  loss: np.ndarray  # (N,): n = 1 ... N
  accuracy: np.ndarray  # (N,), percent
  diverged: np.ndarray  # (N,): P(every drawn point had a diverged seed)

  @property
  def points(self) -> int:
    return len(self.loss)


@dataclasses.dataclass(frozen=True)
class Review:
  """The review sections of one comparison table."""

  protocol: str
  rule: str
  tasks: tuple[str, ...]
  seeds: tuple[int, ...]  # seed counts of the selected settings
  profiles: tuple[Profile, ...]  # empty with fewer than 2 tasks
  aggregates: tuple[Aggregate, ...]  # likewise
  budgets: tuple[Budget, ...]

  @property
  def slug(self) -> str:
    """Protocol and rule for file names: "quick_valid_loss"; a configuration label such as
    "quick (300 steps)" loses its spaces and brackets, which break Markdown image links."""
    return re.sub(r"[^\w.-]+", "-", f"{self.protocol}_{self.rule}").strip("-")


def review(table: comparison.Comparison, grids: dict) -> Review:
  """The review sections of a comparison table, from it and the runs of each grid.

  grids: (task, optimizer, protocol) -> that grid's rows of the report's
  tidy frame (eval.store.tidy.report_frame), as `grids_of` groups them.
  """
  several = len(table.tasks) >= 2
  return Review(
    protocol=table.protocol,
    rule=table.rule,
    tasks=table.tasks,
    seeds=table.seeds,
    profiles=tuple(_profile(table, key) for key in COSTS) if several else (),
    aggregates=tuple(_aggregate(table, key) for key in COSTS) if several else (),
    budgets=_budgets(table, grids),
  )


def grids_of(frame) -> dict:
  """The tidy frame's rows by grid, (task, optimizer, protocol) -> rows, in one pass."""
  return dict(tuple(frame.groupby(["task", "optimizer", "protocol"], sort=False)))


def _profile(table: comparison.Comparison, key: str) -> Profile:
  tasks = cost_tasks(table, key)
  if not tasks:  # no task reports accuracy: the error profile has nothing to compare
    nothing = np.full(len(table.optimizers), np.nan)
    return Profile(
      key,
      table.optimizers,
      np.zeros((0, len(table.optimizers))),
      nothing,
      nothing,
      np.zeros(len(table.optimizers), int),
    )
  costs = np.full((len(tasks), len(table.optimizers)), np.inf)
  for p, task in enumerate(tasks):
    for s, opt in enumerate(table.optimizers):
      row = table.selected.get((opt, task))
      if row is not None:
        costs[p, s] = seed_costs(row, key).mean()
  ratios = statistics.performance_ratios(costs)
  return Profile(
    cost=key,
    optimizers=table.optimizers,
    ratios=ratios,
    area=statistics.profile_area(ratios, TAU_MAX),
    best_on=statistics.performance_profile(ratios, [1.0])[:, 0],
    results=np.isfinite(costs).sum(axis=0),
  )


def _bootstrap(strata, statistic) -> statistics.Interval:
  return statistics.stratified_bootstrap(strata, statistic, RESAMPLES, BOOTSTRAP_SEED, CONFIDENCE)


def _aggregate(table: comparison.Comparison, key: str) -> Aggregate:
  references, tasks, left_out = [], [], []
  compared = cost_tasks(table, key)
  for task in table.tasks:
    if task not in compared:
      left_out.append(task)
      continue
    means = [
      seed_costs(table.selected[opt, task], key).mean()
      for opt in table.optimizers
      if (opt, task) in table.selected
    ]
    if means and min(means) > 0:
      references.append(min(means))
      tasks.append(task)
    else:
      left_out.append(task)
  complete = {}  # optimizer -> per-task seed costs, for those with a result on every task
  rows = {}
  for opt in table.optimizers:
    absent = [t for t in tasks if (opt, t) not in table.selected]
    if absent or not tasks:
      why = "no tasks" if not tasks else "no result on " + ", ".join(absent)
      rows[opt] = AggregateRow(opt, table.is_ours(opt), None, None, None, why)
      continue
    complete[opt] = [seed_costs(table.selected[opt, t], key) for t in tasks]
  for opt, values in complete.items():
    strata = [(v,) for v in values]
    mean = _bootstrap(strata, lambda arm: statistics.mean_normalized_score(arm, references))
    iqm = _bootstrap(strata, lambda arm: statistics.interquartile_mean(arm, references))
    rows[opt] = AggregateRow(opt, table.is_ours(opt), mean, iqm, None)
  baselines = [o for o in complete if not table.is_ours(o)]
  baseline = min(baselines, key=lambda o: (rows[o].mean.point, o)) if baselines else None
  for opt in complete:
    if table.is_ours(opt) and baseline is not None:
      strata = list(zip(complete[opt], complete[baseline], strict=True))
      improvement = _bootstrap(strata, statistics.probability_of_improvement)
      rows[opt] = dataclasses.replace(rows[opt], improvement=improvement)
  return Aggregate(
    cost=key,
    tasks=tuple(tasks),
    left_out=tuple(left_out),
    baseline=baseline,
    rows=tuple(rows[o] for o in table.optimizers),
  )


def grid_points(runs, rule: str, accuracy: bool = True):
  """(validation scores, lower is better, inf if a seed diverged; mean test loss; mean test
  accuracy, NaN without `accuracy`) of every setting of one grid, in canonical setting order.

  runs: the grid's rows of the tidy frame. A setting counts only if every seed
  finished with the metrics needed (the rule's, test loss, and test accuracy
  with `accuracy`), as in selection.
  """
  how = selection.rule_of(rule)
  sign = 1.0 if how.lower_is_better else -1.0
  needed = [how.name, "test_loss", *(["test_accuracy"] if accuracy else [])]
  valid, loss, acc = [], [], []
  for _, setting in runs.groupby("setting", sort=True):
    ok = bool((setting["status"] == "ok").all() and setting[needed].notna().all(axis=None))
    valid.append(sign * float(np.mean(setting[how.name].to_numpy())) if ok else math.inf)
    loss.append(float(np.mean(setting["test_loss"].to_numpy())) if ok else math.nan)
    measured = ok and accuracy
    acc.append(float(np.mean(setting["test_accuracy"].to_numpy())) if measured else math.nan)
  return np.array(valid), np.array(loss), np.array(acc)


def _budgets(table: comparison.Comparison, grids: dict) -> tuple[Budget, ...]:
  budgets = []
  for task in table.tasks:
    for opt in table.optimizers:
      if (opt, task) not in table.selected:
        continue
      has_accuracy = task not in table.without_accuracy
      runs = grids[task, opt, table.protocol]
      valid, loss, accuracy = grid_points(runs, table.rule, has_accuracy)
      expected_loss, diverged = statistics.budget_curve(valid, loss)
      if has_accuracy:
        expected_accuracy, _ = statistics.budget_curve(valid, accuracy)
      else:
        expected_accuracy = np.full_like(expected_loss, np.nan)
      budgets.append(Budget(task, opt, expected_loss, 100 * expected_accuracy, diverged))
  return tuple(budgets)


# ---------------------------------------------------------------- Holm, intervals and power


def adjust(tables: list[comparison.Comparison]) -> list[comparison.Comparison]:
  """The tables with every test completed: Holm over all tests of all tables, the Welch
  interval of each difference, and the seeds per arm for 80% power at the measured spread.

  The family is every test with a p-value, in table, task, metric and
  optimizer order (Holm's adjustment does not depend on the order).
  """
  tests = {}
  for index, table in enumerate(tables):
    for (opt, task, key), cell in table.cells.items():
      if cell.test is not None:
        metric = next(m for m in comparison.METRICS if m.key == key)
        ours = metric.values(table.selected[opt, task])
        baseline = metric.values(table.selected[cell.test.baseline, task])
        tests[index, opt, task, key] = completed(cell.test, ours, baseline, metric)
  tests = with_holm(tests)
  done = []
  for index, table in enumerate(tables):
    cells = dict(table.cells)
    for (i, opt, task, key), test in tests.items():
      if i == index:
        cells[opt, task, key] = dataclasses.replace(cells[opt, task, key], test=test)
    done.append(dataclasses.replace(table, cells=cells))
  return done


def with_holm(tests: dict) -> dict:
  """The tests, each with `family` (how many have a p) and, where it has a p, its Holm p."""
  tested = [where for where, test in tests.items() if test.p is not None]
  adjusted = dict(zip(tested, statistics.holm([tests[w].p for w in tested]), strict=True))
  return {
    where: dataclasses.replace(
      test,
      p_adjusted=float(adjusted[where]) if where in adjusted else None,
      family=len(tested),
    )
    for where, test in tests.items()
  }


def completed(test: comparison.Test, ours, baseline, metric: comparison.Metric):
  """A test with the Welch interval of its difference and the seeds for 80% power."""
  return dataclasses.replace(
    test,
    interval=interval(ours, baseline),
    seeds_needed=seeds_needed(ours, baseline, metric),
  )


def interval(ours, baseline) -> tuple[float, float] | None:
  """The Welch CONFIDENCE interval of mean(ours) - mean(baseline); None without one."""
  try:
    return statistics.welch_interval(ours, baseline, CONFIDENCE)
  except ValueError:  # fewer than 2 seeds, or no spread
    return None


def seeds_needed(ours, baseline, metric: comparison.Metric) -> str:
  """Seeds per arm for POWER at ALPHA (one-sided Welch) at the measured means and spreads."""
  if min(len(ours), len(baseline)) < 2:
    return "n/a: fewer than 2 seeds"
  sd_a, sd_b = float(np.std(ours, ddof=1)), float(np.std(baseline, ddof=1))
  if sd_a == sd_b == 0:
    return "n/a: no spread"
  difference = float(np.mean(ours) - np.mean(baseline))
  favourable = -difference if metric.lower_is_better else difference
  n = statistics.seeds_for_power(favourable, sd_a, sd_b, comparison.ALPHA, POWER, POWER_LIMIT)
  return f"not reachable below {POWER_LIMIT:,}" if n is None else str(n)
