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


def test_the_curves_long_form_is_one_row_per_run_step_and_unit_on_each_curves_axis(fake_record):
  law = fake_record(TASK, "M2(0.9)", 0, lr=0.1, test_loss=0.3, test_accuracy=0.8, units=2)
  law["curves"]["test_accuracy"] = [None, 0.8]  # after a divergence: None, read as NaN
  law["curves"]["law"][1] = None  # a whole step of a law after a divergence: NaN in each unit
  frame = tidy.curve_frame([law])
  assert list(frame.columns) == ["key", "curve", "step", "unit", "value"]
  assert set(frame["key"]) == {law["key"]} and set(frame["curve"]) == {"test_accuracy", "law"}
  accuracy = frame[frame["curve"] == "test_accuracy"]
  assert list(accuracy["step"]) == [50, 100]  # the eval steps, as recorded
  assert accuracy["unit"].isna().all()  # a scalar curve
  assert math.isnan(accuracy["value"].iloc[0]) and accuracy["value"].iloc[1] == 0.8
  rows = frame[frame["curve"] == "law"]
  # Written out from make_record: units 0, 1 at each logged step 10, 20, ..., 100.
  expected = [(s, u, 0.1 * (u + 1) + s / 1000) for s in range(10, 101, 10) for u in range(2)]
  expected[2:4] = [(20, 0, math.nan), (20, 1, math.nan)]
  got = list(zip(rows["step"], rows["unit"], rows["value"], strict=True))
  assert [(s, u) for s, u, _ in got] == [(s, u) for s, u, _ in expected]
  np.testing.assert_allclose([v for *_, v in got], [v for *_, v in expected], rtol=0, atol=1e-15)


def test_a_report_reads_the_stores_once_into_one_frame_and_never_the_records_again(
  tmp_path, fake_record, fake_store, monkeypatch
):
  """build hands the records to tidy.store_frames and to nothing else: the spy empties every
  record once the frames are made, and the report comes out the same; one runs frame and one
  curves frame are made for the whole report (three tables' selections included)."""
  from eval.report import build, render

  records = [
    fake_record(task, opt, seed, lr=lr, test_loss=loss + seed / 100, test_accuracy=0.9)
    for task in (TASK, "mnist-mlp")
    for opt, loss in (("sgd", 0.3), ("adam", 0.2), ("M(0.9)", 0.1))
    for lr in (0.1, 0.01)
    for seed in range(2)
  ]
  fake_store(tmp_path / "s", records)
  expected = render.markdown(build.build(tmp_path / "s", ("valid_loss", "valid_accuracy")))
  made = {"report_frame": 0, "curve_frame": 0}
  for name in made:
    real = getattr(tidy, name)
    monkeypatch.setattr(tidy, name, _counted(real, made, name))
  real_store_frames = tidy.store_frames

  def spy(read, plan):
    frames = real_store_frames(read, plan)
    for record in read:
      record.clear()  # anything that reads a record after this finds nothing
    return frames

  monkeypatch.setattr(tidy, "store_frames", spy)
  built = build.build(tmp_path / "s", ("valid_loss", "valid_accuracy"))
  assert render.markdown(built) == expected
  assert made == {"report_frame": 1, "curve_frame": 1}


def _counted(function, calls: dict, name: str):
  def wrapper(*args, **kwargs):
    calls[name] += 1
    return function(*args, **kwargs)

  return wrapper


def test_no_report_module_reads_records_or_counts_samples_itself():
  """Only eval.store.tidy turns records into rows; the report's modules import neither the
  record schema nor the sample counting (the bench's console summary, summary.py, is handed
  the records by the bench and is not part of a report)."""
  import ast
  from pathlib import Path

  import eval.report

  offenders = []
  for path in sorted(Path(eval.report.__file__).parent.glob("*.py")):
    if path.name == "summary.py":
      continue
    for node in ast.walk(ast.parse(path.read_text())):
      names = []
      if isinstance(node, ast.ImportFrom) and node.module == "eval.store":
        names = [alias.name for alias in node.names]
      elif isinstance(node, ast.ImportFrom) and node.module:
        names = [node.module.rsplit(".", 1)[-1]] if node.module.startswith("eval.store.") else []
      elif isinstance(node, ast.Import):
        names = [a.name.rsplit(".", 1)[-1] for a in node.names if a.name.startswith("eval.store.")]
      offenders += [f"{path.name}: {n}" for n in names if n in ("records", "samples", "configs")]
  assert offenders == []
