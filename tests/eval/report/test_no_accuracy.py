"""A task that reports no accuracy (a quadratic, an autoencoder) in a report: n/a, never 0.00.

Its records hold None for every accuracy (tasks.interface). The store here
has "cls", a classifier, and "quad", a task without accuracy, each with sgd
and adam at two learning rates and two seeds; on "quad" adam has the lower
loss.
"""

import math
import re

import pytest

from eval.cli import commands
from eval.report import build as report
from eval.report import comparison, review_sections, robustness, selection, summary
from eval.store import tidy

LOSSES = {("cls", "sgd"): 0.30, ("cls", "adam"): 0.20, ("quad", "sgd"): 2.0, ("quad", "adam"): 1.5}


def _without_accuracy(record: dict) -> dict:
  for name in ("valid_accuracy", "test_accuracy"):
    record["final"][name] = None
    record["curves"][name] = [None] * len(record["curves"][name])
  return record


@pytest.fixture
def records(fake_record) -> list[dict]:
  made = []
  for (task, opt), loss in LOSSES.items():
    for seed in range(2):
      for lr, worse in ((0.1, 0.0), (0.01, 1.0)):
        record = fake_record(
          task, opt, seed, lr=lr, test_loss=loss + worse + 0.01 * seed, test_accuracy=0.9 - loss
        )
        made.append(_without_accuracy(record) if task == "quad" else record)
  return made


def test_the_tasks_without_accuracy_are_those_whose_finished_runs_have_none(records):
  assert selection.without_accuracy(tidy.report_frame(records)) == {"quad"}


def test_its_acc_cells_are_na_and_its_loss_cells_are_still_compared(records):
  table = comparison.compare(tidy.report_frame(records), "quick")
  assert table.cells["sgd", "quad", "acc"].state == "n/a"
  assert table.cells["adam", "quad", "acc"].state == "n/a"
  loss = table.cells["adam", "quad", "loss"]
  assert loss.state == "ok" and loss.mean == pytest.approx(1.505) and loss.best
  assert table.cells["adam", "cls", "acc"].mean == pytest.approx(70.0)


def test_selecting_by_accuracy_marks_it_na_not_diverged(records):
  table = comparison.compare(tidy.report_frame(records), "quick", rule="valid_accuracy")
  for opt in ("sgd", "adam"):
    assert {table.cells[opt, "quad", m].state for m in ("loss", "acc")} == {"n/a"}
  assert table.cells["adam", "cls", "acc"].state == "ok"


def test_the_error_profile_and_aggregate_leave_it_out_and_the_loss_ones_keep_it(records):
  table = comparison.compare(tidy.report_frame(records), "quick")
  review = robustness.review(table, robustness.grids_of(tidy.report_frame(records)))
  loss, error = review.profiles
  assert loss.ratios.shape == (2, 2) and error.ratios.shape == (1, 2)
  by_cost = {a.cost: a for a in review.aggregates}
  assert by_cost["error"].left_out == ("quad",) and by_cost["loss"].left_out == ()
  assert "over the 1 of 2 tasks that report an accuracy" in review_sections.profile_note(review)
  quad = [b for b in review.budgets if b.task == "quad"]
  assert quad and all(math.isnan(a) for b in quad for a in b.accuracy)
  assert all(not math.isnan(x) for b in quad for x in b.loss)


def test_the_written_report_says_na_and_never_a_zero_accuracy(records, fake_store, tmp_path):
  fake_store(tmp_path / "store", records)
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(report.figures, "specs", lambda *args: [])
    paths = report.write(report.build(tmp_path / "store"), tmp_path / "out", ("md",))
  text = paths[0].read_text()
  assert "n/a: no accuracy to report on quad; read the loss." in text
  quad_acc = [line for line in text.splitlines() if line.startswith("| quad |") and "n/a" in line]
  assert quad_acc, "the tuning-budget accuracy rows of quad say n/a"
  acc_rows = [line for line in text.splitlines() if line.startswith("|  | Acc |")]
  assert len(acc_rows) == 2 and all(row.endswith("| n/a |") for row in acc_rows)  # cls, quad
  assert not re.search(r"\bnan\b", text, re.IGNORECASE)


def test_the_console_summary_job_line_and_store_list_name_the_loss(records, fake_store, tmp_path):
  quad = [r for r in records if r["task"] == "quad"]
  chosen = selection.select(quad)
  lines = summary.text(chosen, quad)
  assert "acc n/a  loss 1.5050 ± 0.0071" in lines and "%" not in lines
  job = summary.job_line(
    "quad", "adam", [r for r in quad if r["optimizer"] == "adam"], 1.0, "valid_loss"
  )
  assert job.endswith("test loss 1.5050 ± 0.0071 (2 seeds)")
  fake_store(tmp_path / "store", quad)
  listing = []
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr("builtins.print", lambda *a, **k: listing.append(" ".join(map(str, a))))
    assert commands.main(["store", "list", str(tmp_path / "store")]) == 0
  assert all("loss " in line for line in listing[1:]) and len(listing) == 1 + len(quad)
