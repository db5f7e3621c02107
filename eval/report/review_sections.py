"""The review's sections (issue 18) as data: notes, tables and figure specs.

From eval.report.robustness's Review of each comparison table: the
performance profiles (a table of areas and a figure), the aggregates over
tasks x seeds, and the tuning-budget curves (two tables and a figure per
task). eval.report.render writes them in each format, eval.report.draw draws
the figures.
"""

import math

from eval.report import document as doc
from eval.report import statistics
from eval.report.plots import BudgetPlot, ProfilePlot
from eval.report.robustness import (
  BOOTSTRAP_SEED,
  BUDGET_AT,
  CONFIDENCE,
  COSTS,
  RESAMPLES,
  TAU_MAX,
  TAUS,
  Aggregate,
  Review,
)


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


INTRO = (
  "Whether the comparison's wins survive review: across tasks (performance profiles), over"
  " tasks x seeds with intervals (aggregates), and against the size of each optimizer's grid"
  " (tuning budget). Per-cell intervals are in the significance tables: Welch t intervals,"
  " which assume each cell's seeds are independent normal draws; with 2 or 3 seeds nothing"
  " checks that, and a bootstrap over 3 seeds (at most 10 distinct resample means) is not an"
  " interval."
)


def _profile_figure(rev: Review, names: tuple[str, ...]) -> doc.FigureSpec:
  caption = (
    f"Performance profiles over {len(rev.tasks)} tasks: the fraction of tasks on which an"
    f" optimizer's selected mean test loss (left) or test error (right) is within a factor"
    f" tau of the best optimizer's; higher and further left is better."
  )
  panels = tuple(
    (
      COSTS[p.cost],
      p.optimizers,
      statistics.performance_profile(p.ratios, TAUS) if len(p.ratios) else None,
    )
    for p in rev.profiles
  )
  plot = ProfilePlot(names, TAUS, TAU_MAX, panels)
  stem = f"figures/profile_{rev.slug}"
  return doc.FigureSpec("profile", "all tasks", stem, caption, f"{rev.slug}: profiles", plot)


def _budget_figures(rev: Review, names: tuple[str, ...]) -> list[doc.FigureSpec]:
  figures = []
  for task in rev.tasks:
    budgets = [b for b in rev.budgets if b.task == task]
    if not budgets:
      continue
    caption = (
      f"{task}: expected test loss (left) and accuracy (right) of the setting {rev.rule}"
      " selects among n grid points drawn at random, n = 1 to the grid's size (exact)."
    )
    plot = BudgetPlot(names, tuple((b.optimizer, b.loss, b.accuracy) for b in budgets))
    stem = f"figures/budget_{rev.slug}_{task}"
    figures.append(doc.FigureSpec("budget", task, stem, caption, f"{task}: tuning budget", plot))
  return figures


def _review_section(rev: Review, names: tuple[str, ...]) -> list[doc.Section]:
  """The sections of one review; names: the report's optimizers, in color order."""
  where = f"Review of protocol {rev.protocol}, selected by {rev.rule}"
  title = ("Review of protocol ", doc.Code(rev.protocol), ", selected by ", doc.Code(rev.rule))
  sections = [doc.Section(3, title)]
  note = profile_note(rev)
  if not rev.profiles:
    blocks = [doc.Paragraph(note), doc.Paragraph(f"{where}: {note}", ("tex",))]
    return sections + [doc.heading(4, "Performance profiles", blocks=blocks)] + _budgets(rev, names)
  table = _table(PROFILE_HEAD, profile_rows(rev), f"{where}. Performance profiles. {note}")
  blocks = [doc.Paragraph(note), _profile_figure(rev, names), table]
  sections.append(doc.heading(4, "Performance profiles", blocks=blocks))
  for i, aggregate in enumerate(rev.aggregates):
    title = f"Aggregate over tasks x seeds: {COSTS[aggregate.cost]}"
    note = aggregate_note(rev, aggregate, first=i == 0)
    table = _table(AGGREGATE_HEAD, aggregate_rows(aggregate), f"{where}. {title}. {note}")
    sections.append(doc.heading(4, title, blocks=[doc.Paragraph(note), table]))
  return sections + _budgets(rev, names)


def _table(head: list[str], rows: list[list[str]], caption: str) -> doc.Table:
  """A review table; its LaTeX columns are two of text, then numbers."""
  columns = "ll" + "r" * (len(head) - 2)
  return doc.Table(tuple(head), tuple(map(tuple, rows)), caption, columns)


def _budgets(rev: Review, names: tuple[str, ...]) -> list[doc.Section]:
  if not rev.budgets:
    return []
  where = f"Review of protocol {rev.protocol}, selected by {rev.rule}"
  note = budget_note(rev)
  title = "Tuning budget: test loss"
  loss = _table(_budget_head("Loss"), budget_rows(rev, "loss"), f"{where}. {title}. {note}")
  blocks = [doc.Paragraph(note), *_budget_figures(rev, names), loss]
  title = "Tuning budget: test accuracy (%)"
  acc = _table(_budget_head("Acc"), budget_rows(rev, "acc"), f"{where}. {title}.")
  return [
    doc.heading(4, "Tuning budget: test loss", blocks=blocks),
    doc.heading(4, title, blocks=[acc]),
  ]


def sections(reviews: list[Review], names: tuple[str, ...]) -> list[doc.Section]:
  """The review part of a report: its introduction, then each review's sections."""
  if not reviews:
    return []
  intro = doc.heading(
    2, "Review: robustness of the comparison", blocks=[doc.Paragraph(INTRO, doc.FORMATS)]
  )
  return [intro, *(s for rev in reviews for s in _review_section(rev, names))]
