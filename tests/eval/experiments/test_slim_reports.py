"""eval.experiments.slim_reports: one figure format (SVG) in the committed reports.

The fixture is a report as the old renderer wrote it: `figures/X.png` beside
`figures/X.svg`, an md linking the PNG and an html embedding its bytes as
base64. The expected texts are written out by hand from that layout (the md
link and html src that the SVG-only renderer writes), never taken from the
command's output.
"""

import base64
import re
import subprocess
import sys
from pathlib import Path

import pytest

from eval.experiments import slim_reports as slim

ROOT = Path(__file__).resolve().parents[3]
TABLE = "| Optimizer | Acc |\n| --- | --- |\n| adam | 97.90 ± 0.11 |\n"
PNG_A, PNG_B, PNG_ALONE = b"\x89PNG a", b"\x89PNG b", b"\x89PNG alone"


def _data_uri(data: bytes) -> str:
  return f"data:image/png;base64,{base64.b64encode(data).decode()}"


def _old_report(root: Path) -> Path:
  """reports/r/: two figures with both formats, one PNG alone, md and html of the old renderer."""
  report = root / "r"
  (report / "figures").mkdir(parents=True)
  for stem, data in (("a", PNG_A), ("b", PNG_B)):
    (report / "figures" / f"{stem}.png").write_bytes(data)
    (report / "figures" / f"{stem}.svg").write_text(f"<svg>{stem}</svg>")
  (report / "figures" / "alone.png").write_bytes(PNG_ALONE)
  (report / "report.md").write_text(
    f"# Results\n\n{TABLE}\n![profile all](figures/a.png)\n\n![budget t](figures/b.png)\n\n"
    "![alone](figures/alone.png)\n\nThe curves in `figures/a.png`; see https://x.org/a.png.\n"
  )
  (report / "report.html").write_text(
    f"<table><tr><td>97.90 ± 0.11</td></tr></table>\n"
    f'<figure><img alt="profile all" src="{_data_uri(PNG_A)}"><figcaption>A</figcaption></figure>\n'
    f'<figure><img alt="budget t" src="{_data_uri(PNG_B)}"><figcaption>B</figcaption></figure>\n'
    f'<figure><img alt="alone" src="{_data_uri(PNG_ALONE)}"><figcaption>C</figcaption></figure>\n'
  )
  return report


def test_slimming_links_the_svgs_and_deletes_their_png_twins(tmp_path):
  report = _old_report(tmp_path)
  assert slim.main([str(tmp_path)]) == 0
  assert (report / "report.md").read_text() == (
    f"# Results\n\n{TABLE}\n![profile all](figures/a.svg)\n\n![budget t](figures/b.svg)\n\n"
    "![alone](figures/alone.png)\n\nThe curves in `figures/a.svg`; see https://x.org/a.png.\n"
  )
  assert (report / "report.html").read_text() == (
    "<table><tr><td>97.90 ± 0.11</td></tr></table>\n"
    '<figure><img alt="profile all" src="figures/a.svg"><figcaption>A</figcaption></figure>\n'
    '<figure><img alt="budget t" src="figures/b.svg"><figcaption>B</figcaption></figure>\n'
    f'<figure><img alt="alone" src="{_data_uri(PNG_ALONE)}"><figcaption>C</figcaption></figure>\n'
  )
  left = sorted(p.name for p in (report / "figures").iterdir())
  assert left == ["a.svg", "alone.png", "b.svg"]  # a PNG with no SVG twin stays


def test_an_image_is_matched_by_its_bytes_not_its_position(tmp_path):
  # The html shows b before a: each img gets the SVG of the PNG whose bytes it embeds.
  report = _old_report(tmp_path)
  page = report / "report.html"
  first, second = (f'<img src="{_data_uri(d)}">' for d in (PNG_B, PNG_A))
  page.write_text(f"{first}\n{second}\n")
  slim.main([str(tmp_path)])
  assert page.read_text() == '<img src="figures/b.svg">\n<img src="figures/a.svg">\n'


def _figures_masked(text: str) -> str:
  """`text` with every figure reference (md path to a .png/.svg, html src) replaced by FIG."""
  text = re.sub(r'src="[^"]*"', "src=FIG", text)
  return re.sub(r"[\w./:-]+\.(?:png|svg)\b", "FIG", text)


def test_nothing_but_the_figure_references_changes(tmp_path):
  # Tables, numbers, captions, alt texts: all byte-identical once the references are masked.
  report = _old_report(tmp_path)
  before = {p: p.read_text() for p in (report / "report.md", report / "report.html")}
  slim.main([str(tmp_path)])
  for path, old in before.items():
    new = path.read_text()
    assert new != old
    assert _figures_masked(new) == _figures_masked(old), path
  assert TABLE in (report / "report.md").read_text()


def test_a_second_run_changes_nothing(tmp_path, capsys):
  report = _old_report(tmp_path)
  slim.main([str(tmp_path)])
  after = {p: p.read_bytes() for p in sorted(report.rglob("*")) if p.is_file()}
  capsys.readouterr()
  assert slim.main([str(tmp_path)]) == 0
  assert {p: p.read_bytes() for p in sorted(report.rglob("*")) if p.is_file()} == after
  assert "0 text file(s) and 0 PNG(s) changed" in capsys.readouterr().out


def test_a_dry_run_lists_the_changes_and_writes_nothing(tmp_path, capsys):
  report = _old_report(tmp_path)
  before = {p: p.read_bytes() for p in sorted(report.rglob("*")) if p.is_file()}
  assert slim.main([str(tmp_path), "--dry-run"]) == 0
  assert {p: p.read_bytes() for p in sorted(report.rglob("*")) if p.is_file()} == before
  out = capsys.readouterr().out
  assert f"would delete {report / 'figures' / 'a.png'}" in out
  assert f"would rewrite {report / 'report.md'}" in out
  assert "alone.png" in out  # the md's PNG with no SVG is listed as kept
  assert "2 text file(s) and 2 PNG(s) changed" in out


@pytest.mark.parametrize("bad", ["missing_dir", "a_file.md"])
def test_a_path_that_is_not_a_directory_exits_2_with_a_message(tmp_path, bad):
  (tmp_path / "a_file.md").write_text("x")
  result = subprocess.run(
    [sys.executable, "-m", "eval.experiments.slim_reports", str(tmp_path / bad)],
    cwd=ROOT,
    capture_output=True,
    text=True,
  )
  assert result.returncode == 2
  assert f"{tmp_path / bad} is not a directory" in result.stderr
  assert "Traceback" not in result.stderr


def test_a_file_that_is_not_utf8_is_listed_and_left(tmp_path, capsys):
  report = _old_report(tmp_path)
  odd = report / "notes.md"
  odd.write_bytes(b"figures/a.png \xff\xfe")
  assert slim.main([str(tmp_path)]) == 0
  assert odd.read_bytes() == b"figures/a.png \xff\xfe"
  assert f"{odd}: kept as it is, not UTF-8 text" in capsys.readouterr().out


def test_a_write_refused_exits_1_naming_the_file_and_deletes_no_png(tmp_path, monkeypatch, capsys):
  report = _old_report(tmp_path)

  def refuse(path, data):
    raise OSError(28, "No space left on device", str(path))

  monkeypatch.setattr(slim.store_lib, "atomic_write", refuse)
  assert slim.main([str(tmp_path)]) == 1
  err = capsys.readouterr().err
  assert f"{report / 'report.html'}: No space left on device" in err
  assert (report / "figures" / "a.png").is_file()  # texts first: a PNG goes only once linked


def _d(*commands: str) -> str:
  """Path data as matplotlib writes it: one command a line, each ending in a space."""
  return "".join(f"{c} \n" if c != "z" else "z\n" for c in commands)


@pytest.mark.parametrize(
  ("before", "after"),
  [
    # a step function sampled at 4 points, drawn with ax.step: repeats and flat runs go
    (
      _d("M 0 5", "L 1 5", "L 1 5", "L 2 5", "L 2 3", "L 3 3", "L 3 3", "L 4 3"),
      _d("M 0 5", "L 2 5", "L 2 3", "L 4 3"),
    ),
    (_d("M 0 0", "L 0 1", "L 0 2", "L 1 2", "z"), _d("M 0 0", "L 0 2", "L 1 2", "z")),
    # a run that turns back keeps its turning point
    (_d("M 0 0", "L 5 0", "L 3 0"), _d("M 0 0", "L 5 0", "L 3 0")),
    # a diagonal run is left as written
    (_d("M 0 0", "L 1 1", "L 2 2"), _d("M 0 0", "L 1 1", "L 2 2")),
    # a curve, two subpaths, a path that would keep one vertex: as written
    (_d("M 0 0", "C 1 1 2 2 3 3", "L 4 3", "L 5 3"), None),
    (_d("M 0 0", "L 1 0", "L 2 0", "M 5 5", "L 6 5"), None),
    (_d("M 1 1", "L 1 1"), None),
  ],
)
def test_a_polyline_loses_its_repeated_and_straight_run_vertices_only(before, after):
  assert slim.polyline(before) == (before if after is None else after)


def test_svg_simplification_is_opt_in_and_touches_only_polyline_data(tmp_path):
  svg = tmp_path / "r" / "figures" / "p.svg"
  svg.parent.mkdir(parents=True)
  step = _d("M 0 5", "L 1 5", "L 1 5", "L 2 5")
  svg.write_text(f'<svg><path id="a" d="{step}" style="stroke: #000"/><text>97.90</text></svg>')
  slim.main([str(tmp_path)])
  assert step in svg.read_text()  # the default run leaves SVGs alone
  slim.main([str(tmp_path), "--simplify-svg"])
  expected = _d("M 0 5", "L 2 5")
  assert svg.read_text() == (
    f'<svg><path id="a" d="{expected}" style="stroke: #000"/><text>97.90</text></svg>'
  )


def test_the_committed_reports_carry_svg_figures_only():
  # The repository's state after `python -m eval.experiments.slim_reports reports`.
  reports = ROOT / "reports"
  assert not slim.png_twins(reports)
  for page in reports.rglob("*.html"):
    text = page.read_text(encoding="utf-8")
    assert "data:image/png" not in text, page
    for src in re.findall(r'<img[^>]* src="([^"]+)"', text):
      assert (page.parent / src).is_file(), (page, src)
  for doc in reports.rglob("*.md"):
    for link in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", doc.read_text(encoding="utf-8")):
      assert link.endswith(".svg") and (doc.parent / link).is_file(), (doc, link)


def test_a_report_links_the_same_figures_from_its_md_and_its_html():
  # md links were rewritten by name, html images by their bytes: two ways, one answer.
  for page in (ROOT / "reports").rglob("report.html"):
    md = page.with_suffix(".md").read_text(encoding="utf-8")
    html = page.read_text(encoding="utf-8")
    md_links = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", md)
    assert re.findall(r'<img[^>]* src="([^"]+)"', html) == md_links, page
