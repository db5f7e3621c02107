"""An optimizer named NAME+ema(DECAY) is selected and reported by its parameters' average.

Its records hold the raw iterate's final metrics and, prefixed ema_, the average's
(eval.run.engine); the report reads the average's (eval.store.records.final_metrics) and
says so in its header.
"""

import pytest

from eval.report import build, selection
from eval.store import records as records_lib
from eval.store import tidy

TASK = "digits-mlp"


def _ema_record(fake_record, seed: int, lr: float, raw: float, averaged: float) -> dict:
  """A momentum+ema(0.9) run whose raw iterate ends at loss `raw` and its average at `averaged`."""
  record = fake_record(
    TASK, "momentum", seed, lr=lr, test_loss=raw, test_accuracy=0.9, hparams={"ema": 0.9}
  )
  record["optimizer"] = "momentum+ema(0.9)"
  for split in ("valid", "test"):
    record["final"][f"ema_{split}_loss"] = averaged
    record["final"][f"ema_{split}_accuracy"] = 0.95
  return record


@pytest.fixture
def runs(fake_record):
  # lr 0.1: the better raw iterate; lr 0.01: the better average.
  return [
    _ema_record(fake_record, seed, lr, raw, averaged)
    for seed in (0, 1)
    for lr, raw, averaged in ((0.1, 0.2, 0.5), (0.01, 0.4, 0.3 + 0.01 * seed))
  ]


def test_final_metrics_are_the_averages_for_an_ema_run_and_the_raw_ones_otherwise(
  runs, fake_record
):
  got = records_lib.final_metrics(runs[1])
  assert got["valid_loss"] == 0.3 and got["test_accuracy"] == 0.95
  assert got["ema_valid_loss"] == 0.3 and runs[1]["final"]["valid_loss"] == 0.4  # raw kept
  plain = fake_record(TASK, "momentum", 0, lr=0.1, test_loss=0.2, test_accuracy=0.9)
  assert records_lib.final_metrics(plain) is plain["final"]


def test_an_ema_row_is_selected_and_reported_by_its_average(runs):
  (row,) = selection.select(runs)
  assert row.hparams["learning_rate"] == 0.01  # the raw iterate would pick 0.1
  assert row.seed_test_loss == (0.3, 0.31) and row.seed_test_accuracy == (0.95, 0.95)
  assert row.score == pytest.approx(0.305)


def test_the_report_header_says_an_ema_row_is_read_at_its_average(runs, fake_record):
  assert "exponential moving average" in build._summary(
    tidy.report_frame(runs), {"quick": ("valid_loss",)}
  )
  plain = [fake_record(TASK, "momentum", 0, lr=0.1, test_loss=0.2, test_accuracy=0.9)]
  assert "moving average" not in build._summary(
    tidy.report_frame(plain), {"quick": ("valid_loss",)}
  )
