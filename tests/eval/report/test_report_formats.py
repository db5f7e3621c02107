r"""The report's files as their readers take them: LaTeX, a browser, the command line.

- report.tex: LaTeX is not installed here, so `latex_problems` below, a strict
  checker of the subset of LaTeX the report writes, reads it (and is itself
  shown to catch broken snippets); where pdflatex is on PATH, a wrapper
  document that \input's it is compiled too.
- report.html: balanced tags, one comparison table, figures linked as SVG files,
  nothing fetched from elsewhere; and headless Chromium renders it (a
  screenshot that is not blank, and the table in the rendered DOM).
- `rllc report --format`: only the formats asked for; an unknown one exits 2.

The store exercises every mark of the comparison table (best, best baseline,
both at once, a win of ours, a significant one, a missing and a diverged cell,
a cell with fewer seeds) and names with every LaTeX special character.
"""

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from eval.cli import commands as cli
from eval.report import build as report
from eval.store import records as records_lib
from eval.store import store as store_lib

# A task name with every LaTeX special character (and "_"), beside a plain one.
ODD_TASK = "toy_set&50%$#{1}~^\\x"
TASKS = ("digits-mlp", ODD_TASK)
SPEC = "M(0.9)+M(0)"
FIXED = "lm:M(0.9)"
OPTIMIZERS = ("adam", "momentum", "sgd", "am-sgd", FIXED, SPEC)
PNG = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- the store


def _runs(make_record, task, optimizer, family, hparams, values, status="ok", units=0):
  """One record per seed, values [(test loss, test accuracy)], with exactly these hparams.

  Family and hparams are set here (and the key made again), so the records do
  not depend on how the shared fake_record guesses them from the name.
  """
  records = []
  for seed, (loss, acc) in enumerate(values):
    record = make_record(
      task,
      optimizer,
      seed,
      lr=hparams["learning_rate"],
      test_loss=loss,
      test_accuracy=acc,
      status=status,
      units=units,
    )
    record["family"] = family
    record["hparams"] = dict(hparams)
    record["key"] = store_lib.record_key(records_lib.identity_of(record), record["environment"])
    records.append(record)
  return records


RLLC = {"learning_rate": 0.1, "law_learning_rate": 0.01}


def _on_each_task(task: str) -> list[tuple]:
  return [
    # Baselines: adam the best of them, momentum worse.
    (task, "adam", "baseline", {"learning_rate": 0.01}, [0.30, 0.31, 0.32], [0.90, 0.91, 0.92]),
    (task, "momentum", "baseline", {"learning_rate": 0.1}, [0.4, 0.41, 0.42], [0.8, 0.81, 0.82]),
    # Fixed law: beats adam's loss as displayed, too noisy to be significant (a dagger).
    (task, FIXED, "fixed-law", {"learning_rate": 0.5, "law": [0.5]}, [0.05, 0.45, 0.25],
     [0.95, 0.75, 0.85], "ok", 1),
    # RLLC, relative_eps varied: the selected setting wins clearly on loss (a double dagger)
    # and, on ODD_TASK, loses on accuracy, so that adam is both best and best baseline there.
    (task, SPEC, "rllc", {**RLLC, "relative_eps": 0.001}, [0.10, 0.11, 0.12],
     [0.95, 0.96, 0.97] if task == "digits-mlp" else [0.88, 0.89, 0.90], "ok", 2),
    (task, SPEC, "rllc", {**RLLC, "relative_eps": 0.01}, [0.2, 0.21, 0.22], [0.85, 0.86, 0.87],
     "ok", 2),
  ]  # fmt: skip


# (task, optimizer, family, hparams, test losses, test accuracies[, status[, law units]])
MARKS = [
  *_on_each_task("digits-mlp"),
  *_on_each_task(ODD_TASK),
  # sgd: fine on digits-mlp, every seed diverged on ODD_TASK.
  ("digits-mlp", "sgd", "baseline", {"learning_rate": 0.1}, [0.5] * 3, [0.5] * 3),
  (ODD_TASK, "sgd", "baseline", {"learning_rate": 1.0}, [1.0] * 3, [0.1] * 3, "diverged"),
  # am-sgd: two seeds (n=2 in its cells), beta_max varied, no record on ODD_TASK (missing).
  ("digits-mlp", "am-sgd", "adaptive-memory", {"learning_rate": 0.1, "beta_max": 0.9},
   [0.35, 0.36], [0.88, 0.89]),
  ("digits-mlp", "am-sgd", "adaptive-memory", {"learning_rate": 0.1, "beta_max": 0.99},
   [0.37, 0.38], [0.88, 0.89]),
]  # fmt: skip


def marks_records(make_record) -> list[dict]:
  """Every mark of the comparison table, on both tasks (see the module docstring)."""
  records = []
  for task, optimizer, family, hparams, losses, accuracies, *rest in MARKS:
    values = list(zip(losses, accuracies, strict=True))
    records += _runs(make_record, task, optimizer, family, hparams, values, *rest)
  return records


SECONDS = {(task, opt): 10.0 + i for task in TASKS for i, opt in enumerate(("adam", SPEC))}
_BUILT: dict = {}  # the marks store's report, written once per test process


@pytest.fixture
def built(fake_record, fake_store, tmp_path_factory):
  """(Report, its directory) of the marks store: report.md, report.tex, report.html, figures."""
  if not _BUILT:
    root = tmp_path_factory.mktemp("formats")
    fake_store(root / "store", marks_records(fake_record), SECONDS)
    made = report.build(root / "store")
    report.write(made, root / "report")
    _BUILT.update(report=made, out=root / "report")
  return _BUILT["report"], _BUILT["out"]


# ---------------------------------------------------------------- a strict LaTeX checker

# What report.tex may use: booktabs tables, a few marks and the escapes of tex_escape.
TEXT_COMMANDS = frozenset(
  {"begin", "end", "centering", "small", "toprule", "midrule", "bottomrule", "caption"}
  | {"textbf", "underline", "textbackslash", "textasciitilde", "textasciicircum"}
)
MATH_COMMANDS = frozenset({"pm", "dagger", "ddagger"})  # errors outside math
SYMBOLS = frozenset("_&%$#{}\\")  # \_ \& \% \$ \# \{ \} and \\ (a row's end)
ENVIRONMENTS = frozenset({"table", "tabular"})
RULES = frozenset({r"\toprule", r"\midrule", r"\bottomrule"})
_GROUP = re.compile(r"\{([^{}\\]*)\}")


def _tokens(line: str):
  """(kind, value, start, end): "cmd" \\word, "sym" \\x (x not a letter), "char" c."""
  i = 0
  while i < len(line):
    if line[i] != "\\":
      yield "char", line[i], i, i + 1
      i += 1
      continue
    j = i + 1
    while j < len(line) and line[j].isascii() and line[j].isalpha():
      j += 1
    if j > i + 1:
      yield "cmd", line[i + 1 : j], i, j
      i = j
    else:
      yield "sym", line[j : j + 1], i, j + 1  # "" for a backslash that ends the line
      i = j + 1


def _columns(spec: str) -> int | None:
  """Columns of a tabular spec of l, c, r (and |); None for anything else."""
  return None if set(spec) - set("lcr|") else sum(c in "lcr" for c in spec)


def latex_problems(text: str) -> list[str]:
  r"""Why `text` is not a valid LaTeX fragment of the report's kind ([] if it is).

  Checked: braces balance (escaped ones aside); environments (table, tabular
  only) close in order; `$` pairs up on each line; no special character
  unescaped (& only between cells of a row, % only in comment lines, _ ^ ~
  only in math, # nowhere); each tabular row has as many cells as the column
  spec, ends with \\ and does not start with [ or * (which the \\ before it
  would read as its argument); only the allowed commands, math ones in math;
  ASCII only; no \documentclass, so it can be \input.
  """
  problems = []
  depth = 0  # brace depth, over the whole text
  envs: list[tuple[str, int]] = []  # open environments and their lines
  columns = 0  # of the innermost open tabular

  def bad(number: int, message: str) -> None:
    problems.append(f"line {number}: {message}")

  for number, line in enumerate(text.splitlines(), 1):
    if line.lstrip().startswith("%"):
      continue  # a comment line
    if not line.isascii():
      bad(number, f"non-ASCII character(s) {sorted({c for c in line if not c.isascii()})}")
    row = bool(envs) and envs[-1][0] == "tabular"  # a row, unless the tabular ends here
    math, cells, skip_to, tokens = False, 1, 0, list(_tokens(line))
    for index, (kind, value, start, end) in enumerate(tokens):
      if start < skip_to:
        continue  # an environment's name or column spec, read already
      if kind == "cmd" and value in ("begin", "end"):
        group = _GROUP.match(line, end)
        if group is None:
          bad(number, f"\\{value} without {{name}}")
          continue
        name, skip_to = group.group(1), group.end()
        if value == "begin":
          if name not in ENVIRONMENTS:
            bad(number, f"environment {name!r} not allowed")
          envs.append((name, number))
          row = False
          if name == "tabular":
            spec = _GROUP.match(line, skip_to)
            columns = _columns(spec.group(1)) if spec else None
            if columns is None:
              bad(number, "tabular without a column spec of l, c, r")
              columns = 0
            else:
              skip_to = spec.end()
        else:
          if not envs or envs[-1][0] != name:
            opened = f"\\begin{{{envs[-1][0]}}}" if envs else "nothing"
            bad(number, f"\\end{{{name}}} closes {opened}")
          else:
            envs.pop()
          row = False
      elif kind == "cmd":
        if value == "documentclass":
          bad(number, "\\documentclass: a file to \\input must not be a document")
        elif value in MATH_COMMANDS:
          if not math:
            bad(number, f"\\{value} outside math")
        elif value not in TEXT_COMMANDS:
          bad(number, f"command \\{value} not allowed")
      elif kind == "sym":
        if value not in SYMBOLS:
          bad(number, f"control symbol \\{value} not allowed")
        elif value == "\\" and (not row or line[end:].strip() or index != len(tokens) - 1):
          bad(number, "\\\\ other than at the end of a tabular row")
      elif value == "{":
        depth += 1
      elif value == "}":
        depth -= 1
        if depth < 0:
          bad(number, "unbalanced braces: } closes nothing")
          depth = 0
      elif value == "$":
        math = not math
      elif value == "&":
        cells += 1
      elif value == "%":
        bad(number, "unescaped % (comments the rest of the line out)")
      elif value == "#":
        bad(number, "unescaped #")
      elif value in "_^~" and not math:
        bad(number, f"unescaped {value} outside math")
    if math:
      bad(number, "unpaired $ (math not closed on its line)")
    stripped = line.strip()
    if not row:
      if cells > 1:
        bad(number, "& outside a tabular row")
    elif stripped not in RULES:
      if not stripped.endswith("\\\\"):
        bad(number, "tabular row does not end with \\\\")
      if cells != columns:
        bad(number, f"{cells} cell(s) in a row of a {columns}-column tabular")
      if stripped[:1] in ("[", "*"):
        bad(number, f"row starts with {stripped[0]!r}, read as an argument of the \\\\ before it")
  if depth:
    problems.append(f"unbalanced braces: {depth} {{ never closed")
  problems += [f"line {n}: \\begin{{{name}}} never ended" for name, n in envs]
  return problems


def _table(*rows: str, spec: str = "ll") -> str:
  """A booktabs table as render.py writes them, around the given rows."""
  head = ["\\begin{table}[htbp]", "\\centering", f"\\begin{{tabular}}{{{spec}}}", "\\toprule"]
  tail = ["\\bottomrule", "\\end{tabular}", "\\caption{A caption, 5\\% $\\pm$ 1.}", "\\end{table}"]
  return "\n".join([*head, *rows, *tail]) + "\n"


def test_checker_passes_a_valid_table():
  text = "% a comment, 100% unescaped: fine\n" + _table(
    r"Task & \textbf{\underline{a\_b \& c}}$^{\ddagger}$ \\",
    r"\midrule",
    r" & 0.1 $\pm$ 0.2 \textasciitilde{}\textbackslash{}\{\}\#\$ \\",
  )
  assert latex_problems(text) == []


@pytest.mark.parametrize(
  "text, expected",
  [
    (_table(r"a & \textbf{b \\"), "braces"),
    (_table(r"a & b} \\"), "braces"),
    (_table(r"a_b & c \\"), "unescaped _"),
    (_table(r"a & b & c \\"), "3 cell(s) in a row of a 2-column"),
    (_table(r"a & b"), "does not end with"),
    (_table(r"\textit{a} & b \\"), "command \\textit not allowed"),
    (_table(r"a & b \\").replace("\\end{table}", ""), "\\begin{table} never ended"),
    (_table(r"a & b \\").replace("\\end{tabular}", "\\end{table}\n\\end{tabular}"), "closes"),
    (_table(r"a & $\pm b \\"), "unpaired $"),
    (_table(r"a & b \pm c \\"), "\\pm outside math"),
    (_table(r"a & 5% \\"), "unescaped %"),
    (_table(r"a & #1 \\"), "unescaped #"),
    (_table(r"a & b~c \\"), "unescaped ~"),
    (_table(r"a & b \\") + "x & y\n", "& outside a tabular row"),
    (_table(r"a & b \\", r"[1] & b \\"), "read as an argument"),
    (_table(r"a & b \\", spec="lp{2cm}"), "column spec"),
    (_table(r"a & 1±2 \\"), "non-ASCII"),
    ("\\documentclass{article}\n" + _table(r"a & b \\"), "\\documentclass"),
  ],
)
def test_checker_catches_broken_latex(text, expected):
  problems = latex_problems(text)
  assert any(expected in p for p in problems), problems


def test_latex_is_valid_and_shows_every_mark(built):
  _, out = built
  tex = (out / "report.tex").read_text(encoding="utf-8")
  assert latex_problems(tex) == []
  # The store did exercise what the checker was meant to see.
  marks = [
    r"\textbf{\underline{",  # best and best baseline at once
    r"\underline{",
    r"$^{\dagger}$",
    r"$^{\ddagger}$",
    r"\textbf{0.1100 $\pm$ 0.0100}$^{\ddagger}$",
    "(n=2)",
    " & missing ",
    " & diverged ",
    r"lm:M(0.9)",
    r"beta\_max 0.9",
    r"relative\_eps 0.001",
    r"toy\_set\&50\%\$\#\{1\}\textasciitilde{}\textasciicircum{}\textbackslash{}x",
  ]
  assert [m for m in marks if m not in tex] == []
  # the answer; comparison, tests, settings, overhead; and the review's profile areas, two
  # aggregates and two tuning-budget tables (loss, accuracy).
  assert tex.count(r"\begin{tabular}") == 1 + 4 + 5


def test_latex_has_no_angle_brackets_in_text_mode(built):
  _, out = built
  lines = (out / "report.tex").read_text(encoding="utf-8").splitlines()
  text_mode = [  # the line less its math, after taking out escaped dollars (a task's name)
    re.sub(r"\$[^$]*\$", "", line.replace(r"\$", "")) for line in lines if not line.startswith("%")
  ]
  assert [line for line in text_mode if "<" in line or ">" in line] == []


def test_latex_compiles_where_pdflatex_is_installed(built, tmp_path):
  pdflatex = shutil.which("pdflatex")
  if pdflatex is None:
    pytest.skip("pdflatex is not installed; report.tex was checked by latex_problems only")
  _, out = built
  shutil.copy(out / "report.tex", tmp_path / "report.tex")
  (tmp_path / "main.tex").write_text(
    "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n"
    "\\input{report.tex}\n\\end{document}\n"
  )
  done = subprocess.run(
    [pdflatex, "-interaction=nonstopmode", "-halt-on-error", "main.tex"],
    cwd=tmp_path,
    capture_output=True,
    text=True,
    timeout=60,
  )
  assert done.returncode == 0, done.stdout[-3000:]
  assert "Missing character" not in (tmp_path / "main.log").read_text(errors="replace")


# ---------------------------------------------------------------- HTML

VOID = frozenset({"meta", "img", "br"})


class _Html(HTMLParser):
  """Tags and their balance; the cell texts of the comparison table (id comparison-quick)."""

  def __init__(self):
    super().__init__(convert_charrefs=True)
    self.open: list[tuple[str, tuple[int, int]]] = []
    self.problems: list[str] = []
    self.starts: list[tuple[str, dict]] = []
    self.rows: list[list[str]] = []  # of the comparison table
    self._in_table = False
    self._cell: list[str] | None = None

  def handle_starttag(self, tag, attrs):
    attrs = dict(attrs)
    self.starts.append((tag, attrs))
    if tag not in VOID:
      self.open.append((tag, self.getpos()))
    if tag == "table" and attrs.get("id") == "comparison-quick-valid_loss":
      self._in_table = True
    elif self._in_table and tag == "tr":
      self.rows.append([])
    elif self._in_table and tag in ("td", "th"):
      self._cell = []

  def handle_startendtag(self, tag, attrs):
    self.starts.append((tag, dict(attrs)))
    if tag not in VOID:
      self.problems.append(f"{self.getpos()}: <{tag}/> is not a void element")

  def handle_endtag(self, tag):
    if tag in VOID:
      self.problems.append(f"{self.getpos()}: </{tag}> of a void element")
    elif not self.open or self.open[-1][0] != tag:
      opened = f"<{self.open[-1][0]}> of {self.open[-1][1]}" if self.open else "nothing"
      self.problems.append(f"{self.getpos()}: </{tag}> closes {opened}")
    else:
      self.open.pop()
    if self._in_table and tag in ("td", "th") and self._cell is not None:
      self.rows[-1].append("".join(self._cell).strip())
      self._cell = None
    elif tag == "table":
      self._in_table = False

  def handle_data(self, data):
    if self._cell is not None:
      self._cell.append(data)


def parse_html(text: str) -> _Html:
  parser = _Html()
  parser.feed(text)
  parser.close()
  parser.problems += [f"<{tag}> of {pos} never closed" for tag, pos in parser.open]
  return parser


def test_html_checker_catches_unbalanced_tags():
  assert parse_html("<p><b>x</b></p><img src=''><br>").problems == []
  assert parse_html("<p><b>x</p></b>").problems
  assert parse_html("<div><p>x</p>").problems
  assert parse_html("<img src=''></img>").problems


def _comparison_rows_are_complete(rows: list[list[str]]) -> None:
  assert rows[0] == ["Optimizer", "", *TASKS]
  assert all(len(row) == 2 + len(TASKS) for row in rows)
  assert [row[0] for row in rows[1::3]] == list(OPTIMIZERS)
  assert [row[1] for row in rows[1:]] == ["Loss", "Acc", "Diverged"] * len(OPTIMIZERS)
  assert any("±" in cell for row in rows for cell in row[2:])


def test_html_is_one_balanced_page_that_links_its_svg_figures(built):
  made, out = built
  text = (out / "report.html").read_text(encoding="utf-8")
  page = parse_html(text)
  assert page.problems == []
  assert [a.get("id") for tag, a in page.starts if tag == "table"].count(
    "comparison-quick-valid_loss"
  ) == 1
  _comparison_rows_are_complete(page.rows)
  images = [a["src"] for tag, a in page.starts if tag == "img"]
  assert images == [f"{figure.stem}.svg" for figure in made.figures]
  assert {"profile", "budget", "accuracy"} <= {figure.kind for figure in made.figures}
  for src in images:  # relative paths to the SVG files beside the page, no data inside it
    assert src.startswith("figures/") and (out / src).read_bytes().startswith(b"<?xml")
  assert "base64" not in text and len(text.encode()) < 200_000
  lower = text.lower()
  for external in ('src="http', "href=", "<link", "<script src", "url("):
    assert external not in lower
  for tag, attrs in page.starts:
    assert "href" not in attrs, tag


# ---------------------------------------------------------------- headless Chromium


NO_CHROMIUM = (
  "Chromium is not installed (Debian package chromium; `make test` installs it where it can)"
)


def _chromium() -> str:
  path = "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None
  path = path or shutil.which("chromium")
  if path is None:
    pytest.skip(NO_CHROMIUM)
  return path


def _run_chromium(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
  command = [
    chromium,
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    f"--user-data-dir={profile}",
    *args,
  ]
  done = subprocess.run(command, capture_output=True, timeout=60)
  assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
  return done


def test_chromium_renders_the_table(built, tmp_path):
  chromium = _chromium()
  _, out = built
  url = (out / "report.html").resolve().as_uri()

  shot = tmp_path / "shot.png"
  _run_chromium(
    chromium, tmp_path / "profile-shot", "--window-size=1200,900", f"--screenshot={shot}", url
  )
  assert shot.read_bytes().startswith(PNG)
  with Image.open(shot) as image:
    pixels = image.convert("RGB")
  assert pixels.size == (1200, 900)
  colors = pixels.getcolors(maxcolors=pixels.width * pixels.height)
  assert len(colors) > 10
  ink = sum(count for count, rgb in colors if min(rgb) < 200)
  assert ink / (pixels.width * pixels.height) > 0.01

  # What Chromium rendered: the comparison table, every optimizer, mean ± std cells.
  dom = _run_chromium(chromium, tmp_path / "profile-dom", "--dump-dom", url).stdout.decode()
  rendered = parse_html(dom)
  _comparison_rows_are_complete(rendered.rows)
  source = parse_html((out / "report.html").read_text(encoding="utf-8"))
  assert rendered.rows == source.rows


# ---------------------------------------------------------------- rllc report --format


@pytest.fixture
def small_store(tmp_path, fake_record, fake_store):
  records = [
    fake_record("digits-mlp", "adam", seed, lr=0.01, test_loss=0.3 + seed / 100, test_accuracy=0.9)
    for seed in (0, 1)
  ]
  fake_store(tmp_path / "store", records, {("digits-mlp", "adam"): 5.0})
  return tmp_path / "store"


@pytest.mark.parametrize(
  "formats, expected",
  [
    (None, {"report.md", "report.tex", "report.html"}),
    ("md,tex", {"report.md", "report.tex"}),
    ("html", {"report.html"}),
  ],
)
def test_report_writes_the_formats_asked_for(small_store, tmp_path, capsys, formats, expected):
  out = tmp_path / "out"
  argv = ["report", str(small_store), "--out", str(out)]
  assert cli.main(argv + (["--format", formats] if formats else [])) == 0
  assert {p.name for p in out.iterdir()} == expected | {"figures"}
  printed = capsys.readouterr().out
  assert sorted(re.findall(r"wrote \S+/(report\.\w+)", printed)) == sorted(expected)


@pytest.mark.parametrize("png", [False, True])
def test_figures_are_svg_and_png_only_on_demand(small_store, tmp_path, capsys, png):
  out = tmp_path / "out"
  assert cli.main(["report", str(small_store), "--out", str(out), *(["--png"] * png)]) == 0
  svg = sorted(p.stem for p in (out / "figures").glob("*.svg"))
  made = sorted(p.stem for p in (out / "figures").glob("*.png"))
  assert svg and made == (svg if png else [])
  assert all(path.read_bytes().startswith(PNG) for path in (out / "figures").glob("*.png"))
  linked = re.findall(r"\]\(figures/([^)]+)\.svg\)", (out / "report.md").read_text())
  assert sorted(linked) == svg  # the md links every SVG, and no PNG
  assert ".png" not in (out / "report.md").read_text()
  assert f"({len(svg)} as SVG{' and PNG' * png})" in capsys.readouterr().out


@pytest.mark.parametrize("formats", ["pdf", "md,pdf", "", "md;tex"])
def test_report_refuses_an_unknown_format(small_store, tmp_path, capsys, formats):
  out = tmp_path / "out"
  with pytest.raises(SystemExit) as exit_info:
    cli.main(["report", str(small_store), "--format", formats, "--out", str(out)])
  assert exit_info.value.code == 2
  message = capsys.readouterr().err
  assert "--format" in message and "valid: md,tex,html" in message
  assert formats.split(",")[-1] in message
  assert not out.exists()
