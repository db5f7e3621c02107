"""The comparison table of a report, in the RLLC paper's Table 1 layout, with its rules.

Rows are optimizers, each with a Loss row (final test loss, lower is better)
and an Acc row (final test accuracy in percent, higher is better); columns
are tasks; a cell is mean ± std over the seeds of the selected setting
(eval.report.selection). The rules, applied to the values as displayed (4 decimals
for loss, 2 for accuracy), so that what a reader sees agrees with the marks:

- "ours" are the optimizers whose declared family (rllc.catalog) is one of
  the suite's own methods: RLLC, fixed-law memories, adaptive memory;
- best baseline: the best cell, in a column, of the optimizers that are not
  ours (every cell that ties it): a declared rule, so every family the
  catalog does not mark as ours (optax's baselines, the sign-based, mixture,
  orthogonal and nested-learning optimizers) competes for it;
- overall best: the best cell of the column (ties: all of them);
- ours beats the best baseline when its displayed value is strictly better;
- such a win is tested against that baseline (the first in row order if
  baselines tie) by a one-sided Welch's t-test over seeds, H1: ours is
  better, significant at p < ALPHA after Holm's adjustment over every test of
  the report (eval.report.robustness.adjust). With fewer than two seeds on either side,
  or no variance on both, there is no test, and the report says so.

A cell is "missing" when its optimizer has no record on that task,
"diverged" when every setting of its grid had a diverged seed, and "n/a"
when the task reports no accuracy (tasks.interface): its Acc cells, and
every cell when the rule selects by validation accuracy. None of them is a
number, and none can be best.
"""

import dataclasses
import math

from scipy import stats

from eval.report import paper_numbers, selection
from rllc import catalog

ALPHA = 0.05  # significance threshold of the one-sided Welch's t-test


@dataclasses.dataclass(frozen=True)
class Metric:
  key: str  # "loss" or "acc"
  label: str  # the row label, "Loss" or "Acc"
  scale: float  # display factor (accuracy in percent)
  decimals: int
  lower_is_better: bool

  def values(self, row: selection.Selected) -> tuple[float, ...]:
    seeds = row.seed_test_loss if self.key == "loss" else row.seed_test_accuracy
    return tuple(self.scale * v for v in seeds)

  def better(self, a: float, b: float) -> bool:
    return a < b if self.lower_is_better else a > b


METRICS = (Metric("loss", "Loss", 1.0, 4, True), Metric("acc", "Acc", 100.0, 2, False))


@dataclasses.dataclass(frozen=True)
class Test:
  """One-sided Welch's t-test of ours against the best baseline of a column."""

  baseline: str
  difference: float  # mean(ours) - mean(baseline), in display units
  t: float | None
  dof: float | None
  p: float | None  # None: no test possible (see `why`)
  why: str  # "" when tested, else the reason there is no test
  # Filled in over the whole report by eval.report.robustness.adjust:
  p_adjusted: float | None = None  # Holm over every test of the report
  family: int = 0  # how many tests that adjustment is over
  interval: tuple[float, float] | None = None  # Welch 95% interval of the difference
  seeds_needed: str = ""  # seeds per arm for 80% power at the measured spread

  @property
  def significant(self) -> bool:
    """p < ALPHA, by the Holm-adjusted p once the report has adjusted it."""
    p = self.p if self.p_adjusted is None else self.p_adjusted
    return p is not None and p < ALPHA


@dataclasses.dataclass(frozen=True)
class Cell:
  state: str  # "ok", "missing" or "diverged"
  mean: float | None = None  # display units, rounded as displayed
  std: float | None = None
  n: int = 0
  best_baseline: bool = False
  best: bool = False
  beats: bool = False  # ours, strictly better than the best baseline
  test: Test | None = None  # for cells that beat it


@dataclasses.dataclass(frozen=True)
class Comparison:
  """One protocol's table under one selection rule: cells[(optimizer, task, metric key)]."""

  protocol: str
  rule: str  # the selection rule (eval.report.selection.RULES)
  tasks: tuple[str, ...]
  optimizers: tuple[str, ...]  # row order: by family (rllc.catalog.FAMILIES), then name
  families: dict[str, str]
  cells: dict[tuple[str, str, str], Cell]
  selected: dict[tuple[str, str], selection.Selected]  # (optimizer, task)
  runs: dict[tuple[str, str], tuple[int, int]]  # (optimizer, task) -> (diverged, runs)
  seeds: tuple[int, ...]  # the distinct seed counts of the selected settings
  without_accuracy: frozenset[str]  # tasks that report no accuracy: their "n/a" cells

  def is_ours(self, optimizer: str) -> bool:
    return catalog.active().is_ours(self.families[optimizer])


def welch(ours: tuple[float, ...], baseline: tuple[float, ...], metric: Metric, name: str) -> Test:
  """The one-sided Welch's t-test that ours is better than the baseline."""
  difference = sum(ours) / len(ours) - sum(baseline) / len(baseline)
  if min(len(ours), len(baseline)) < 2:
    return Test(name, difference, None, None, None, "fewer than 2 seeds")
  if max(ours) == min(ours) and max(baseline) == min(baseline):
    return Test(name, difference, None, None, None, "no variance over seeds")
  alternative = "less" if metric.lower_is_better else "greater"
  result = stats.ttest_ind(ours, baseline, equal_var=False, alternative=alternative)
  return Test(name, difference, float(result.statistic), float(result.df), float(result.pvalue), "")


def compare(
  runs, protocol: str, planned: tuple = (), rule: str = selection.DEFAULT_RULE
) -> Comparison:
  """The table of one protocol's rows of the tidy frame (other protocols' are ignored).

  runs: eval.store.tidy.report_frame's rows, protocols labelled.
  planned: (task, optimizer) pairs the benches meant to run (plan.json); those
  without a record get "missing" cells, so a partial store shows its gaps.
  rule: the selection rule of eval.report.selection.
  """
  runs = runs[runs["protocol"] == protocol]
  families = {opt: catalog.active().family(opt) for _, opt in planned}
  families.update(zip(runs["optimizer"], runs["family"], strict=True))
  tasks = tuple(sorted(set(runs["task"]) | {task for task, _ in planned}))
  rank = catalog.active().family_rank
  optimizers = tuple(sorted(families, key=lambda o: (rank(families[o]), o)))
  chosen = {(s.optimizer, s.task): s for s in selection.choose(runs, rule)}
  lacking = selection.without_accuracy(runs)
  diverged = (runs["status"] == "diverged").groupby([runs["optimizer"], runs["task"]], sort=False)
  tally = {
    pair: (int(d), int(n))
    for (pair, d), n in zip(diverged.sum().items(), diverged.size(), strict=True)
  }
  cells = {}
  for task in tasks:
    for metric in METRICS:
      column = {opt: _cell(chosen, tally, lacking, rule, metric, opt, task) for opt in optimizers}
      cells.update(_mark(column, families, metric, chosen, task))
  return Comparison(
    protocol=protocol,
    rule=rule,
    tasks=tasks,
    optimizers=optimizers,
    families=families,
    cells=cells,
    selected=chosen,
    runs=tally,
    seeds=tuple(sorted({s.seeds for s in chosen.values()})),
    without_accuracy=lacking,
  )


def _cell(chosen, tally, lacking, rule, metric: Metric, opt: str, task: str) -> Cell:
  """One optimizer's cell of a column, before the highlighting rules."""
  row = chosen.get((opt, task))
  if task in lacking and (metric.key == "acc" or rule == "valid_accuracy"):
    return Cell("n/a")
  if row is None:
    return Cell("diverged" if (opt, task) in tally else "missing")
  values = metric.values(row)
  mean, std = selection.mean_std(values)
  return Cell("ok", round(mean, metric.decimals), round(std, metric.decimals), len(values))


def _best(cells: dict[str, Cell], metric: Metric) -> float | None:
  values = [c.mean for c in cells.values() if c.state == "ok"]
  if not values:
    return None
  return min(values) if metric.lower_is_better else max(values)


def _mark(column: dict[str, Cell], families, metric, chosen, task) -> dict:
  """The column's cells with the highlighting rules and tests applied, keyed for `cells`."""
  ours = {o: catalog.active().is_ours(families[o]) for o in column}
  baselines = {o: c for o, c in column.items() if not ours[o]}
  best_baseline = _best(baselines, metric)
  best = _best(column, metric)
  reference = next((o for o, c in baselines.items() if c.mean == best_baseline), None)
  marked = {}
  for opt, cell in column.items():
    if cell.state == "ok":
      beats = ours[opt] and best_baseline is not None and metric.better(cell.mean, best_baseline)
      test = None
      if beats:
        test = welch(
          metric.values(chosen[opt, task]),
          metric.values(chosen[reference, task]),
          metric,
          reference,
        )
      cell = dataclasses.replace(
        cell,
        best_baseline=not ours[opt] and cell.mean == best_baseline,
        best=cell.mean == best,
        beats=beats,
        test=test,
      )
    marked[opt, task, metric.key] = cell
  return marked


def grid_axes(runs) -> dict[tuple[str, str], dict[str, tuple]]:
  """(optimizer, task) -> the hyperparameters that take more than one value in its grid.

  runs: eval.store.tidy.report_frame's rows, one pass over their hparams.
  Each axis maps a name to its values, sorted where they are numbers, in name order.
  """
  values: dict[tuple[str, str], dict[str, dict[str, object]]] = {}
  for pair, hparams in zip(
    zip(runs["optimizer"], runs["task"], strict=True), runs["hparams"], strict=True
  ):
    grid = values.setdefault(pair, {})
    for name, value in hparams.items():
      grid.setdefault(name, {})[repr(value)] = value
  return {pair: _axes(grid) for pair, grid in values.items()}


def _axes(values: dict[str, dict[str, object]]) -> dict[str, tuple]:
  axes = {}
  for name, seen in sorted(values.items()):
    if len(seen) > 1:
      numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in seen.values())
      axes[name] = tuple(sorted(seen.values()) if numbers else seen.values())
  return axes


def on_edge(axis: tuple, value) -> bool:
  """Whether a selected value is the smallest or largest of its numeric grid axis."""
  numbers = [v for v in axis if isinstance(v, (int, float)) and not isinstance(v, bool)]
  return len(numbers) == len(axis) >= 2 and value in (numbers[0], numbers[-1])


def overhead(runs, log: list[dict]) -> list[dict]:
  """Per (task, optimizer): buffers, state and parameter bytes, step time relative to Adam.

  runs: eval.store.tidy.report_frame's rows (the last run of a pair gives its
  sizes and setting). The step time of a job is its logged wall time (compile
  and evaluations included) per run and step, the least of its logged
  trainings; relative to the "adam" job on the same task, or None without one.
  """
  last = runs.drop_duplicates(["task", "optimizer"], keep="last").set_index(["task", "optimizer"])
  steps = dict(last["steps"])
  per_step: dict[tuple[str, str], float] = {}
  for event in log:
    group = (event.get("task"), event.get("optimizer"))
    if event.get("event") == "trained" and event.get("computed") and group in steps:
      seconds = event["seconds"] / (event["computed"] * steps[group])
      per_step[group] = min(seconds, per_step.get(group, math.inf))
  rank = catalog.active().family_rank
  order = {pair: rank(family) for pair, family in last["family"].items()}
  rows = []
  for task, optimizer in sorted(steps, key=lambda g: (g[0], order[g], g[1])):
    run = last.loc[task, optimizer]
    adam = per_step.get((task, "adam"))
    time = per_step.get((task, optimizer))
    rows.append(
      {
        "task": task,
        "optimizer": optimizer,
        "buffers": _buffers(optimizer, run["hparams"]),
        "state_bytes": run["state_bytes"],
        "param_bytes": run["param_bytes"],
        "step_time_ratio": time / adam if time is not None and adam else None,
      }
    )
  return rows


def _buffers(optimizer: str, hparams: dict) -> int:
  """An optimizer's declared buffers at a recorded setting (a spec's parse imports JAX)."""
  entry = catalog.lookup(optimizer)
  return entry.buffers(entry.resolve(hparams))


def beside_paper(table: Comparison) -> list[tuple[str, ...]]:
  """Rows (task, optimizer, loss here, paper's, acc here, paper's, acc here - paper's).

  For the cells of a paper-protocol table (a protocol named `paper`, or
  `paper-...` for a TOML file over it) that the RLLC paper's Table 1 has; an
  RLLC row with an initial-law suffix ("M(0.9)+M(0)@ones") stands beside its
  spec's numbers.
  """
  if table.protocol != "paper" and not table.protocol.startswith("paper-"):
    return []
  rows = []
  for task in table.tasks:
    for opt in table.optimizers:
      spec = catalog.split_initial_law(opt)[0]
      if (task, spec) not in paper_numbers.TABLE1:
        continue
      loss, acc, acc_std = paper_numbers.TABLE1[task, spec]
      mine = {m.key: table.cells[opt, task, m.key] for m in METRICS}
      shown = {
        key: f"{c.mean:.{m.decimals}f} ± {c.std:.{m.decimals}f}" if c.state == "ok" else c.state
        for (key, c), m in zip(mine.items(), METRICS, strict=True)
      }
      gap = f"{mine['acc'].mean - acc:+.2f}" if mine["acc"].state == "ok" else ""
      rows.append(
        (task, opt, shown["loss"], f"{loss:.4f}", shown["acc"], f"{acc:.2f} ± {acc_std:.2f}", gap)
      )
  return rows
