"""The report's figures: which specs eval.report.figures gives, their numbers, and the SVG files
eval.report.draw makes of them, byte for byte (PNG only when asked)."""

import json
import math
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from eval.report import document, draw, figures, selection
from eval.store import tidy

TASK = "digits-mlp"
SPEC = "M(0.9)+M(0)"
SVG = "{http://www.w3.org/2000/svg}"
OVERHEAD = [
  {
    "task": TASK,
    "optimizer": "adam",
    "buffers": 2,
    "state_bytes": 800,
    "param_bytes": 400,
    "step_time_ratio": 1.0,
  },
  {
    "task": TASK,
    "optimizer": SPEC,
    "buffers": 3,
    "state_bytes": None,
    "param_bytes": 400,
    "step_time_ratio": 1.4,
  },
]
SCRIPT = """
import json, sys
from pathlib import Path
from eval.report import document, draw, figures, selection
from eval.store import tidy
records, overhead = json.loads(Path(sys.argv[1]).read_text())
specs = figures.specs(tidy.report_frames(records), selection.select(records), overhead)
draw.write(specs, Path(sys.argv[2]))
"""


@pytest.fixture
def records(tmp_path, fake_record, fake_store):
  """Adam, a two-unit RLLC spec and am-sgd, two learning rates x two seeds, read from a store."""
  made = []
  for seed in (0, 1):
    for lr, loss in ((0.01, 0.3), (0.1, 0.2)):
      common = {"lr": lr, "test_loss": loss + 0.01 * seed, "test_accuracy": 0.9 + 0.02 * seed}
      made.append(fake_record(TASK, "adam", seed, **common))
      made.append(fake_record(TASK, "am-sgd", seed, **common))
      made.append(
        fake_record(TASK, SPEC, seed, units=2, hparams={"law_learning_rate": 0.01}, **common)
      )
  for record in made:  # the engine's effective step at the two evaluations (made up here)
    seed = record["seed"]
    record["curves"]["effective_step"] = [record["hparams"]["learning_rate"], 0.01 * (1 + seed)]
  return fake_store(tmp_path / "store", made).records()


def _write(records: list[dict], out_dir, overhead=(), png=False) -> list:
  """The figure specs of the records, drawn under out_dir."""
  specs = figures.specs(tidy.report_frames(records), selection.select(records), list(overhead))
  draw.write(specs, out_dir, png)
  return specs


def _files(out_dir) -> dict[str, bytes]:
  return {p.name: p.read_bytes() for p in sorted((out_dir / "figures").iterdir())}


def _svg(out_dir, stem: str) -> ET.Element:
  return ET.parse(out_dir / f"{stem}.svg").getroot()


def test_every_kind_is_written_as_svg_and_the_law_names_its_units(records, tmp_path):
  written = _write(records, tmp_path / "report", OVERHEAD)
  assert [(f.task, f.kind) for f in written] == [(TASK, kind) for kind in figures.KINDS]
  for figure in written:
    assert figure.stem == f"figures/{figure.kind}_{TASK}"
    assert _svg(tmp_path / "report", figure.stem).tag == f"{SVG}svg"
    assert figure.caption.endswith(".") and figure.caption.count(". ") == 0
  assert "mean over 2 seeds" in written[0].caption and "min–max" in written[0].caption
  assert sorted(_files(tmp_path / "report")) == sorted(f"{k}_{TASK}.svg" for k in figures.KINDS)
  law = _svg(tmp_path / "report", f"figures/law_{TASK}")
  texts = {"".join(text.itertext()) for text in law.iter(f"{SVG}text")}
  assert {"M(0.9)", "M(0)", SPEC} <= texts  # the two units' legend entries and the panel title


def test_files_are_byte_identical_across_calls_and_processes(records, tmp_path):
  _write(records, tmp_path / "one", OVERHEAD)
  _write(records, tmp_path / "two", OVERHEAD)
  inputs = tmp_path / "inputs.json"
  inputs.write_text(json.dumps([records, OVERHEAD]))
  subprocess.run(
    [sys.executable, "-c", SCRIPT, str(inputs), str(tmp_path / "three")],
    check=True,
    cwd=tmp_path,
    env={**os.environ, "PYTHONHASHSEED": "12345"},  # another set and dict-of-str order
  )
  one = _files(tmp_path / "one")
  assert len(one) == len(figures.KINDS)
  assert one == _files(tmp_path / "two")
  assert one == _files(tmp_path / "three")


@pytest.mark.parametrize(
  "spec, count, names",
  [
    ("M(0.9)+M(0)", 2, ["M(0.9)", "M(0)"]),
    ("lm:M(0.9)+M(0)", 2, ["M(0.9)", "M(0)"]),
    ("M(0.9)+M(0)@ones", 2, ["M(0.9)", "M(0)"]),  # with its initial-law convention
    ("M(0.9)+M2(0.6)", 3, ["M(0.9)", "M2(0.6)[1]", "M2(0.6)[2]"]),  # a Jordan block: 2 units
    ("CM(0.9i)", 2, ["CM(0.9i).re", "CM(0.9i).im"]),  # a complex unit: 2 real ones
    ("M(0.9)+M2(0.6)", 2, ["c1", "c2"]),  # the count does not fit: numbered
    ("adam", 1, ["c1"]),
  ],
)
def test_unit_names_are_the_propagators_labels_or_numbered(spec, count, names):
  assert figures.unit_names(spec, count) == names


def test_sensitivity_keeps_the_best_setting_per_lr_and_flags_divergence(fake_record, tmp_path):
  def run(optimizer, seed, lr, loss, **kwargs):
    return fake_record(TASK, optimizer, seed, lr=lr, test_loss=loss, test_accuracy=0.9, **kwargs)

  made = [
    run("sgd", 0, 0.1, 0.4),
    run("sgd", 1, 0.1, 0.6),
    run("sgd", 0, 1.0, 0.3),
    run("sgd", 1, 1.0, 0.3, status="diverged"),  # one diverged seed: the setting diverged
    run("momentum", 0, 0.1, 0.5, valid_loss=math.inf),  # no finite loss: diverged too
    run("momentum", 0, 0.01, 0.5),
  ]
  for law_lr, loss in ((0.01, 0.5), (0.003, 0.3)):  # two settings share lr 0.1: the best is kept
    made.append(run(SPEC, 0, 0.1, loss, units=2, hparams={"law_learning_rate": law_lr}))
  made.append(run(SPEC, 0, 0.3, 0.7, units=2, hparams={"law_learning_rate": 0.01}))
  made.append(
    run(SPEC, 0, 0.3, 0.9, units=2, hparams={"law_learning_rate": 0.003}, status="diverged")
  )
  made[-1]["final"]["valid_loss"] = 0.2  # a diverged run's loss never counts, however low
  points = figures.sensitivity_points(tidy.report_frames(made), TASK)
  assert points == {
    SPEC: [(0.1, 0.3, False), (0.3, 0.7, False)],  # lr 0.3: the other setting finished
    "momentum": [(0.01, 0.5, False), (0.1, None, True)],
    "sgd": [(0.1, pytest.approx(0.5), False), (1.0, None, True)],
  }
  written = {f.kind: f for f in _write(made, tmp_path)}
  assert "diverged" in written["sensitivity"].caption
  ids = {e.get("id") for e in _svg(tmp_path, f"figures/sensitivity_{TASK}").iter()}
  assert {"diverged-sgd", "diverged-momentum"} <= ids and f"diverged-{SPEC}" not in ids


def test_no_figure_of_a_kind_without_data(fake_record, tmp_path):
  made = [
    fake_record(task, "adam", seed, lr=0.01, test_loss=0.3, test_accuracy=0.9)
    for task in ("b-task", "a-task")
    for seed in (0, 1)
  ]
  written = _write(made, tmp_path)
  assert [(f.task, f.kind) for f in written] == [
    ("a-task", "accuracy"),
    ("a-task", "sensitivity"),
    ("b-task", "accuracy"),
    ("b-task", "sensitivity"),
  ]
  stems = [f.stem.removeprefix("figures/") for f in written]
  assert sorted(_files(tmp_path)) == sorted(f"{stem}.svg" for stem in stems)


def test_per_leaf_betas_are_averaged_over_leaves(fake_record, tmp_path):
  made = [fake_record(TASK, "am-sgd", 0, lr=0.1, test_loss=0.3, test_accuracy=0.9)]
  made[0]["curves"]["beta"] = [[b, b + 0.02] for b in made[0]["curves"]["beta"]]
  (beta,) = [f for f in _write(made, tmp_path) if f.kind == "beta"]
  assert "per leaf" in beta.caption and "1 seed," in beta.caption


def test_accuracy_band_is_the_min_and_max_over_the_selected_seeds(fake_record):
  made = [
    fake_record(TASK, "adam", seed, lr=0.01, test_loss=0.3, test_accuracy=accuracy)
    for seed, accuracy in enumerate((0.93, 0.90, 0.96))
  ]
  made.append(
    fake_record(TASK, "adam", 0, lr=0.1, test_loss=0.9, test_accuracy=0.1)
  )  # not selected
  (row,) = selection.select(made)
  steps, mean, low, high = figures.accuracy_bands(tidy.report_frames(made), row)
  np.testing.assert_array_equal(steps, [50, 100])  # the curve is [accuracy / 2, accuracy]
  np.testing.assert_allclose(mean, [46.5, 93.0])
  np.testing.assert_allclose(low, [45.0, 90.0])
  np.testing.assert_allclose(high, [48.0, 96.0])


def test_memory_reading_of_a_law_is_hw_and_hs_over_2_worked_by_hand(fake_record):
  # M(0.9) with law c: W = c / (1 - 0.9) = 10 c and S = 0.9 c / (1 - 0.9)^2 = 90 c
  # (heavy ball's coefficients); the fake law is c = 0.1 + step / 1000, h = 0.3.
  made = [
    fake_record(TASK, "M(0.9)", seed, lr=0.3, test_loss=0.3, test_accuracy=0.9, units=1)
    for seed in (0, 1)
  ]
  (row,) = selection.select(made)
  steps, rate, penalty = figures.memory_reading(tidy.report_frames(made), row)
  law = 0.1 + steps / 1000
  np.testing.assert_allclose(rate, 0.3 * 10 * law)
  np.testing.assert_allclose(penalty, 0.3 * 90 * law / 2)
  baseline = [fake_record(TASK, "adam", 0, lr=0.01, test_loss=0.3, test_accuracy=0.9)]
  assert figures.memory_reading(tidy.report_frames(baseline), selection.select(baseline)[0]) is None


def test_effective_step_figure_draws_the_seed_mean_of_each_selected_setting_on_a_log_axis(
  records, tmp_path
):
  rows = selection.select(records)
  for row in rows:  # lr 0.1 is selected (the lower loss); seeds 0 and 1 end at 0.01 and 0.02
    steps, mean = figures.effective_steps(tidy.report_frames(records), row)
    np.testing.assert_array_equal(steps, [50, 100])
    np.testing.assert_allclose(mean, [0.1, 0.015])
  plot, caption = figures.step(
    tidy.report_frames(records), rows, tuple(sorted(r.optimizer for r in rows))
  )
  (ax,) = draw.figure(document.FigureSpec("step", TASK, "figures/step", caption, "", plot)).axes
  assert ax.get_yscale() == "log"
  assert sorted(line.get_label() for line in ax.get_lines()) == sorted(r.optimizer for r in rows)
  assert "log scale" in caption and "c1(t) W(L_t)" in caption
  (step,) = [f for f in _write(records, tmp_path, png=True) if f.kind == "step"]
  assert (tmp_path / f"{step.stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert (tmp_path / f"{step.stem}.svg").is_file()


def test_no_effective_step_figure_for_records_without_the_curve(fake_record, tmp_path):
  made = [
    fake_record(TASK, "adam", seed, lr=0.01, test_loss=0.3, test_accuracy=0.9) for seed in (0, 1)
  ]
  assert "step" not in [f.kind for f in _write(made, tmp_path)]
