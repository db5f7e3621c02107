"""The report's review sections (issue 18): are the comparison's wins robust?

From a store's records and the comparison tables (eval.report.comparison), with the
mathematics of eval.report.statistics; this module gathers the inputs, and renders
and draws the results. Per comparison table (a protocol under a selection
rule):

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

import base64
import dataclasses
import html
import math
import re
from collections import defaultdict
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib import ticker

from eval.report import comparison, selection, statistics
from eval.report import figures as figures_lib
from eval.store import records as records_lib
from eval.store import store as store_lib

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


def review(table: comparison.Comparison, records: list[dict]) -> Review:
  """The review sections of a comparison table, from it and the store's records."""
  several = len(table.tasks) >= 2
  return Review(
    protocol=table.protocol,
    rule=table.rule,
    tasks=table.tasks,
    seeds=table.seeds,
    profiles=tuple(_profile(table, key) for key in COSTS) if several else (),
    aggregates=tuple(_aggregate(table, key) for key in COSTS) if several else (),
    budgets=_budgets(table, records),
  )


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


def grid_points(
  records: list[dict], task: str, optimizer: str, protocol: str, rule: str, accuracy: bool = True
):
  """(validation scores, lower is better, inf if a seed diverged; mean test loss; mean test
  accuracy, NaN without `accuracy`) of every setting of an optimizer's grid on a task, in
  canonical setting order."""
  how = selection.rule_of(rule)
  sign = 1.0 if how.lower_is_better else -1.0
  settings = defaultdict(list)
  for r in records:
    if records_lib.group(r) == (task, optimizer, protocol):
      settings[store_lib.canonical_json(r["hparams"])].append(r)
  has_accuracy, accuracy = accuracy, []
  valid, loss = [], []
  for _, runs in sorted(settings.items()):
    finals = [records_lib.final_metrics(r) for r in runs]
    needed = (how.name, "test_loss") + (("test_accuracy",) if has_accuracy else ())
    ok = all(r["status"] == "ok" for r in runs) and all(
      f[name] is not None for f in finals for name in needed
    )
    valid.append(sign * float(np.mean([f[how.name] for f in finals])) if ok else math.inf)
    loss.append(float(np.mean([f["test_loss"] for f in finals])) if ok else math.nan)
    measured = ok and has_accuracy
    accuracy.append(float(np.mean([f["test_accuracy"] for f in finals])) if measured else math.nan)
  return np.array(valid), np.array(loss), np.array(accuracy)


def _budgets(table: comparison.Comparison, records: list[dict]) -> tuple[Budget, ...]:
  budgets = []
  for task in table.tasks:
    for opt in table.optimizers:
      if (opt, task) not in table.selected:
        continue
      has_accuracy = task not in table.without_accuracy
      valid, loss, accuracy = grid_points(
        records, task, opt, table.protocol, table.rule, has_accuracy
      )
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
  tested = []
  for index, table in enumerate(tables):
    for (opt, task, key), cell in table.cells.items():
      if cell.test is not None and cell.test.p is not None:
        tested.append((index, opt, task, key))
  adjusted = statistics.holm([tables[i].cells[o, t, k].test.p for i, o, t, k in tested])
  by_key = {where: float(p) for where, p in zip(tested, adjusted, strict=True)}
  done = []
  for index, table in enumerate(tables):
    cells = dict(table.cells)
    for (opt, task, key), cell in table.cells.items():
      if cell.test is None:
        continue
      metric = next(m for m in comparison.METRICS if m.key == key)
      ours = metric.values(table.selected[opt, task])
      baseline = metric.values(table.selected[cell.test.baseline, task])
      test = dataclasses.replace(
        cell.test,
        p_adjusted=by_key.get((index, opt, task, key)),
        family=len(tested),
        interval=_interval(ours, baseline),
        seeds_needed=_seeds_needed(ours, baseline, metric),
      )
      cells[opt, task, key] = dataclasses.replace(cell, test=test)
    done.append(dataclasses.replace(table, cells=cells))
  return done


def _interval(ours, baseline) -> tuple[float, float] | None:
  try:
    return statistics.welch_interval(ours, baseline, CONFIDENCE)
  except ValueError:  # fewer than 2 seeds, or no spread
    return None


def _seeds_needed(ours, baseline, metric: comparison.Metric) -> str:
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


# ---------------------------------------------------------------- figures


def _styles(records: list[dict]) -> dict:
  """Each optimizer's color and line style, as eval.report.figures gives them (the same names)."""
  names = sorted({r["optimizer"] for r in records})
  palette = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"].colors
  return {
    name: {"color": palette[i % len(palette)], "ls": figures_lib.LINE_STYLES[i // len(palette) % 3]}
    for i, name in enumerate(names)
  }


def _save(fig, out_dir: Path, stem: str, title: str) -> None:
  fig.suptitle(title)
  fig.savefig(out_dir / f"{stem}.png", dpi=figures_lib.DPI, metadata={"Software": None})
  fig.savefig(out_dir / f"{stem}.svg", metadata={"Date": None, "Creator": None})


def write_figures(reviews: list[Review], records: list[dict], out_dir: Path) -> dict:
  """The profile figure of each review with profiles and the budget figure of each of its
  tasks, as PNG and SVG under out_dir/figures; returns {(slug, kind, task): Figure}."""
  (Path(out_dir) / "figures").mkdir(parents=True, exist_ok=True)
  styles = _styles(records)
  written = {}
  with matplotlib.rc_context(figures_lib.STYLE):
    for rev in reviews:
      if rev.profiles:
        stem = f"figures/profile_{rev.slug}"
        _save(_profile_figure(rev, styles), Path(out_dir), stem, f"{rev.slug}: profiles")
        caption = (
          f"Performance profiles over {len(rev.tasks)} tasks: the fraction of tasks on which an"
          f" optimizer's selected mean test loss (left) or test error (right) is within a factor"
          f" tau of the best optimizer's; higher and further left is better."
        )
        written[rev.slug, "profile", ""] = figures_lib.Figure("profile", "all tasks", stem, caption)
      for task in rev.tasks:
        budgets = [b for b in rev.budgets if b.task == task]
        if not budgets:
          continue
        stem = f"figures/budget_{rev.slug}_{task}"
        _save(_budget_figure(budgets, styles), Path(out_dir), stem, f"{task}: tuning budget")
        caption = (
          f"{task}: expected test loss (left) and accuracy (right) of the setting {rev.rule}"
          " selects among n grid points drawn at random, n = 1 to the grid's size (exact)."
        )
        written[rev.slug, "budget", task] = figures_lib.Figure("budget", task, stem, caption)
  return written


def _width(index: int, count: int) -> float:
  """Line widths from 3 down to 1 in drawing order, so that a line drawn over an equal one
  leaves it visible around it (ties are common in profiles and budgets)."""
  return 1.0 + 2.0 * (count - 1 - index) / max(count - 1, 1)


def _profile_figure(rev: Review, styles: dict):
  fig, axes = figures_lib._new(2)
  for ax, profile in zip(axes, rev.profiles, strict=True):
    if not len(profile.ratios):  # no task reports accuracy: an empty error panel
      ax.set(title=f"{COSTS[profile.cost]}: no task reports accuracy")
      continue
    rho = statistics.performance_profile(profile.ratios, TAUS)
    for s, opt in enumerate(profile.optimizers):
      style = styles.get(opt, {"color": "0.3", "ls": "-"})
      label = opt if ax is axes[0] else None
      width = _width(s, len(profile.optimizers))
      ax.step(TAUS, rho[s], where="post", lw=width, label=label, **style)
    ax.set(
      xlabel="tau (ratio to the best on the task)",
      ylabel="fraction of tasks rho(tau)",
      title=COSTS[profile.cost],
      xlim=(1.0, TAU_MAX),
      ylim=(-0.03, 1.03),
    )
  figures_lib._legend_below(fig, axes[0])
  fig.set_size_inches(2 * figures_lib.PANEL[0], fig.get_size_inches()[1])
  return fig


def _budget_figure(budgets: list[Budget], styles: dict):
  fig, axes = figures_lib._new(2)
  for i, budget in enumerate(budgets):
    n = np.arange(1, budget.points + 1)
    style = styles.get(budget.optimizer, {"color": "0.3", "ls": "-"})
    width = _width(i, len(budgets))
    axes[0].plot(n, budget.loss, marker="o", ms=3, lw=width, label=budget.optimizer, **style)
    axes[1].plot(n, budget.accuracy, marker="o", ms=3, lw=width, **style)
  axes[0].set(xlabel="grid points drawn n", ylabel="expected test loss")
  axes[1].set(xlabel="grid points drawn n", ylabel="expected test accuracy (%)")
  for ax in axes:
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
  figures_lib._legend_below(fig, axes[0])
  fig.set_size_inches(2 * figures_lib.PANEL[0], fig.get_size_inches()[1])
  return fig


# ---------------------------------------------------------------- text


def _interval_text(value: statistics.Interval | None, decimals: int = 3) -> str:
  if value is None:
    return "n/a"
  return f"{value.point:.{decimals}f} [{value.low:.{decimals}f}, {value.high:.{decimals}f}]"


def _seeds_text(counts: tuple[int, ...]) -> str:
  return " or ".join(map(str, counts)) or "0"


def profile_note(rev: Review) -> str:
  if not rev.profiles:
    return (
      f"Performance profiles and aggregates compare optimizers across tasks and need two or"
      f" more; this table has {len(rev.tasks)}."
    )
  return (
    f"Over {len(rev.tasks)} tasks ({', '.join(rev.tasks)}). Per task, each optimizer's mean"
    " test loss and mean test error (1 - accuracy) of its selected setting is divided by the"
    " best optimizer's on that task, a ratio r of at least 1; rho(tau) is the fraction of tasks"
    " with r at most tau (Dolan & Moré 2002; AlgoPerf, Dahl et al. 2023). Area: the integral of rho"
    f" over [1, {TAU_MAX:g}]"
    f" over {TAU_MAX - 1:g}, exact (1: the best on every task; 0: never within a factor"
    f" {TAU_MAX:g}). AlgoPerf integrates time ratios to 4; final losses of tuned optimizers"
    f" rarely differ by a factor 2, so the range here is [1, {TAU_MAX:g}]. Best on: rho(1)."
    " A task without a result (missing, or every setting diverged) counts as never within"
    " any tau; the Tasks column says how many tasks each optimizer has." + _error_tasks_note(rev)
  )


def _error_tasks_note(rev: Review) -> str:
  """Which tasks the error profile leaves out: those that report no accuracy."""
  error = next(p for p in rev.profiles if p.cost == "error")
  if len(error.ratios) == len(rev.tasks):
    return ""
  return (
    f" The error profile is over the {len(error.ratios)} of {len(rev.tasks)} tasks that"
    " report an accuracy."
  )


PROFILE_HEAD = ["Optimizer", "Tasks", "Best on (loss)", "Area (loss)", "Best on (error)"]
PROFILE_HEAD += ["Area (error)"]


def _fraction(value: float, decimals: int) -> str:
  return "n/a" if math.isnan(value) else f"{value:.{decimals}f}"


def profile_rows(rev: Review) -> list[list[str]]:
  loss, error = rev.profiles
  return [
    [
      opt,
      f"{int(loss.results[s])}/{len(rev.tasks)}",
      _fraction(loss.best_on[s], 2),
      _fraction(loss.area[s], 3),
      _fraction(error.best_on[s], 2),
      _fraction(error.area[s], 3),
    ]
    for s, opt in enumerate(loss.optimizers)
  ]


def aggregate_note(rev: Review, aggregate: Aggregate, first: bool = True) -> str:
  """What the aggregate table holds; the second cost's note only says what differs."""
  left = (
    f" Left out (no accuracy, or a best mean of 0): {', '.join(aggregate.left_out)}."
    if aggregate.left_out
    else ""
  )
  baseline = aggregate.baseline or "none (no baseline has a result on every task)"
  shape = f"over {len(aggregate.tasks)} tasks x {_seeds_text(rev.seeds)} seeds"
  if not first:
    return (
      f"{COSTS[aggregate.cost].capitalize()}, normalized and aggregated as above, {shape};"
      f" P(better than {baseline})." + left
    )
  few = (
    " With this few seeds per task the resamples take few distinct values: read the"
    " intervals as the spread over seeds and tasks, not as coverage guarantees."
    if max(rev.seeds, default=0) <= 5
    else ""
  )
  return (
    f"{COSTS[aggregate.cost].capitalize()}, normalized: each seed's value over the best"
    f" optimizer's mean on its task (the profile's ratio, run by run; 1 is the best"
    f" optimizer's level, lower is better), {shape}. Mean: the mean over tasks of the mean"
    " over seeds; IQM: the mean of the middle 50% of all runs (rliable)."
    f" P(better than {baseline}), the best baseline by mean: the chance that a random seed of"
    " the row has the lower value than a random seed of it on the same task, ties 1/2, averaged"
    " over tasks (0.5: no difference). Brackets:"
    f" {CONFIDENCE:.0%} stratified-bootstrap percentile intervals, {RESAMPLES:,} resamples of"
    f" the seeds within each task (numpy PCG64, seed {BOOTSTRAP_SEED}), the references held"
    " fixed." + few + left
  )


AGGREGATE_HEAD = ["Optimizer", "Mean [95% CI]", "IQM [95% CI]", "P(better) [95% CI]"]


def aggregate_rows(aggregate: Aggregate) -> list[list[str]]:
  rows = []
  for row in aggregate.rows:
    if row.mean is None:
      rows.append([row.optimizer, f"n/a: {row.why}", "", ""])
      continue
    improvement = _interval_text(row.improvement, 2) if row.ours else ""
    rows.append([row.optimizer, _interval_text(row.mean), _interval_text(row.iqm), improvement])
  return rows


def budget_note(rev: Review) -> str:
  return (
    f"Per task and optimizer, n of its N grid settings drawn at random without replacement,"
    f" the one with the best validation score under the rule {rev.rule} taken (the mean over"
    " seeds; a setting with a diverged seed only when every drawn one diverged): the"
    " expected test loss and accuracy (%) of that setting (Dodge et al. 2019), exact over all"
    " C(N, n) subsets; subsets whose pick diverged are left out, and P(div) says how often that"
    " happens at n = 1. n = N is the comparison table's cell (up to validation ties, which"
    " count at random here). Equal: n = the smallest grid on the task, the budget every"
    " optimizer can spend; a difference that vanishes there was bought by the larger grid."
    " -: the grid has fewer points."
  )


BUDGET_HEAD = ["Task", "Optimizer", "N", "P(div) n=1"]


def _budget_head(metric: str) -> list[str]:
  return [*BUDGET_HEAD, *(f"{metric} n={n}" for n in BUDGET_AT), f"{metric} equal", f"{metric} n=N"]


def budget_rows(rev: Review, key: str) -> list[list[str]]:
  """Rows per (task, optimizer) of the expected loss (key "loss") or accuracy ("acc")."""
  rows = []
  for task in rev.tasks:
    budgets = [b for b in rev.budgets if b.task == task]
    if not budgets:
      continue
    equal = min(b.points for b in budgets)
    for b in budgets:
      curve, decimals = (b.loss, 4) if key == "loss" else (b.accuracy, 2)

      def at(n, curve=curve, decimals=decimals, b=b):
        if n > b.points:
          return "-"
        return "n/a" if math.isnan(curve[n - 1]) else f"{curve[n - 1]:.{decimals}f}"

      cells = [at(n) for n in (*BUDGET_AT, equal, b.points)]
      cells[-2] = f"{cells[-2]} (n={equal})"
      rows.append([task, b.optimizer, str(b.points), f"{b.diverged[0]:.2f}", *cells])
  return rows


def _sections(rev: Review) -> list[tuple[str, str, list[str], list[list[str]]]]:
  """(heading, note, head, rows) of the review's tables."""
  sections = []
  if rev.profiles:
    sections.append(("Performance profiles", profile_note(rev), PROFILE_HEAD, profile_rows(rev)))
    for i, aggregate in enumerate(rev.aggregates):
      title = f"Aggregate over tasks x seeds: {COSTS[aggregate.cost]}"
      note = aggregate_note(rev, aggregate, first=i == 0)
      sections.append((title, note, AGGREGATE_HEAD, aggregate_rows(aggregate)))
  else:
    sections.append(("Performance profiles", profile_note(rev), [], []))
  if rev.budgets:
    note = budget_note(rev)
    sections.append(
      ("Tuning budget: test loss", note, _budget_head("Loss"), budget_rows(rev, "loss"))
    )
    sections.append(
      ("Tuning budget: test accuracy (%)", "", _budget_head("Acc"), budget_rows(rev, "acc"))
    )
  return sections


INTRO = (
  "Whether the comparison's wins survive review: across tasks (performance profiles), over"
  " tasks x seeds with intervals (aggregates), and against the size of each optimizer's grid"
  " (tuning budget). Per-cell intervals are in the significance tables: Welch t intervals,"
  " which assume each cell's seeds are independent normal draws; with 2 or 3 seeds nothing"
  " checks that, and a bootstrap over 3 seeds (at most 10 distinct resample means) is not an"
  " interval."
)


def markdown(reviews: list[Review], figures: dict, row, escape) -> list[str]:
  """The review as Markdown lines; row and escape are eval.report.render's table-row and escape."""
  if not reviews:
    return []
  lines = ["## Review: robustness of the comparison", "", INTRO, ""]
  for rev in reviews:
    lines += [f"### Review of protocol `{rev.protocol}`, selected by `{rev.rule}`", ""]
    for title, note, head, rows in _sections(rev):
      lines += [f"#### {title}", ""]
      if note:
        lines += [note, ""]
      figure = _figure_of(rev, title, figures)
      for fig in figure:
        lines += [f"![{fig.kind} {fig.task}]({fig.stem}.png)", "", fig.caption, ""]
      if head:
        lines += [row(map(escape, head)), row(["---"] * len(head))]
        lines += [row(map(escape, r)) for r in rows]
        lines.append("")
  return lines


def _figure_of(rev: Review, title: str, figures: dict) -> list:
  if title == "Performance profiles":
    return [f for k, f in figures.items() if k[:2] == (rev.slug, "profile")]
  if title.startswith("Tuning budget: test loss"):
    return [figures[k] for k in sorted(figures) if k[:2] == (rev.slug, "budget")]
  return []


def _ascii(escape):
  """escape, after spelling the notes' one non-ASCII letter (Moré) without its accent."""
  return lambda text: escape(text.replace("é", "e"))


def latex(reviews: list[Review], table, escape) -> list[str]:
  """The review's tables as booktabs LaTeX; table and escape are eval.report.render's."""
  lines = []
  escape = _ascii(escape)
  for rev in reviews:
    where = f"Review of protocol {rev.protocol}, selected by {rev.rule}"
    for title, note, head, rows in _sections(rev):
      if not head:
        lines += [f"% {escape(where)}: {escape(note)}", ""]
        continue
      caption = escape(f"{where}. {title}. {note}" if note else f"{where}. {title}.")
      body = [[escape(cell) for cell in r] for r in rows]
      lines += table("l" * 2 + "r" * (len(head) - 2), [escape(h) for h in head], body, caption)
  if lines:
    lines = [f"% {escape(INTRO)}", "", *lines]
  return lines


def page(reviews: list[Review], figures: dict, table, out_dir: Path) -> list[str]:
  """The review as HTML; table is eval.report.render's HTML table; figures embedded."""

  if not reviews:
    return []
  esc = html.escape
  lines = ["<h2>Review: robustness of the comparison</h2>", f"<p>{esc(INTRO)}</p>"]
  for rev in reviews:
    lines.append(
      f"<h3>Review of protocol <code>{esc(rev.protocol)}</code>, selected by"
      f" <code>{esc(rev.rule)}</code></h3>"
    )
    for title, note, head, rows in _sections(rev):
      lines.append(f"<h4>{esc(title)}</h4>")
      if note:
        lines.append(f"<p>{esc(note)}</p>")
      for fig in _figure_of(rev, title, figures):
        data = base64.b64encode((out_dir / f"{fig.stem}.png").read_bytes()).decode()
        lines.append(
          f'<figure><img alt="{esc(fig.kind)} {esc(fig.task)}" src="data:image/png;base64,{data}">'
          f"<figcaption>{esc(fig.caption)}</figcaption></figure>"
        )
      if head:
        lines += table([esc(h) for h in head], [[esc(c) for c in r] for r in rows])
  return lines
