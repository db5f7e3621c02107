"""The report's answer (eval.report.verdict): each family of ours against the best baseline.

The expected p-values are scipy's Welch tests on the hand-made seed values and
Holm's adjustment worked out here by hand, independently of the report's code.
"""

import pytest
from scipy import stats

from eval.report import build as report
from eval.report import comparison, verdict

ACCURACY = {  # (task, optimizer) -> per-seed test accuracy
  ("digits-mlp", "sgd"): (0.90, 0.91, 0.92),
  ("digits-mlp", "adam"): (0.95, 0.96, 0.97),  # the best baseline
  ("digits-mlp", "am-sgd"): (0.94, 0.95, 0.955),  # behind it
  ("digits-mlp", "M(0.9)"): (0.96, 0.97, 0.975),  # RLLC's best, ahead
  ("digits-mlp", "M(0.9)+M(0)"): (0.93, 0.94, 0.95),  # RLLC, not its best
}


@pytest.fixture
def store(tmp_path, fake_record, fake_store):
  records = []
  for (task, opt), values in ACCURACY.items():
    units = {"units": opt.count("M(")} if opt.startswith("M(") else {}
    for seed, acc in enumerate(values):
      loss = 1.0 - acc
      records.append(
        fake_record(task, opt, seed, lr=0.1, test_loss=loss, test_accuracy=acc, **units)
      )
  fake_store(tmp_path / "s", records)
  return tmp_path / "s"


def _welch_greater(a, b) -> float:
  return float(stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue)


def test_each_family_of_ours_meets_the_best_baseline_with_holm_over_the_answers(store):
  answers = report.build(store).sections[1]
  rows = {row[2]: row for row in answers.blocks[1].rows}  # by family
  adam = [100 * v for v in ACCURACY["digits-mlp", "adam"]]
  p_am = _welch_greater([100 * v for v in ACCURACY["digits-mlp", "am-sgd"]], adam)
  p_rllc = _welch_greater([100 * v for v in ACCURACY["digits-mlp", "M(0.9)"]], adam)
  assert p_rllc < p_am  # so Holm multiplies p_rllc by 2, and p_am by 1 (then the running max)
  holm_rllc, holm_am = min(1, 2 * p_rllc), max(min(1, 2 * p_rllc), p_am)

  assert answers.title == ("Does ours beat the best baseline?",)
  assert set(rows) == {"adaptive-memory", "rllc"}
  rllc, am = rows["rllc"], rows["adaptive-memory"]
  assert rllc[4].startswith("M(0.9) 96.83 ± 0.76 (n=3)")
  assert rllc[5].startswith("adam 96.00 ± 1.00 (n=3)")
  assert rllc[6] == "+0.83"
  assert (rllc[8], rllc[9]) == (f"{p_rllc:.3g}", f"{holm_rllc:.3g}")
  assert rllc[10] == "beats, not significant"  # p about 0.1 with 3 seeds
  assert am[4].startswith("am-sgd") and am[6] == "-1.17"
  assert (am[8], am[9]) == (f"{p_am:.3g}", f"{holm_am:.3g}")
  assert p_am > 0.5 and am[10] == "does not beat"


def test_the_answer_is_the_reports_first_section_after_its_summary(store, tmp_path):
  text = report.write(report.build(store), tmp_path / "out", ("md",))[0].read_text()
  assert text.index("## Does ours beat the best baseline?") < text.index("## Comparison")
  lead = text.split("## Does ours beat the best baseline?\n\n")[1].splitlines()[0]
  assert lead.startswith("Protocol quick, adaptive-memory: its best row beats the best")
  assert "rllc: its best row beats the best baseline on 1 of 1 task(s) as displayed" in lead


def test_a_store_without_ours_has_no_answer(tmp_path, fake_record, fake_store):
  records = [
    fake_record("digits-mlp", opt, seed, lr=0.1, test_loss=0.1, test_accuracy=acc)
    for opt, values in (("sgd", (0.9, 0.91)), ("adam", (0.95, 0.96)))
    for seed, acc in enumerate(values)
  ]
  fake_store(tmp_path / "s", records)
  titles = [s.title for s in report.build(tmp_path / "s").sections]
  assert ("Does ours beat the best baseline?",) not in titles


@pytest.mark.parametrize(
  ("metric", "interval", "expected"),
  [
    (comparison.METRICS[1], (-0.36, -0.18), "does not beat; behind, 95% CI excludes 0"),
    (comparison.METRICS[1], (-0.36, +0.02), "does not beat"),
    (comparison.METRICS[0], (+0.01, +0.03), "does not beat; behind, 95% CI excludes 0"),
    (comparison.METRICS[0], (-0.01, +0.03), "does not beat"),
  ],
)
def test_a_family_behind_says_so_only_when_the_interval_excludes_zero(metric, interval, expected):
  worse = 88.62 if metric.key == "acc" else 0.3251  # ours, behind the baseline on each metric
  better = 88.89 if metric.key == "acc" else 0.3245
  test = comparison.Test("momentum", worse - better, 1.0, 9.0, 0.99, "", interval=interval)
  answer = verdict.Answer(
    "fair",
    "fmnist-mlp",
    "rllc",
    metric,
    "M(0.9)",
    "momentum",
    comparison.Cell("ok", worse, 0.1, 10),
    comparison.Cell("ok", better, 0.1, 10),
    test,
  )
  assert not answer.beats
  assert answer.verdict == expected
