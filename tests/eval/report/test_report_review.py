"""`rllc report`'s review sections (issue 18) on hand-made stores, against hand-worked numbers.

PROFILE_STORE has 3 tasks x 3 optimizers whose selected means are chosen so
that every ratio to the best is a round number (worked out in the comments);
each setting's 3 seeds are mean - 0.01, mean, mean + 0.01, so the means are
exact and every cell has a spread. A worse learning rate on every grid
gives the budget curves two points.
"""

import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from eval.report import build as report
from eval.report import robustness, statistics

TASKS = ("t1", "t2", "t3")
# (task, optimizer) -> (mean test loss, mean test error); None: every setting diverged.
MEANS = {
  ("t1", "sgd"): (0.40, 0.10),
  ("t1", "adam"): (0.20, 0.05),
  ("t1", "M(0.9)"): (0.25, 0.04),
  ("t2", "sgd"): (0.30, 0.08),
  ("t2", "adam"): (0.45, 0.12),
  ("t2", "M(0.9)"): (0.30, 0.06),
  ("t3", "sgd"): None,
  ("t3", "adam"): (0.50, 0.20),
  ("t3", "M(0.9)"): (0.60, 0.25),
}
# Loss ratios to the best of each task:  t1: sgd 2,   adam 1,   M 1.25
#                                       t2: sgd 1,   adam 1.5, M 1     (sgd and M tie)
#                                       t3: sgd inf, adam 1,   M 1.2
# Error ratios:                         t1: sgd 2.5, adam 1.25, M 1
#                                       t2: sgd 4/3, adam 2,    M 1
#                                       t3: sgd inf, adam 1,    M 1.25
LOSS_RATIOS = {"sgd": (2.0, 1.0, math.inf), "adam": (1.0, 1.5, 1.0), "M(0.9)": (1.25, 1.0, 1.2)}
ERROR_RATIOS = {"sgd": (2.5, 4 / 3, math.inf), "adam": (1.25, 2.0, 1.0), "M(0.9)": (1.0, 1.0, 1.25)}
OFFSETS = (-0.01, 0.0, 0.01)


def profile_records(make_record, tasks=TASKS) -> list[dict]:
  records = []
  for (task, opt), means in MEANS.items():
    if task not in tasks:
      continue
    units = {"units": 1} if opt.startswith("M(") else {}
    if means is None:
      for seed in range(3):
        records.append(
          make_record(task, opt, seed, lr=1.0, test_loss=1.0, test_accuracy=0.1, status="diverged")
        )
      continue
    loss, error = means
    for seed, offset in enumerate(OFFSETS):
      acc = 1 - error - offset
      records.append(
        make_record(task, opt, seed, lr=0.1, test_loss=loss + offset, test_accuracy=acc, **units)
      )
      records.append(  # worse on validation and on test
        make_record(task, opt, seed, lr=0.01, test_loss=loss + 1, test_accuracy=acc / 2, **units)
      )
  return records


_MADE: dict = {}  # the profile store and its report, made once per test process


@pytest.fixture
def profile_store(fake_record, fake_store, tmp_path_factory):
  if "store" not in _MADE:
    root = tmp_path_factory.mktemp("review") / "profiles"
    fake_store(root, profile_records(fake_record))
    _MADE["store"] = root
  return _MADE["store"]


@pytest.fixture
def built(profile_store) -> report.Report:
  """The profile store's report (not written), built once."""
  if "built" not in _MADE:
    _MADE["built"] = report.build(profile_store)
  return _MADE["built"]


def _write(store_dir, out, formats=report.FORMATS) -> dict[str, str]:
  """The report's files as text; the per-task figures of eval.report.figures (not this module's
  subject, and most of a report's time) are left out."""
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(report.figures, "specs", lambda *args: [])
    paths = report.write(report.build(store_dir), out, formats)
  return {p.suffix.lstrip("."): p.read_text() for p in paths}


@pytest.fixture
def written(profile_store, tmp_path_factory) -> dict[str, str]:
  """md, tex and html of the profile store's report, written once; and "out", its directory."""
  if "written" not in _MADE:
    out = tmp_path_factory.mktemp("review-out") / "report"
    _MADE["written"] = {**_write(profile_store, out), "out": str(out)}
  return _MADE["written"]


def section(text: str, start: str, end: str = "\n#### ") -> str:
  begin = text.index(start)
  stop = text.find(end, begin + len(start))
  return text[begin : stop if stop >= 0 else len(text)]


# ---------------------------------------------------------------- performance profiles


def test_profiles_of_a_hand_made_store_are_the_hand_worked_rho(built):
  (rev,) = built.reviews
  loss, error = rev.profiles
  order = list(loss.optimizers)
  for hand, profile in ((LOSS_RATIOS, loss), (ERROR_RATIOS, error)):
    for opt, ratios in hand.items():
      np.testing.assert_allclose(profile.ratios[:, order.index(opt)], ratios)
  rho = statistics.performance_profile(loss.ratios, [1.0, 1.2, 1.25, 1.5, 2.0])
  by_hand = {  # fraction of the 3 tasks with ratio <= tau
    "sgd": [1 / 3, 1 / 3, 1 / 3, 1 / 3, 2 / 3],
    "adam": [2 / 3, 2 / 3, 2 / 3, 1, 1],
    "M(0.9)": [1 / 3, 2 / 3, 1, 1, 1],
  }
  for opt, expected in by_hand.items():
    np.testing.assert_allclose(rho[order.index(opt)], expected)


def test_profile_area_table_shows_the_hand_worked_areas(written):
  text = section(written["md"], "#### Performance profiles")
  # Area at tau_max 2 = mean over tasks of max(0, 2 - r):
  # loss: sgd (0 + 1 + 0) / 3, adam (1 + 0.5 + 1) / 3, M (0.75 + 1 + 0.8) / 3;
  # error: sgd (0 + 2/3 + 0) / 3, adam (0.75 + 0 + 1) / 3, M (1 + 1 + 0.75) / 3.
  assert robustness.TAU_MAX == 2.0
  assert "Over 3 tasks (t1, t2, t3)" in text
  assert "| sgd | 2/3 | 0.33 | 0.333 | 0.00 | 0.222 |" in text
  assert "| adam | 3/3 | 0.67 | 0.833 | 0.33 | 0.583 |" in text
  assert "| M(0.9) | 3/3 | 0.33 | 0.850 | 0.67 | 0.917 |" in text
  assert "![profile all tasks](figures/profile_quick_valid_loss.svg)" in text


def test_a_single_task_says_profiles_need_two_or_more(tmp_path, fake_record, fake_store):
  fake_store(tmp_path / "one", profile_records(fake_record, tasks=("t1",)))
  built = report.build(tmp_path / "one")
  assert built.reviews[0].profiles == () and built.reviews[0].aggregates == ()
  text = _write(tmp_path / "one", tmp_path / "out", ["md"])["md"]
  assert "need two or more; this table has 1." in text
  assert "figures/profile_" not in text
  assert "#### Tuning budget: test loss" in text  # per task, so still there


# ---------------------------------------------------------------- Holm in the report


def test_marks_use_holm_adjusted_p_and_both_are_shown(built, written):
  built = built
  (table,) = built.tables
  tests = [c.test for c in table.cells.values() if c.test is not None and c.test.p is not None]
  raw = [t.p for t in tests]
  # Holm by hand: sort, scale by m - rank, running maximum, capped at 1.
  m, order = len(raw), np.argsort(raw)
  by_hand, running = [0.0] * m, 0.0
  for rank, index in enumerate(order):
    running = max(running, min(1.0, (m - rank) * raw[index]))
    by_hand[index] = running
  assert [t.p_adjusted for t in tests] == pytest.approx(by_hand)
  assert all(t.family == m for t in tests)
  assert all(t.significant == (t.p_adjusted < 0.05) for t in tests)
  # A win significant before the correction and not after it exists here, and reads †.
  assert any(t.p < 0.05 <= t.p_adjusted for t in tests)
  text = written["md"]
  # t2's accuracy win (raw p 0.035, adjusted 0.07) is marked † in the table, not ‡.
  assert "| M(0.9) | Loss | 0.2500 ± 0.0100 | **0.3000 ± 0.0100** | 0.6000 ± 0.0100 |" in text
  assert "|  | Acc | **96.00 ± 1.00**† | **94.00 ± 1.00**† | 75.00 ± 1.00 |" in text
  significance = section(text, "#### Significance")
  for test in tests:
    assert f"| {test.p:.3g} | {test.p_adjusted:.3g} |" in significance
  assert "Holm" in significance and "not corrected" not in text


def test_the_welch_interval_and_seeds_for_power_of_a_row(built):
  (table,) = built.tables
  test = table.cells["M(0.9)", "t1", "acc"].test  # 96 vs adam 95, both spread 1 (percent)
  ours, baseline = [95.0, 96.0, 97.0], [94.0, 95.0, 96.0]
  va = vb = 1.0 / 3
  nu = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 2)
  half = stats.t.ppf(0.975, nu) * math.sqrt(va + vb)
  assert test.interval == pytest.approx((1 - half, 1 + half))
  n = int(test.seeds_needed)
  assert statistics.welch_power(1.0, 1.0, 1.0, n) >= 0.8 > statistics.welch_power(1.0, 1, 1, n - 1)
  assert np.mean(ours) - np.mean(baseline) == pytest.approx(test.difference)


# ---------------------------------------------------------------- aggregates


def test_aggregate_p_of_improvement_is_the_direct_count(built):
  (rev,) = built.reviews
  loss = rev.aggregates[0]
  # sgd has no result on t3, so the best baseline by mean normalized loss is adam.
  assert loss.baseline == "adam"
  row = next(r for r in loss.rows if r.optimizer == "M(0.9)")
  per_task = []
  for task in TASKS:
    ours = [MEANS[task, "M(0.9)"][0] + o for o in OFFSETS]
    theirs = [MEANS[task, "adam"][0] + o for o in OFFSETS]
    count = sum(1.0 if a < b else 0.5 if a == b else 0.0 for a in ours for b in theirs)
    per_task.append(count / 9)
  assert row.improvement.point == pytest.approx(np.mean(per_task))
  assert row.improvement.low <= row.improvement.point <= row.improvement.high
  # Mean normalized loss: (1.25 + 1 + 1.2) / 3, each seed over the task's best mean.
  assert row.mean.point == pytest.approx((1.25 + 1.0 + 1.2) / 3)
  sgd = next(r for r in loss.rows if r.optimizer == "sgd")
  assert sgd.mean is None and sgd.why == "no result on t3"


def test_aggregates_state_resamples_and_seed_and_repeat_exactly(profile_store, written):
  first = report.build(profile_store).reviews[0].aggregates
  again = report.build(profile_store).reviews[0].aggregates
  assert first == again
  aggregate = section(written["md"], "#### Aggregate over tasks x seeds: test loss")
  assert f"{robustness.RESAMPLES:,} resamples" in aggregate
  assert f"seed {robustness.BOOTSTRAP_SEED}" in aggregate
  assert "over 3 tasks x 3 seeds" in aggregate


# ---------------------------------------------------------------- tuning budget


def test_budget_rows_end_at_the_tables_cell_and_start_at_the_grid_mean(built, written):
  (rev,) = built.reviews
  budget = next(b for b in rev.budgets if (b.task, b.optimizer) == ("t1", "M(0.9)"))
  assert budget.points == 2
  assert budget.loss[-1] == pytest.approx(0.25)  # the selected setting: lr 0.1
  assert budget.loss[0] == pytest.approx((0.25 + 1.25) / 2)  # either point, equally likely
  assert budget.accuracy[-1] == pytest.approx(96.0)
  text = section(written["md"], "#### Tuning budget: test loss")
  assert "| t1 | M(0.9) | 2 | 0.00 | 0.7500 | - | 0.2500 (n=2) | 0.2500 |" in text
  assert re.search(r"!\[budget t1\]\(figures/budget_quick_valid_loss_t1\.svg\)", text)


def test_every_review_section_is_in_every_format(written):
  texts = {f".{fmt}": written[fmt] for fmt in report.FORMATS}
  for heading in (
    "Performance profiles",
    "Aggregate over tasks x seeds: test loss",
    "Aggregate over tasks x seeds: test error",
    "Tuning budget: test loss",
    "Tuning budget: test accuracy (\\%)",
  ):
    for suffix, text in texts.items():
      wanted = heading if suffix == ".tex" else heading.replace("\\%", "%")
      assert wanted in text, (suffix, heading)
  assert texts[".html"].count('alt="budget') == 3 and 'alt="profile' in texts[".html"]
  assert (Path(written["out"]) / "figures/profile_quick_valid_loss.svg").exists()


def test_holm_runs_over_the_tests_of_every_table(profile_store):
  both = report.build(profile_store, ("valid_loss", "valid_accuracy"))
  tests = [
    c.test
    for table in both.tables
    for c in table.cells.values()
    if c.test is not None and c.test.p is not None
  ]
  assert len(both.tables) == 2 and len(tests) == 4  # the same two wins under each rule
  assert all(t.family == 4 for t in tests)
  # Raw p 0.144 and 0.0352 twice: sorted 0.0352, 0.0352, 0.144, 0.144 scale by 4, 3, 2, 1.
  low, high = sorted({round(t.p, 6) for t in tests})
  expected = {round(low, 6): 4 * low, round(high, 6): 2 * high}
  assert [t.p_adjusted for t in tests] == pytest.approx([expected[round(t.p, 6)] for t in tests])
  assert len({r.slug for r in both.reviews}) == 2  # a review, and figures, per table
