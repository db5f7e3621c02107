"""The report's sections, written once as data (eval.report.document).

From the comparison tables (eval.report.comparison) and the overhead rows:
per table, its cells with their marks and legend, the significance tests,
the paper's numbers and claims beside it, and the selected hyperparameters;
then the optimizer overhead, the figures, what is missing and where the
numbers come from. eval.report.review_sections writes the review's;
eval.report.render turns them into each format.
"""

from eval.report import claims, comparison, verdict
from eval.report import document as doc
from eval.report.render import DAGGER, DDAGGER, tex_escape

_PARAMETER_NAMES = {"learning_rate": "lr", "law_learning_rate": "law lr"}

OVERHEAD_NOTE = (
  "Buffers k: parameter-sized buffers the optimizer's state keeps. State / params: bytes of one"
  " run's optimizer state over its parameters' (from shapes, recorded at training; n/a for"
  " records made before sizes were recorded). Step time / Adam: wall time of the optimizer's"
  " benchmark job per run and step (compilation and evaluations included; its grid runs as one"
  " vectorized program), over that of Adam's job on the same task; n/a without an Adam job. It"
  " varies with the machine's load, and a bench's first job also pays the process's start-up;"
  " `python -m eval.experiments.bench_update` measures the updates alone."
)


def _number(x: float, decimals: int) -> str:
  return f"{x:,.{decimals}f}"


def _marked(cell: comparison.Cell, metric: comparison.Metric, n: int) -> doc.Marked:
  """A cell's value text and marks; the text says n only where it differs from the table's."""
  if cell.state != "ok":
    return doc.Marked(cell.state, "", cell.best, cell.best_baseline)
  text = _number(cell.mean, metric.decimals)
  if cell.n > 1:  # one seed has no spread to show: its value alone
    text += f" ± {_number(cell.std, metric.decimals)}"
  if cell.n != n:
    text += f" (n={cell.n})"
  mark = (DDAGGER if cell.test.significant else DAGGER) if cell.beats else ""
  return doc.Marked(text, mark, cell.best, cell.best_baseline)


def _setting(table: comparison.Comparison, axes: dict, optimizer: str, task: str) -> str:
  """The selected values of the hyperparameters its grid varies (all of them if none varies).

  A value at the end of its grid axis says "(edge)": the best setting may lie
  outside the grid.
  """
  row = table.selected.get((optimizer, task))
  if row is None:
    return table.cells[optimizer, task, "loss"].state
  axes = axes.get((optimizer, task), {})
  names = tuple(axes) or ("learning_rate",)
  return ", ".join(
    f"{_PARAMETER_NAMES.get(name, name)} {row.hparams[name]}"
    + (" (edge)" if comparison.on_edge(axes.get(name, ()), row.hparams[name]) else "")
    for name in names
    if name in row.hparams
  )


def _title(table: comparison.Comparison) -> str:
  """E.g. "Protocol paper, selected by valid_loss"."""
  return f"Protocol {table.protocol}, selected by {table.rule}"


def _diverged(table: comparison.Comparison, optimizer: str, task: str) -> str:
  diverged, runs = table.runs.get((optimizer, task), (0, 0))
  return f"{diverged}/{runs}" if runs else "missing"


def _seeds_sentence(table: comparison.Comparison) -> str:
  if list(table.seeds) == [1]:
    return "the value of the one seed (n = 1) of the selected setting: no spread to show"
  counts = " or ".join(str(n) for n in table.seeds) or "0"
  return f"mean ± sample std (ddof 1) over n = {counts} seeds of the selected setting"


def _legend(table: comparison.Comparison, style: str = "Italics") -> str:
  """The marks; `style` is how this format shows the best baseline."""
  lacking = ", ".join(sorted(table.without_accuracy))
  no_accuracy = f" n/a: no accuracy to report on {lacking}; read the loss." if lacking else ""
  return (
    f"Bold: the best of the column. {style}: the best of the baselines. {DAGGER}: ours"
    f" (RLLC, fixed-law memory, adaptive memory) beats the best baseline as displayed;"
    f" {DDAGGER}: and a one-sided Welch's t-test over seeds against it gives"
    f" p < {comparison.ALPHA} after Holm's adjustment over all tests of the report. missing: no"
    " record; diverged: every setting of the grid had a diverged seed." + no_accuracy
  )


def _interval(test: comparison.Test, decimals: int) -> str:
  """A test's Welch 95% interval of the difference, "[-0.12, +0.34]", or "" without one."""
  if test.interval is None:
    return ""
  return f"[{test.interval[0]:+.{decimals}f}, {test.interval[1]:+.{decimals}f}]"


def _test_row(test: comparison.Test, decimals: int) -> list[str]:
  """95% CI, t, dof, p, p (Holm), verdict and seeds for power of a test (TESTS_HEAD)."""
  seeds = test.seeds_needed
  if test.p is None:
    return ["", "", "", "", "", f"no test: {test.why}", seeds]
  interval = _interval(test, decimals)
  holm = "" if test.p_adjusted is None else f"{test.p_adjusted:.3g}"
  if test.significant:
    verdict = "significant"
  elif test.p < comparison.ALPHA:
    verdict = "not significant after Holm"
  else:
    verdict = "not significant"
  return [interval, f"{test.t:.2f}", f"{test.dof:.1f}", f"{test.p:.3g}", holm, verdict, seeds]


TESTS_HEAD = ("Task", "Metric", "Ours", "Best baseline", "Difference", "95% CI", "t", "dof")
TESTS_HEAD += ("p", "p (Holm)", "Verdict", "Seeds for 80% power")
_TESTS_TEX_HEAD = tuple(
  {"t": "$t$", "p": "$p$", "p (Holm)": "$p$ (Holm)"}.get(h, tex_escape(h)) for h in TESTS_HEAD
)


def _test_rows(table: comparison.Comparison) -> list[tuple[str, ...]]:
  """One row (plain text, TESTS_HEAD) per cell of ours that beats the best baseline."""
  rows = []
  for task in table.tasks:
    for metric in comparison.METRICS:
      for opt in table.optimizers:
        cell = table.cells[opt, task, metric.key]
        if cell.beats:
          test = cell.test
          difference = f"{test.difference:+.{metric.decimals}f}"
          row = [task, metric.label, opt, test.baseline, difference]
          rows.append(tuple(row + _test_row(test, metric.decimals)))
  return rows


def _family(table: comparison.Comparison) -> int:
  """The number of tests the report's Holm adjustment is over."""
  return max((c.test.family for c in table.cells.values() if c.test is not None), default=0)


def _tests_note(rows: list, family: int = 0) -> str:
  if not rows:
    return "No cell of ours beats the best baseline, so nothing is tested."
  return (
    f"One-sided Welch's t-tests over seeds: {len(rows)} row(s) here, {family} test(s) with a p"
    f" in the whole report. p (Holm): Holm-Bonferroni adjusted over all {family}, which keeps"
    f" the chance of any false significant verdict in the report below {comparison.ALPHA};"
    f" the verdict and {DDAGGER} use it, the raw p is beside it. 95% CI: the Welch t interval"
    " of the difference, which assumes each cell's seeds are independent normal draws."
    " Seeds for 80% power: seeds per arm with which a one-sided Welch's t-test at"
    f" p < {comparison.ALPHA} (before correction) would detect the observed difference 80% of"
    " the time, were the measured means and spreads the true ones (noncentral t)."
  )


def _comparison_rows(table: comparison.Comparison) -> tuple[tuple, ...]:
  """The comparison table's body: a Loss, an Acc and a Diverged row per optimizer."""
  n = max(table.seeds, default=0)
  rows = []
  for opt in table.optimizers:
    for metric in comparison.METRICS:
      row = [opt if metric.key == "loss" else "", metric.label]
      row += [_marked(table.cells[opt, task, metric.key], metric, n) for task in table.tasks]
      rows.append(tuple(row))
    rows.append(("", "Diverged", *(_diverged(table, opt, t) for t in table.tasks)))
  return tuple(rows)


PAPER_HEAD = ("Task", "Optimizer", "Loss here", "Paper", "Acc here", "Paper", "Acc gap")
PAPER_NOTE = (
  "Beside the RLLC paper's Table 1 (loss, accuracy) and Table 2 (accuracy std), same protocol;"
  " acc gap = here - paper."
)


def _paper(table: comparison.Comparison) -> list[doc.Section]:
  """The paper's numbers and claims beside a paper-protocol table; nothing for other tables."""
  rows = comparison.beside_paper(table)
  if not rows:
    return []
  note = claims.note(table)
  paper = doc.Table(PAPER_HEAD, tuple(rows), PAPER_NOTE, "llllllr")
  said = doc.Table(claims.HEAD, tuple(claims.rows(table)), note, "p{5cm}p{3cm}lllp{2.5cm}")
  return [
    doc.heading(4, "Beside the paper", blocks=[doc.Paragraph(PAPER_NOTE), paper]),
    doc.heading(4, "The paper's claims", blocks=[doc.Paragraph(note), said]),
  ]


def comparison_sections(table: comparison.Comparison, axes: dict) -> list[doc.Section]:
  """A protocol's table under a rule: its cells, tests, the paper beside it, its settings.

  axes: (optimizer, task) -> the grid's varied hyperparameters (comparison.grid_axes).
  """
  caption = (
    f"{_title(table)}: final test loss and accuracy (%), {_seeds_sentence(table)}."
    f" {_legend(table, 'Underlined')}"
  )
  cells = doc.Table(
    ("Optimizer", "", *table.tasks),
    _comparison_rows(table),
    caption,
    "ll" + "r" * len(table.tasks),
    html_id=f"comparison-{table.protocol}-{table.rule}",
  )
  said = f"Final test loss and accuracy (%), {_seeds_sentence(table)}."
  tests = _test_rows(table)
  note = _tests_note(tests, _family(table))
  significance = [doc.Paragraph(note)]
  if tests:
    caption = f"{_title(table)}, each cell of ours that beats the best baseline: {note}"
    significance.append(
      doc.Table(TESTS_HEAD, tuple(tests), caption, "llllrrrrrrlr", _TESTS_TEX_HEAD)
    )
  settings = tuple(
    (opt, *(_setting(table, axes, opt, task) for task in table.tasks)) for opt in table.optimizers
  )
  caption = f"{_title(table)}: selected hyperparameters (the values varied)."
  chosen = doc.Table(("Optimizer", *table.tasks), settings, caption, "l" * (1 + len(table.tasks)))
  title = ("Protocol ", doc.Code(table.protocol), ", selected by ", doc.Code(table.rule))
  return [
    doc.Section(3, title, (doc.Paragraph(said), cells, doc.Paragraph(_legend(table)))),
    doc.heading(4, "Significance", blocks=significance),
    *_paper(table),
    doc.heading(4, "Selected hyperparameters (the values the grid varies)", blocks=[chosen]),
  ]


ANSWER_HEAD = ("Protocol", "Task", "Family", "Metric", "Ours", "Best baseline", "Difference")
ANSWER_HEAD += ("95% CI", "p", "p (Holm)", "Verdict", "Seeds for 80% power")
_ANSWER_TEX_HEAD = tuple(
  {"p": "$p$", "p (Holm)": "$p$ (Holm)"}.get(h, tex_escape(h)) for h in ANSWER_HEAD
)


def _shown(cell: comparison.Cell, decimals: int) -> str:
  """A cell's mean ± std and its n; one seed: its value alone (no spread to show)."""
  spread = f" ± {_number(cell.std, decimals)}" if cell.n > 1 else ""
  return f"{_number(cell.mean, decimals)}{spread} (n={cell.n})"


def _answer_row(answer: verdict.Answer) -> tuple[str, ...]:
  metric, test = answer.metric, answer.test
  decimals = metric.decimals
  p = "" if test.p is None else f"{test.p:.3g}"
  holm = "" if test.p_adjusted is None else f"{test.p_adjusted:.3g}"
  return (
    answer.protocol,
    answer.task,
    answer.family,
    metric.label,
    f"{answer.ours} {_shown(answer.ours_cell, decimals)}",
    f"{answer.baseline} {_shown(answer.baseline_cell, decimals)}",
    f"{answer.ours_cell.mean - answer.baseline_cell.mean:+.{decimals}f}",
    _interval(test, decimals),
    p,
    holm,
    answer.verdict,
    test.seeds_needed,
  )


_METRIC_WORDS = {"Acc": "accuracy", "Loss": "loss"}


def _answer_lead(answers: list[verdict.Answer]) -> str:
  """The answer in a sentence per protocol and family: where it beats, and significantly."""
  said = []
  groups = dict.fromkeys((a.protocol, a.family, a.metric.label) for a in answers)
  for protocol, family, label in sorted(groups, key=lambda g: (g[0], g[1], g[2] != "Acc")):
    these = [
      a for a in answers if (a.protocol, a.family, a.metric.label) == (protocol, family, label)
    ]
    wins = [a.task for a in these if a.beats]
    significant = [a.task for a in these if a.test.significant and a.beats]
    behind = [a.task for a in these if not a.beats and a.behind]
    said.append(
      f"Protocol {protocol}, {family}, test {_METRIC_WORDS[label]}: its best row beats the best"
      f" baseline on {len(wins)} of {len(these)} task(s) as displayed"
      + (f" ({', '.join(wins)})" if wins else "")
      + f", significantly after Holm on {len(significant)}"
      + (f" ({', '.join(significant)})" if significant else "")
      + (f"; it is behind, 95% CI excluding 0, on {', '.join(behind)}" if behind else "")
      + "."
    )
  families = {a.protocol: a.test.family for a in answers if a.test.family}
  counted = ", ".join(f"{n} in protocol {p}" for p, n in families.items()) or "none"
  return " ".join(said) + (
    " Per task, metric and family of ours: its best row by that metric against the column's"
    " best baseline, at the protocol's selected settings. p: one-sided Welch's t-test over"
    " seeds, H1: ours is better (above 0.5 when ours is behind); p (Holm): adjusted per"
    " protocol over the tests of every row of ours against its column's best baseline, so"
    f" that picking the best row is paid for ({counted}); significant: p (Holm) <"
    f" {comparison.ALPHA}. 95% CI: the Welch interval of the difference."
  )


def answer_section(answers: list[verdict.Answer]) -> list[doc.Section]:
  """The report's first section: does ours beat the best baseline (eval.report.verdict)?"""
  if not answers:
    return []
  lead = _answer_lead(answers)
  rows = tuple(_answer_row(a) for a in answers)
  table = doc.Table(
    ANSWER_HEAD,
    rows,
    f"Does ours beat the best baseline? {lead}",
    "llll" + "l" * 8,
    _ANSWER_TEX_HEAD,
    "answer",
  )
  return [doc.heading(2, "Does ours beat the best baseline?", blocks=[doc.Paragraph(lead), table])]


def _overhead_cells(row: dict) -> tuple[str, str]:
  ratio = "n/a"
  if row["state_bytes"] is not None and row["param_bytes"]:
    ratio = f"{row['state_bytes'] / row['param_bytes']:.2f}"
  time = "n/a" if row["step_time_ratio"] is None else f"{row['step_time_ratio']:.2f}"
  return ratio, time


OVERHEAD_HEAD = ("Task", "Optimizer", "Buffers k", "State / params", "Step time / Adam")


def overhead_section(overhead: list[dict]) -> doc.Section:
  """Buffers, state size and step time per (task, optimizer) (comparison.overhead's rows)."""
  rows = tuple(
    (row["task"], row["optimizer"], str(row["buffers"]), *_overhead_cells(row)) for row in overhead
  )
  tex_head = ("Task", "Optimizer", "Buffers $k$", "State / params", "Step time / Adam")
  table = doc.Table(OVERHEAD_HEAD, rows, OVERHEAD_NOTE, "llrrr", tex_head)
  return doc.heading(2, "Optimizer overhead", blocks=[doc.Paragraph(OVERHEAD_NOTE), table])


def closing_sections(figures: list, missing: list[str], provenance: list[str]) -> list:
  """The per-task figures (if any), what is missing, and where the numbers come from."""
  shown = [doc.heading(2, "Figures", blocks=figures)] if figures else []
  return shown + [
    doc.heading(2, "Missing", blocks=[doc.Bullets(tuple(missing))]),
    doc.heading(2, "Provenance", blocks=[doc.Bullets(tuple(provenance))]),
  ]
