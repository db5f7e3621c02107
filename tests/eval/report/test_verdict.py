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


def _welch(a, b, alternative: str) -> float:
  return float(stats.ttest_ind(a, b, equal_var=False, alternative=alternative).pvalue)


def _holm(pvalues: list[float]) -> list[float]:
  """Holm's step-down adjustment, written out: sort, scale by m - rank, running maximum."""
  order = sorted(range(len(pvalues)), key=pvalues.__getitem__)
  adjusted, running = [0.0] * len(pvalues), 0.0
  for rank, i in enumerate(order):
    running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[i]))
    adjusted[i] = running
  return adjusted


def test_each_familys_best_row_meets_the_best_baseline_with_holm_over_every_row_of_ours(store):
  answers = report.build(store).sections[1]
  rows = {(row[2], row[3]): row for row in answers.blocks[1].rows}  # by family and metric
  ours = ("am-sgd", "M(0.9)", "M(0.9)+M(0)")  # every row of ours: all enter Holm's family
  acc = {opt: [100 * v for v in ACCURACY["digits-mlp", opt]] for opt in ("adam", *ours)}
  loss = {opt: [1.0 - v for v in ACCURACY["digits-mlp", opt]] for opt in acc}
  p = {(opt, "Acc"): _welch(acc[opt], acc["adam"], "greater") for opt in ours}
  p |= {(opt, "Loss"): _welch(loss[opt], loss["adam"], "less") for opt in ours}
  holm = dict(zip(p, _holm(list(p.values())), strict=True))
  shown = {"rllc": "M(0.9)", "adaptive-memory": "am-sgd"}  # each family's best row

  assert answers.title == ("Does ours beat the best baseline?",)
  assert set(rows) == {(f, m) for f in shown for m in ("Acc", "Loss")}
  for (family, metric), row in rows.items():
    where = (shown[family], metric)
    assert (row[8], row[9]) == (f"{p[where]:.3g}", f"{holm[where]:.3g}"), where
  rllc, am = rows["rllc", "Acc"], rows["adaptive-memory", "Acc"]
  assert rllc[4].startswith("M(0.9) 96.83 ± 0.76 (n=3)")
  assert rllc[5].startswith("adam 96.00 ± 1.00 (n=3)")
  assert rllc[6] == "+0.83"
  assert rllc[10] == "beats, not significant"  # p about 0.1 with 3 seeds
  assert rows["rllc", "Loss"][4].startswith("M(0.9) 0.0317 ± 0.0076 (n=3)")
  assert rows["rllc", "Loss"][6] == "-0.0083"
  assert am[4].startswith("am-sgd") and am[6] == "-1.17"
  assert p["am-sgd", "Acc"] > 0.5 and am[10] == "does not beat"
  assert "(6 in protocol quick)" in answers.blocks[0].text


def test_the_answer_is_the_reports_first_section_after_its_summary(store, tmp_path):
  text = report.write(report.build(store), tmp_path / "out", ("md",))[0].read_text()
  assert text.index("## Does ours beat the best baseline?") < text.index("## Comparison")
  lead = text.split("## Does ours beat the best baseline?\n\n")[1].splitlines()[0]
  assert lead.startswith("Protocol quick, adaptive-memory, test accuracy: its best row beats")
  assert "rllc, test loss: its best row beats the best baseline on 1 of 1 task(s)" in lead


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
