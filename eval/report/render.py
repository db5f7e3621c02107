"""A report's sections (eval.report.document) as Markdown, LaTeX (booktabs) and HTML.

Each backend only walks the sections: a heading, a paragraph, a table, a
figure or a list is rendered here once per format, whatever section holds
it. Markdown and HTML show everything but the tables' captions, and link
the figures' SVG files by relative path (figures/KIND_TASK.svg), so the
HTML page stays small; LaTeX holds the tables with their captions, and the
paragraphs meant for it as `%` comments. Nothing here reads the clock or
the machine, so the same report gives the same bytes.

The marks: bold, the best of a column; Markdown italic, LaTeX underline and
HTML emphasis, the best baseline; †, ours beats the best baseline; ‡, and
significantly.
"""

import dataclasses
import html
from collections.abc import Callable

from eval.report.document import Bullets, Code, FigureSpec, Marked, Paragraph, Table

DAGGER, DDAGGER = "†", "‡"


@dataclasses.dataclass(frozen=True)
class _Markup:
  """How a format escapes text and marks the best cells."""

  escape: Callable[[str], str]
  best_baseline: str  # a format string with one {}
  best: str


def _cell(cell, markup: _Markup) -> str:
  """A plain cell escaped, or a Marked one escaped and marked."""
  if not isinstance(cell, Marked):
    return markup.escape(cell)
  text = markup.escape(cell.text)
  if cell.best_baseline:
    text = markup.best_baseline.format(text)
  if cell.best:
    text = markup.best.format(text)
  return text + markup.escape(cell.mark)


# ---------------------------------------------------------------- Markdown


def md_escape(text: str) -> str:
  for char in "\\|*_`[]<>":
    text = text.replace(char, "\\" + char)
  return text


_MARKDOWN = _Markup(md_escape, "_{}_", "**{}**")


def _md_row(cells) -> str:
  return "| " + " | ".join(cells) + " |"


def _md_block(block) -> list[str]:
  if isinstance(block, Paragraph):
    return [block.text, ""] if "md" in block.formats else []
  if isinstance(block, Table):
    lines = [_md_row(map(md_escape, block.head)), _md_row(["---"] * len(block.head))]
    return lines + [_md_row(_cell(c, _MARKDOWN) for c in row) for row in block.rows] + [""]
  if isinstance(block, FigureSpec):
    return [f"![{block.kind} {block.task}]({block.stem}.svg)", "", block.caption, ""]
  if isinstance(block, Bullets):
    return [*(f"- {md_escape(item)}" for item in block.items), ""]
  raise TypeError(f"no Markdown for {type(block).__name__}")


def markdown(report) -> str:
  """The report as Markdown: every section, figures as links to their SVG files."""
  lines = []
  for section in report.sections:
    title = "".join(f"`{p}`" if isinstance(p, Code) else md_escape(p) for p in section.title)
    lines += ["#" * section.level + " " + title, ""]
    for block in section.blocks:
      lines += _md_block(block)
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
  "é": "e",  # Moré in the profiles' note: the tables stay ASCII for any LaTeX engine
}


def tex_escape(text: str) -> str:
  return "".join(_TEX_SPECIAL.get(char, char) for char in text)


_LATEX = _Markup(tex_escape, r"\underline{{{}}}", r"\textbf{{{}}}")


def _tex_table(table: Table) -> list[str]:
  """A booktabs table with its caption."""
  head = table.tex_head or tuple(tex_escape(h) for h in table.head)
  lines = [
    r"\begin{table}[htbp]",
    r"\centering",
    r"\small",
    rf"\begin{{tabular}}{{{table.columns}}}",
  ]
  lines += [r"\toprule", " & ".join(head) + r" \\", r"\midrule"]
  lines += [" & ".join(_cell(c, _LATEX) for c in row) + r" \\" for row in table.rows]
  caption = tex_escape(table.caption)
  return lines + [r"\bottomrule", r"\end{tabular}", rf"\caption{{{caption}}}", r"\end{table}", ""]


def latex(report) -> str:
  """The report's tables as LaTeX, to \\input into a document."""
  lines = [
    f"% rllc report: {tex_escape(report.title)}. Tables only; needs \\usepackage{{booktabs}}.",
    "% Use with \\input{report.tex} inside a document.",
    "",
  ]
  for section in report.sections:
    for block in section.blocks:
      if isinstance(block, Table):
        lines += _tex_table(block)
      elif isinstance(block, Paragraph) and "tex" in block.formats:
        lines += [f"% {tex_escape(block.text)}", ""]
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


def _html_table(table: Table) -> list[str]:
  esc = html.escape
  attribute = f' id="{esc(table.html_id)}"' if table.html_id else ""
  head = "".join(f"<th>{esc(h)}</th>" for h in table.head)
  lines = [f"<table{attribute}>", f"<thead><tr>{head}</tr>", "</thead><tbody>"]
  lines += [
    "<tr>" + "".join(f"<td>{_cell(c, _HTML)}</td>" for c in row) + "</tr>" for row in table.rows
  ]
  return lines + ["</tbody></table>"]


def _html_block(block) -> list[str]:
  esc = html.escape
  if isinstance(block, Paragraph):
    return [f"<p>{esc(block.text)}</p>"] if "html" in block.formats else []
  if isinstance(block, Table):
    return _html_table(block)
  if isinstance(block, FigureSpec):
    return [
      f'<figure><img alt="{esc(f"{block.kind} {block.task}")}" src="{esc(block.stem)}.svg">'
      f"<figcaption>{esc(block.caption)}</figcaption></figure>"
    ]
  if isinstance(block, Bullets):
    return ["<ul>", *(f"<li>{esc(item)}</li>" for item in block.items), "</ul>"]
  raise TypeError(f"no HTML for {type(block).__name__}")


def page(report) -> str:
  """The report as one HTML page; figures are the SVG files beside it, linked by relative path."""
  esc = html.escape
  lines = [
    "<!DOCTYPE html>",
    '<html lang="en"><head><meta charset="utf-8">',
    f"<title>Results: {esc(report.title)}</title><style>{_STYLE}</style></head><body>",
  ]
  for section in report.sections:
    title = "".join(  # quotes stay as they are in text: "The paper's claims"
      f"<code>{esc(p)}</code>" if isinstance(p, Code) else esc(p, quote=False)
      for p in section.title
    )
    lines.append(f"<h{section.level}>{title}</h{section.level}>")
    for block in section.blocks:
      lines += _html_block(block)
  lines.append("</body></html>")
  return "\n".join(lines) + "\n"
