"""The report's document model: sections of blocks that every format renders.

`eval.report.build.build` returns a Report whose `sections` are written once,
here as data; eval.report.render walks them into Markdown, LaTeX and HTML, and
eval.report.draw draws their figure specs. A format shows what it can: LaTeX
holds the tables only (with their captions) and the paragraphs meant for it
as `%` comments; Markdown and HTML show headings, paragraphs, tables,
figures and lists, and no captions of tables.

A heading's text is a tuple of parts: plain strings, and `Code` for a name
that Markdown and HTML set as code (a protocol, a rule).
"""

import dataclasses

FORMATS = ("md", "tex", "html")
READING = ("md", "html")  # the formats with headings and paragraphs


class Code(str):
  """A part of a heading shown as code: `name` in Markdown, <code>name</code> in HTML."""


@dataclasses.dataclass(frozen=True)
class Paragraph:
  """A paragraph of plain text, in the formats named (LaTeX: a `%` comment)."""

  text: str
  formats: tuple[str, ...] = READING


@dataclasses.dataclass(frozen=True)
class Marked:
  """A table cell with the comparison's marks (eval.report.comparison)."""

  text: str
  mark: str = ""  # † or ‡ after the value
  best: bool = False  # the best of the column: bold
  best_baseline: bool = False  # the best baseline: italic, underlined or emphasised


@dataclasses.dataclass(frozen=True)
class Table:
  """A table of plain-text cells (or Marked ones); each format escapes them.

  caption is LaTeX's (the other formats put their words in paragraphs);
  columns its column spec; tex_head a head already in LaTeX, where the plain
  head's words need math; html_id the HTML table's id.
  """

  head: tuple[str, ...]
  rows: tuple[tuple, ...]
  caption: str = ""
  columns: str = ""
  tex_head: tuple[str, ...] | None = None
  html_id: str = ""


@dataclasses.dataclass(frozen=True)
class FigureSpec:
  """A figure: what to draw (eval.report.draw) and where it goes in the report.

  The file is `stem.svg` under the report directory (stem: figures/KIND_TASK);
  `plot` is the drawing's data, one of eval.report.draw's plot types.
  """

  kind: str
  task: str
  stem: str
  caption: str
  title: str  # the figure's own title, drawn above its panels
  plot: object


@dataclasses.dataclass(frozen=True)
class Bullets:
  """A bulleted list of plain-text items (Markdown and HTML)."""

  items: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Section:
  """A heading of `level` (1: the document's title) and the blocks below it, in order."""

  level: int
  title: tuple[str, ...]
  blocks: tuple = ()

  @property
  def figures(self) -> tuple[FigureSpec, ...]:
    return tuple(b for b in self.blocks if isinstance(b, FigureSpec))


def heading(level: int, *parts: str, blocks=()) -> Section:
  """A section from its heading's parts (strings, or Code) and its blocks."""
  return Section(level, tuple(parts), tuple(blocks))
