"""The report's tidy frame (eval.store.tidy.report_frame) and the operations on it.

One row per run, the metrics a report reads (an EMA run's average's, NaN for
a task without accuracy); a grid's points (eval.report.robustness.grid_points)
and the selection (eval.report.selection.select) are groups of it. Expected
values are worked by hand from the records made here.
"""

import math

import numpy as np
import pytest

from eval.report import robustness, selection
from eval.store import tidy

TASK = "digits-mlp"


@pytest.fixture
def runs(fake_record):
  """sgd at lr 0.1 (losses 0.3, 0.5) and lr 1.0 (one seed diverged); an EMA run; no accuracy."""
  made = [
    fake_record(TASK, "sgd", 0, lr=0.1, test_loss=0.3, test_accuracy=0.8),
    fake_record(TASK, "sgd", 1, lr=0.1, test_loss=0.5, test_accuracy=0.9),
    fake_record(TASK, "sgd", 0, lr=1.0, test_loss=0.1, test_accuracy=0.95),
    fake_record(TASK, "sgd", 1, lr=1.0, test_loss=0.1, test_accuracy=0.95, status="diverged"),
  ]
  ema = fake_record(
    TASK, "adam", 0, lr=0.01, test_loss=0.4, test_accuracy=0.7, hparams={"ema": 0.9}
  )
  ema["final"]["ema_test_loss"] = 0.25
  quad = fake_record("quad", "sgd", 0, lr=0.1, test_loss=2.0, test_accuracy=0.0)
  for split in ("valid", "test"):
    quad["final"][f"{split}_accuracy"] = None
  return [*made, ema, quad]


def test_one_row_per_run_with_the_metrics_a_report_reads(runs):
  frame = tidy.report_frame(runs)
  assert list(frame["key"]) == [r["key"] for r in runs]  # the records' order
  assert list(frame["status"]) == ["ok", "ok", "ok", "diverged", "ok", "ok"]
  assert frame.loc[4, "test_loss"] == 0.25  # the EMA average's, not the raw 0.4
  assert math.isnan(frame.loc[5, "test_accuracy"]) and frame.loc[5, "test_loss"] == 2.0
  assert frame.loc[0, "setting"] == frame.loc[1, "setting"] != frame.loc[2, "setting"]
  assert set(frame["protocol"]) == {"quick"}


def test_grid_points_are_the_settings_means_and_inf_where_a_seed_diverged(runs):
  grids = robustness.grids_of(tidy.report_frame(runs))
  assert set(grids) == {(TASK, "sgd", "quick"), (TASK, "adam", "quick"), ("quad", "sgd", "quick")}
  valid, loss, accuracy = robustness.grid_points(grids[TASK, "sgd", "quick"], "valid_loss")
  # Settings in canonical JSON order: lr 0.1 before lr 1.0.
  np.testing.assert_allclose(valid, [0.4, math.inf])
  np.testing.assert_allclose(loss[:1], [0.4])
  np.testing.assert_allclose(accuracy[:1], [0.85])
  assert math.isnan(loss[1]) and math.isnan(accuracy[1])
  valid, _, _ = robustness.grid_points(grids[TASK, "sgd", "quick"], "valid_accuracy")
  np.testing.assert_allclose(valid, [-0.85, math.inf])  # higher is better: negated


def test_a_grid_without_accuracy_gives_nan_accuracy_and_no_valid_accuracy_score(runs):
  grids = robustness.grids_of(tidy.report_frame(runs))
  _, loss, accuracy = robustness.grid_points(grids["quad", "sgd", "quick"], "valid_loss", False)
  assert loss.tolist() == [2.0] and math.isnan(accuracy[0])
  valid, _, _ = robustness.grid_points(grids["quad", "sgd", "quick"], "valid_accuracy", False)
  assert valid.tolist() == [math.inf]


def test_selection_groups_the_frame_and_passes_over_a_setting_with_a_diverged_seed(runs):
  chosen = {(s.task, s.optimizer): s for s in selection.select(runs)}
  sgd = chosen[TASK, "sgd"]
  assert sgd.hparams["learning_rate"] == 0.1  # lr 1.0 scores lower but has a diverged seed
  assert sgd.seed_test_loss == (0.3, 0.5) and sgd.score == pytest.approx(0.4)
  assert (sgd.settings, sgd.eligible, sgd.diverged, sgd.runs) == (2, 1, 1, 4)
  assert chosen[TASK, "adam"].seed_test_loss == (0.25,)
  assert chosen["quad", "sgd"].seeds == 1
  assert all(s.task != "quad" for s in selection.select(runs, "valid_accuracy"))
