"""The document model (eval.report.document): a section written once shows in every format.

A dummy section added to a built report, with a heading, a paragraph, a table
whose cells need escaping, a marked cell and a figure, comes out of the
Markdown, LaTeX and HTML renderers (eval.report.render) and the figure
drawer (eval.report.draw) without any code of its own; the expected
strings are written here by hand from each format's rules.
"""

import dataclasses

import numpy as np
import pytest

from eval.report import build as report
from eval.report import document as doc
from eval.report import plots, render

DUMMY = doc.heading(
  2,
  "Dummy ",
  doc.Code("a_b"),
  blocks=[
    doc.Paragraph("A note for every reader.", doc.FORMATS),
    doc.Table(
      ("Name", "Value %"),
      (("x_1", doc.Marked("0.5", "†", best=True)), ("y|2", "n/a")),
      caption="Dummy table & its caption.",
      columns="lr",
      html_id="dummy",
    ),
    doc.FigureSpec(
      "budget",
      "t",
      "figures/dummy_t",
      "A dummy figure.",
      "t: dummy",
      plots.BudgetPlot(("adam",), (("adam", np.array([1.0, 0.5]), np.array([50.0, 60.0])),)),
    ),
  ],
)


@pytest.fixture
def written(tmp_path, fake_record, fake_store):
  """md, tex and html of a one-optimizer store's report with DUMMY added; "out", its directory."""
  root = tmp_path
  records = [
    fake_record("digits-mlp", "adam", seed, lr=0.1, test_loss=0.2, test_accuracy=0.9)
    for seed in (0, 1)
  ]
  fake_store(root / "store", records)
  built = report.build(root / "store")
  with_dummy = dataclasses.replace(built, sections=(*built.sections, DUMMY))
  paths = report.write(with_dummy, root / "out")
  return {p.suffix.lstrip("."): p.read_text() for p in paths} | {"out": root / "out"}


def test_a_dummy_section_is_in_markdown(written):
  text = written["md"]
  assert "## Dummy `a_b`\n\nA note for every reader.\n" in text
  assert "| Name | Value % |\n| --- | --- |\n| x\\_1 | **0.5**† |\n| y\\|2 | n/a |\n" in text
  assert "![budget t](figures/dummy_t.svg)\n\nA dummy figure.\n" in text
  assert "Dummy table & its caption." not in text  # captions are LaTeX's


def test_a_dummy_section_is_in_latex(written):
  text = written["tex"]
  assert "% A note for every reader.\n" in text
  assert r"\begin{tabular}{lr}" in text
  assert "Name & Value \\% \\\\\n\\midrule\nx\\_1 & \\textbf{0.5}$^{\\dagger}$ \\\\\n" in text
  assert r"\caption{Dummy table \& its caption.}" in text
  assert "dummy_t" not in text  # LaTeX holds tables only


def test_a_dummy_section_is_in_html(written):
  text = written["html"]
  assert (
    '<h2>Dummy <code>a_b</code></h2>\n<p>A note for every reader.</p>\n<table id="dummy">' in text
  )
  assert "<tr><td>x_1</td><td><strong>0.5</strong>†</td></tr>" in text
  assert '<img alt="budget t" src="figures/dummy_t.svg"><figcaption>A dummy figure.' in text


def test_the_dummy_figure_is_drawn_from_its_spec(written):
  svg = (written["out"] / "figures" / "dummy_t.svg").read_text()
  assert svg.startswith("<?xml") and "t: dummy" in svg


def test_a_section_renders_by_its_blocks_alone():
  """Every block type is known to every renderer: no section needs code of its own."""
  fake = report.Report("T", (DUMMY,), [], [], [], [], [], [])
  assert "Dummy" in render.markdown(fake) and "Dummy" in render.page(fake)
  assert r"\caption{Dummy table" in render.latex(fake)
