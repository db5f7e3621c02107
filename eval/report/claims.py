"""The RLLC paper's claims about its Table 1, each counted on the paper's cells and here.

A claim says that some of the paper's optimizers beat a reference: the best
of its three baselines (SGD, momentum, Adam) in a cell, or one named
baseline. Counted by final test accuracy, as displayed (2 decimals), on the
tasks of the paper's Table 1 (`protocol.PAPER_TASKS`), strictly better
wins, so that a reader can redo every count from the two tables:

- paper: in how many of the claim's cells of Table 1 ours beats the
  reference there;
- here: in how many of the cells this report has, ours beats the reference
  here (a cell counts when ours has a record and every reference it needs
  does; a diverged cell never wins, and a diverged reference is beaten by
  any number);
- paper, same cells: the paper's count on just those cells, and the number
  of cells on which the two verdicts agree.

How close the cells are: the share of this report's accuracy cells within
WITHIN points of the paper's, in sample (CALIBRATION_CELLS, the cells that
chose the paper protocol) and out of sample.
"""

import dataclasses

from eval.report import comparison, paper_numbers
from eval.run import protocol
from rllc import catalog

WITHIN = 0.3  # accuracy points: a cell "reproduces" the paper's when |here - paper| <= this
BASELINES = ("sgd", "momentum", "adam")  # the paper's three, in its row order
# Table 1's rows of ours: RLLC on eight propagators.
RLLC_ROWS = tuple(name for name in paper_numbers.PAPER_ROWS if name not in BASELINES)


@dataclasses.dataclass(frozen=True)
class Claim:
  """A claim that `ours` beat `against` (None: the best of BASELINES) in the paper's words."""

  words: str  # quoted from the paper
  where: str  # its place in the paper
  ours: tuple[str, ...]  # canonical optimizer names whose cells it is about
  against: str | None = None


CLAIMS = (
  Claim(
    "in a variety of standard problems, these optimizers outperform the above mentioned three"
    " classical optimizers",
    "abstract",
    RLLC_ROWS,
  ),
  Claim(
    "[RLLC on one momentum unit] outperforms the plain momentum SGD method",
    "section 6, RLLC based adaptive learning rate",
    ("M(0.9)",),
    "momentum",
  ),
  Claim(
    "[M(β)⊕M(0)] demonstrated competitive or even superior performance compared to the Adam"
    " optimizer in many tasks",
    "section 1",
    ("M(0.9)+M(0)",),
    "adam",
  ),
  Claim(
    "[M2(0.6), M3(0.6) and M(0.9)⊕M2(0.6)] surpass the baseline optimizers in many tasks",
    "section 6, Mm(λ) propagator",
    ("M2(0.6)", "M3(0.6)", "M(0.9)+M2(0.6)"),
  ),
)


@dataclasses.dataclass(frozen=True)
class Verdict:
  claim: Claim
  paper: tuple[int, int]  # (cells where ours wins in the paper, cells of the claim)
  here: tuple[int, int]  # (cells where ours wins here, cells this report has)
  paper_same: int  # the paper's wins on the cells this report has
  agree: int  # cells this report has on which here and the paper agree


def _paper_acc(task: str, name: str) -> float:
  return paper_numbers.TABLE1[task, protocol.canonical_name(name)][1]


def _here_acc(table: comparison.Comparison) -> dict[tuple[str, str], comparison.Cell]:
  """(task, canonical name) -> accuracy cell, an initial-law suffix dropped (L0 = ones is the
  paper protocol's)."""
  return {
    (task, catalog.split_initial_law(opt)[0]): table.cells[opt, task, "acc"]
    for opt in table.optimizers
    for task in table.tasks
  }


def _reference(claim: Claim) -> tuple[str, ...]:
  return BASELINES if claim.against is None else (claim.against,)


def _here_win(cells: dict, task: str, name: str, reference: tuple[str, ...]) -> bool | None:
  """Ours beats the best of `reference` on the task here; None when a cell is missing."""
  found = [cells.get((task, protocol.canonical_name(n))) for n in (name, *reference)]
  if any(cell is None or cell.state == "missing" for cell in found):
    return None
  ours, *refs = found
  return ours.state == "ok" and all(r.state != "ok" or ours.mean > r.mean for r in refs)


def verdicts(table: comparison.Comparison) -> list[Verdict]:
  """Each claim of CLAIMS, counted (module docstring); [] for a table with no paper cell."""
  if not comparison.beside_paper(table):
    return []
  cells = _here_acc(table)
  out = []
  for claim in CLAIMS:
    reference = _reference(claim)
    paper_wins, here_wins, same, agree, have = 0, 0, 0, 0, 0
    for task in protocol.PAPER_TASKS:
      for name in claim.ours:
        paper = _paper_acc(task, name) > max(_paper_acc(task, r) for r in reference)
        paper_wins += paper
        here = _here_win(cells, task, name, reference)
        if here is None:
          continue
        have += 1
        here_wins += here
        same += paper
        agree += here == paper
    total = len(protocol.PAPER_TASKS) * len(claim.ours)
    out.append(Verdict(claim, (paper_wins, total), (here_wins, have), same, agree))
  return out


# The cells that chose the paper protocol: reports/calibration_initial_law.md
# picked its selection rule (valid_accuracy) and RLLC's initial law (ones)
# because they reproduce the paper on these cells, so agreement there is in
# sample; every other cell of Table 1 is out of sample.
CALIBRATION_CELLS = frozenset(
  {
    ("mnist-mlp", "M(0.9)"),
    ("mnist-mlp", "M(0.9)+M(0)"),
    ("mnist-mlp", "M(0.9)+M(0.8)+M(0.7)"),
    ("mnist-mlp", "momentum"),
    ("mnist-mlp", "adam"),
    ("fmnist-mlp", "M(0.9)+M(0)"),
    ("fmnist-mlp", "momentum"),
    ("fmnist-mlp", "adam"),
  }
)


def within(table: comparison.Comparison) -> dict[str, tuple[int, int]]:
  """Accuracy cells within WITHIN points of the paper's, of those beside it: (near, total) for
  "all", "in sample" (CALIBRATION_CELLS) and "out of sample"."""
  counts = {"all": [0, 0], "in sample": [0, 0], "out of sample": [0, 0]}
  for task, opt, *_, gap in comparison.beside_paper(table):
    if not gap:
      continue
    spec = catalog.split_initial_law(opt)[0]
    sample = "in sample" if (task, spec) in CALIBRATION_CELLS else "out of sample"
    near = abs(float(gap)) <= WITHIN  # the gap as displayed (2 decimals), as the table shows it
    for group in ("all", sample):
      counts[group][0] += near
      counts[group][1] += 1
  return {group: (near, total) for group, (near, total) in counts.items()}


HEAD = ("Claim (the paper's words)", "Where", "Against", "Paper", "Here", "Paper, same cells")


def rows(table: comparison.Comparison) -> list[tuple[str, ...]]:
  """The claims table of a report: one row per claim, the counts as text."""
  out = []
  for v in verdicts(table):
    against = "the best of SGD, momentum, Adam" if v.claim.against is None else v.claim.against
    here_won, have = v.here
    same = f"{v.paper_same} of {have}; agree on {v.agree}" if have else "-"
    out.append(
      (
        f"“{v.claim.words}”",
        v.claim.where,
        against,
        f"{v.paper[0]} of {v.paper[1]}",
        f"{here_won} of {have}" if have else "no cell run",
        same,
      )
    )
  return out


def note(table: comparison.Comparison) -> str:
  """The sentence above the claims table: how many cells land near the paper's, and the rule."""
  counts = within(table)
  near, total = counts["all"]
  split = "; ".join(f"{group} {n} of {t}" for group, (n, t) in counts.items() if group != "all")
  return (
    f"{near} of {total} accuracy cells here are within ±{WITHIN:g} points of the paper's"
    f" ({split}: in sample, the cells of reports/calibration_initial_law.md, which chose the"
    " paper protocol's selection rule and initial law)."
    " The paper's claims, counted by final test accuracy as displayed (strictly better wins) on"
    " the cells of its Table 1 (Paper), on the cells this report has (Here; a cell counts when"
    " ours and every reference have a record), and the paper's count on those same cells, with"
    " the number of cells where the two verdicts agree."
  )
