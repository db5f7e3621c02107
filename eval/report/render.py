"""A report as Markdown, LaTeX (booktabs) and one self-contained HTML page.

Each renderer turns the same `eval.report.build.Report` into text: the comparison
table of each protocol (eval.report.comparison) with its legend, the significance
tests, the selected hyperparameters, the optimizer overhead, the figures
(Markdown and HTML; LaTeX gets the tables only), what is missing, and where
the numbers come from. Nothing here reads the clock or the machine, so the
same report gives the same bytes.

The marks: bold, the best of a column; Markdown italic, LaTeX underline and
HTML emphasis, the best baseline; †, ours beats the best baseline; ‡, and
significantly.
"""

import base64
import dataclasses
import html
from collections.abc import Callable
from pathlib import Path

from eval.report import claims, comparison, robustness

DAGGER, DDAGGER = "†", "‡"
_PARAMETER_NAMES = {"learning_rate": "lr", "law_learning_rate": "law lr"}


def _number(x: float, decimals: int) -> str:
  return f"{x:,.{decimals}f}"


def _cell_parts(cell: comparison.Cell, metric: comparison.Metric, n: int) -> tuple[str, str]:
  """(value text, mark) of a cell; the text says n only where it differs from the table's."""
  if cell.state != "ok":
    return cell.state, ""
  text = _number(cell.mean, metric.decimals)
  if cell.n > 1:  # one seed has no spread to show: its value alone
    text += f" ± {_number(cell.std, metric.decimals)}"
  if cell.n != n:
    text += f" (n={cell.n})"
  mark = (DDAGGER if cell.test.significant else DAGGER) if cell.beats else ""
  return text, mark


def _setting(table: comparison.Comparison, records, optimizer: str, task: str) -> str:
  """The selected values of the hyperparameters its grid varies (all of them if none varies).

  A value at the end of its grid axis says "(edge)": the best setting may lie
  outside the grid.
  """
  row = table.selected.get((optimizer, task))
  if row is None:
    return table.cells[optimizer, task, "loss"].state
  axes = comparison.grid_axes(records, optimizer, task)
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


def _test_row(test: comparison.Test, decimals: int) -> list[str]:
  """95% CI, t, dof, p, p (Holm), verdict and seeds for power of a test (_TESTS_HEAD)."""
  seeds = test.seeds_needed
  if test.p is None:
    return ["", "", "", "", "", f"no test: {test.why}", seeds]
  interval = ""
  if test.interval is not None:
    interval = f"[{test.interval[0]:+.{decimals}f}, {test.interval[1]:+.{decimals}f}]"
  holm = "" if test.p_adjusted is None else f"{test.p_adjusted:.3g}"
  if test.significant:
    verdict = "significant"
  elif test.p < comparison.ALPHA:
    verdict = "not significant after Holm"
  else:
    verdict = "not significant"
  return [interval, f"{test.t:.2f}", f"{test.dof:.1f}", f"{test.p:.3g}", holm, verdict, seeds]


_TESTS_HEAD = ["Task", "Metric", "Ours", "Best baseline", "Difference", "95% CI", "t", "dof"]
_TESTS_HEAD += ["p", "p (Holm)", "Verdict", "Seeds for 80% power"]


def _test_rows(table: comparison.Comparison) -> list[list[str]]:
  """One row (plain text, _TESTS_HEAD) per cell of ours that beats the best baseline."""
  rows = []
  for task in table.tasks:
    for metric in comparison.METRICS:
      for opt in table.optimizers:
        cell = table.cells[opt, task, metric.key]
        if cell.beats:
          test = cell.test
          difference = f"{test.difference:+.{metric.decimals}f}"
          row = [task, metric.label, opt, test.baseline, difference]
          rows.append(row + _test_row(test, metric.decimals))
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


@dataclasses.dataclass(frozen=True)
class _Markup:
  """How a format escapes text and marks the best cells."""

  escape: Callable[[str], str]
  best_baseline: str  # a format string with one {}
  best: str


def _comparison_rows(table, markup: _Markup) -> list[list[str]]:
  """The comparison table's body: a Loss, an Acc and a Diverged row per optimizer."""
  n = max(table.seeds, default=0)
  rows = []
  for opt in table.optimizers:
    for metric in comparison.METRICS:
      row = [markup.escape(opt) if metric.key == "loss" else "", metric.label]
      for task in table.tasks:
        cell = table.cells[opt, task, metric.key]
        text, mark = _cell_parts(cell, metric, n)
        text = markup.escape(text)
        if cell.best_baseline:
          text = markup.best_baseline.format(text)
        if cell.best:
          text = markup.best.format(text)
        row.append(text + markup.escape(mark))
      rows.append(row)
    rows.append(["", "Diverged", *(_diverged(table, opt, t) for t in table.tasks)])
  return rows


# ---------------------------------------------------------------- Markdown


def _md_escape(text: str) -> str:
  for char in "\\|*_`[]<>":
    text = text.replace(char, "\\" + char)
  return text


_MARKDOWN = _Markup(_md_escape, "_{}_", "**{}**")


def _md_row(cells) -> str:
  return "| " + " | ".join(cells) + " |"


def _md_comparison(table, records) -> list[str]:
  lines = [f"### Protocol `{table.protocol}`, selected by `{table.rule}`", ""]
  lines.append(f"Final test loss and accuracy (%), {_seeds_sentence(table)}.")
  lines += ["", _md_row(["Optimizer", "", *map(_md_escape, table.tasks)])]
  lines.append(_md_row(["---"] * (2 + len(table.tasks))))
  lines += [_md_row(row) for row in _comparison_rows(table, _MARKDOWN)]
  lines += ["", _legend(table), ""]

  rows = _test_rows(table)
  lines += ["#### Significance", "", _tests_note(rows, _family(table))]
  if rows:
    lines += ["", _md_row(_TESTS_HEAD), _md_row(["---"] * len(_TESTS_HEAD))]
    lines += [_md_row(map(_md_escape, row)) for row in rows]
  lines += _md_paper(table)
  lines += ["", "#### Selected hyperparameters (the values the grid varies)", ""]
  lines += [_md_row(["Optimizer", *map(_md_escape, table.tasks)])]
  lines.append(_md_row(["---"] * (1 + len(table.tasks))))
  for opt in table.optimizers:
    settings = [_setting(table, records, opt, task) for task in table.tasks]
    lines.append(_md_row(map(_md_escape, [opt, *settings])))
  return lines + [""]


_PAPER_HEAD = ["Task", "Optimizer", "Loss here", "Paper", "Acc here", "Paper", "Acc gap"]
_PAPER_NOTE = (
  "Beside the RLLC paper's Table 1 (loss, accuracy) and Table 2 (accuracy std), same protocol;"
  " acc gap = here - paper."
)


def _md_paper(table) -> list[str]:
  rows = comparison.beside_paper(table)
  if not rows:
    return []
  lines = ["", "#### Beside the paper", "", _PAPER_NOTE, "", _md_row(_PAPER_HEAD)]
  lines.append(_md_row(["---"] * len(_PAPER_HEAD)))
  lines += [_md_row(map(_md_escape, row)) for row in rows]
  lines += ["", "#### The paper's claims", "", claims.note(table), ""]
  lines += [_md_row(claims.HEAD), _md_row(["---"] * len(claims.HEAD))]
  return lines + [_md_row(map(_md_escape, row)) for row in claims.rows(table)]


def _overhead_cells(row: dict) -> tuple[str, str]:
  ratio = "n/a"
  if row["state_bytes"] is not None and row["param_bytes"]:
    ratio = f"{row['state_bytes'] / row['param_bytes']:.2f}"
  time = "n/a" if row["step_time_ratio"] is None else f"{row['step_time_ratio']:.2f}"
  return ratio, time


def _md_overhead(report) -> list[str]:
  lines = ["## Optimizer overhead", "", report.overhead_note, ""]
  head = ["Task", "Optimizer", "Buffers k", "State / params", "Step time / Adam"]
  lines += [_md_row(head), _md_row(["---"] * len(head))]
  for row in report.overhead:
    cells = [row["task"], row["optimizer"], str(row["buffers"]), *_overhead_cells(row)]
    lines.append(_md_row(map(_md_escape, cells)))
  return lines + [""]


def _md_list(title: str, items: list[str]) -> list[str]:
  return [f"## {title}", "", *(f"- {_md_escape(item)}" for item in items), ""]


def markdown(report) -> str:
  lines = [f"# Results: {_md_escape(report.title)}", "", report.summary, ""]
  lines += ["## Comparison", ""]
  for table in report.tables:
    lines += _md_comparison(table, report.records)
  lines += robustness.markdown(report.reviews, report.review_figures, _md_row, _md_escape)
  lines += _md_overhead(report)
  if report.figures:
    lines += ["## Figures", ""]
    for figure in report.figures:
      lines += [f"![{figure.kind} {figure.task}]({figure.stem}.png)", "", figure.caption, ""]
  lines += _md_list("Missing", report.missing)
  lines += _md_list("Provenance", report.provenance)
  return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------- LaTeX

_TEX_SPECIAL = {
  "\\": r"\textbackslash{}",
  "&": r"\&",
  "%": r"\%",
  "$": r"\$",
  "#": r"\#",
  "_": r"\_",
  "{": r"\{",
  "}": r"\}",
  "~": r"\textasciitilde{}",
  "^": r"\textasciicircum{}",
  "<": r"$<$",
  ">": r"$>$",
  "±": r"$\pm$",
  "−": "-",
  "†": r"$^{\dagger}$",
  "‡": r"$^{\ddagger}$",
}


def tex_escape(text: str) -> str:
  return "".join(_TEX_SPECIAL.get(char, char) for char in text)


_LATEX = _Markup(tex_escape, r"\underline{{{}}}", r"\textbf{{{}}}")


def _tex_table(columns: str, head: list[str], rows: list[list[str]], caption: str) -> list[str]:
  """A booktabs table; cells are LaTeX already (escape them first)."""
  lines = [r"\begin{table}[htbp]", r"\centering", r"\small", rf"\begin{{tabular}}{{{columns}}}"]
  lines += [r"\toprule", " & ".join(head) + r" \\", r"\midrule"]
  lines += [" & ".join(row) + r" \\" for row in rows]
  lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{caption}}}", r"\end{table}", ""]
  return lines


def _tex_comparison(table, records) -> list[str]:
  rows = _comparison_rows(table, _LATEX)
  caption = tex_escape(
    f"{_title(table)}: final test loss and accuracy (%), {_seeds_sentence(table)}."
    f" {_legend(table, 'Underlined')}"
  )
  head = ["Optimizer", "", *map(tex_escape, table.tasks)]
  lines = _tex_table("ll" + "r" * len(table.tasks), head, rows, caption)

  tests = _test_rows(table)
  if tests:
    head = [tex_escape(h).replace("p (Holm)", "$p$ (Holm)") for h in _TESTS_HEAD]
    head = [f"${h}$" if h in ("t", "p") else h for h in head]
    caption = tex_escape(
      f"{_title(table)}, each cell of ours that beats the best baseline:"
      f" {_tests_note(tests, _family(table))}"
    )
    rows = [[tex_escape(cell) for cell in row] for row in tests]
    lines += _tex_table("llllrrrrrrlr", head, rows, caption)
  paper = [[tex_escape(cell) for cell in row] for row in comparison.beside_paper(table)]
  if paper:
    lines += _tex_table("llllllr", _PAPER_HEAD, paper, tex_escape(_PAPER_NOTE))
    claim_rows = [[tex_escape(cell) for cell in row] for row in claims.rows(table)]
    head = [tex_escape(h) for h in claims.HEAD]
    lines += _tex_table("p{5cm}p{3cm}lllp{2.5cm}", head, claim_rows, tex_escape(claims.note(table)))
  settings = [
    [tex_escape(opt), *(tex_escape(_setting(table, records, opt, t)) for t in table.tasks)]
    for opt in table.optimizers
  ]
  caption = tex_escape(f"{_title(table)}: selected hyperparameters (the values varied).")
  head = ["Optimizer", *map(tex_escape, table.tasks)]
  return lines + _tex_table("l" + "l" * len(table.tasks), head, settings, caption)


def latex(report) -> str:
  lines = [
    f"% rllc report: {tex_escape(report.title)}. Tables only; needs \\usepackage{{booktabs}}.",
    "% Use with \\input{report.tex} inside a document.",
    "",
  ]
  for table in report.tables:
    lines += _tex_comparison(table, report.records)
  lines += robustness.latex(report.reviews, _tex_table, tex_escape)
  rows = [
    [tex_escape(row["task"]), tex_escape(row["optimizer"]), str(row["buffers"])]
    + [tex_escape(x) for x in _overhead_cells(row)]
    for row in report.overhead
  ]
  head = ["Task", "Optimizer", "Buffers $k$", "State / params", "Step time / Adam"]
  lines += _tex_table("llrrr", head, rows, tex_escape(report.overhead_note))
  return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------- HTML

_STYLE = """
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 2em; max-width: 80em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: 0.2em 0.7em; text-align: right; border-bottom: 1px solid #ddd; }
th:first-child, td:first-child, td:nth-child(2) { text-align: left; }
thead th { border-bottom: 2px solid #333; }
figure { margin: 1em 0; } img { max-width: 100%; }
"""


_HTML = _Markup(html.escape, "<em>{}</em>", "<strong>{}</strong>")


def _html_table(head: list[str], rows: list[list[str]], table_id: str = "") -> list[str]:
  """An HTML table; cells are HTML already (escape them first)."""
  attribute = f' id="{table_id}"' if table_id else ""
  lines = [f"<table{attribute}>", "<thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
  lines.append("</thead><tbody>")
  lines += ["<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows]
  return lines + ["</tbody></table>"]


def _html_comparison(table, records) -> list[str]:
  esc = html.escape
  rows = _comparison_rows(table, _HTML)
  lines = [
    f"<h3>Protocol <code>{esc(table.protocol)}</code>, selected by"
    f" <code>{esc(table.rule)}</code></h3>"
  ]
  lines.append(f"<p>Final test loss and accuracy (%), {esc(_seeds_sentence(table))}.</p>")
  head = ["Optimizer", "", *map(esc, table.tasks)]
  lines += _html_table(head, rows, f"comparison-{esc(table.protocol)}-{esc(table.rule)}")
  lines.append(f"<p>{esc(_legend(table))}</p>")
  tests = _test_rows(table)
  lines += ["<h4>Significance</h4>", f"<p>{esc(_tests_note(tests, _family(table)))}</p>"]
  if tests:
    lines += _html_table(_TESTS_HEAD, [[esc(cell) for cell in row] for row in tests])
  paper = [[esc(cell) for cell in row] for row in comparison.beside_paper(table)]
  if paper:
    lines += ["<h4>Beside the paper</h4>", f"<p>{esc(_PAPER_NOTE)}</p>"]
    lines += _html_table(_PAPER_HEAD, paper)
    lines += ["<h4>The paper's claims</h4>", f"<p>{esc(claims.note(table))}</p>"]
    claim_rows = [[esc(cell) for cell in row] for row in claims.rows(table)]
    lines += _html_table([esc(h) for h in claims.HEAD], claim_rows)
  lines.append("<h4>Selected hyperparameters (the values the grid varies)</h4>")
  settings = [
    [esc(opt), *(esc(_setting(table, records, opt, t)) for t in table.tasks)]
    for opt in table.optimizers
  ]
  return lines + _html_table(["Optimizer", *map(esc, table.tasks)], settings)


def page(report, out_dir: Path) -> str:
  """The HTML page; figures embedded as PNG data, so it opens offline as one file."""
  esc = html.escape
  lines = [
    "<!DOCTYPE html>",
    '<html lang="en"><head><meta charset="utf-8">',
    f"<title>Results: {esc(report.title)}</title><style>{_STYLE}</style></head><body>",
    f"<h1>Results: {esc(report.title)}</h1>",
    f"<p>{esc(report.summary)}</p>",
    "<h2>Comparison</h2>",
  ]
  for table in report.tables:
    lines += _html_comparison(table, report.records)
  lines += robustness.page(report.reviews, report.review_figures, _html_table, out_dir)
  lines += ["<h2>Optimizer overhead</h2>", f"<p>{esc(report.overhead_note)}</p>"]
  rows = [
    [esc(row["task"]), esc(row["optimizer"]), str(row["buffers"]), *_overhead_cells(row)]
    for row in report.overhead
  ]
  lines += _html_table(
    ["Task", "Optimizer", "Buffers k", "State / params", "Step time / Adam"], rows
  )
  if report.figures:
    lines.append("<h2>Figures</h2>")
  for figure in report.figures:
    data = base64.b64encode((out_dir / f"{figure.stem}.png").read_bytes()).decode()
    alt = esc(f"{figure.kind} {figure.task}")
    lines.append(
      f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">'
      f"<figcaption>{esc(figure.caption)}</figcaption></figure>"
    )
  for title, items in (("Missing", report.missing), ("Provenance", report.provenance)):
    lines += [f"<h2>{title}</h2>", "<ul>", *(f"<li>{esc(item)}</li>" for item in items), "</ul>"]
  lines.append("</body></html>")
  return "\n".join(lines) + "\n"
