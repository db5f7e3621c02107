"""Issue 17, a researcher's first hour: the cases in the selection, the protocol and the report.

Hand-made stores (tests/eval/conftest.py) and the command line, no training.
"""

import contextlib
import io
from pathlib import Path

import pytest

from eval.cli import commands as cli
from eval.report import selection, summary


def _run(argv: list[str]) -> tuple[int, str, str]:
  """cli.main with stdout and stderr captured."""
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
      code = cli.main(argv)
    except SystemExit as exit_info:
      code = exit_info.code
  return code, out.getvalue(), err.getvalue()


# Item 1 in the summary and the report: a store that already mixes two horizons.


def _mixed_records(make_record) -> list[dict]:
  """quick at 300 and at 100 steps (as a store written before the check would hold), 2 seeds."""
  records = []
  for steps, shift in ((300, 0.0), (100, 0.02)):
    for seed in (0, 1):
      for opt, lr, loss in (("sgd", 0.1, 0.05), ("sgd", 0.3, 0.3), ("M(0.9)", 0.1, 0.04)):
        records.append(
          make_record(
            "digits-mlp",
            opt,
            seed,
            lr=lr,
            test_loss=loss + shift + seed / 100,
            test_accuracy=0.97 - shift,
            steps=steps,
            units=1,
          )
        )
  return records


def test_the_summary_shows_two_horizons_as_two_protocols_never_pooled(fake_record):
  records = _mixed_records(fake_record)
  chosen = selection.select(records)
  assert sorted((s.protocol, s.optimizer, s.seeds) for s in chosen) == [
    ("quick (100 steps, eval every 50)", "M(0.9)", 2),
    ("quick (100 steps, eval every 50)", "sgd", 2),
    ("quick (300 steps, eval every 150)", "M(0.9)", 2),
    ("quick (300 steps, eval every 150)", "sgd", 2),
  ]
  text = summary.text(chosen, records)
  assert "protocol quick (300 steps, eval every 150):" in text
  assert "protocol quick (100 steps, eval every 50):" in text
  assert "n = 4" not in text


def test_the_report_of_a_mixed_store_has_a_table_per_configuration_and_does_not_crash(
  tmp_path, fake_record, fake_store
):
  store = tmp_path / "mixed"
  fake_store(store, _mixed_records(fake_record))
  code, _, err = _run(["report", str(store), "--format", "md", "--out", str(tmp_path / "r")])
  assert code == 0, err
  text = (tmp_path / "r" / "report.md").read_text()
  assert "### Protocol `quick (300 steps, eval every 150)`" in text
  assert "### Protocol `quick (100 steps, eval every 50)`" in text
  assert "n = 4" not in text


# Item 3: the protocol's checks.


def _profile(tmp_path: Path, text: str) -> Path:
  path = tmp_path / "bad.toml"
  path.write_text(text)
  return path


@pytest.mark.parametrize(
  "toml,argv,culprits",
  [
    pytest.param(
      "[optimizers.sgd]\nlearning_rate = [-0.1, 0.1]\n",
      [],
      ["optimizer 'sgd': learning_rate = -0.1: learning_rate takes a real number in (0, inf)"],
      id="negative-learning-rate",
    ),
    pytest.param(
      "[optimizers.sgd]\nlearning_rate = nan\n",
      [],
      ["optimizer 'sgd': learning_rate = nan: learning_rate takes a real number in (0, inf)"],
      id="nan-learning-rate",
    ),
    pytest.param(
      "batch_size = 5000\n",
      [],
      ["batch_size 5,000 is larger than the train split of digits-mlp (1,197 images", "<= 1,197"],
      id="batch-larger-than-train-split",
    ),
    pytest.param(
      "",
      ["--optimizers", "M(1.5)"],
      ["unknown optimizer 'M(1.5)': bad propagator spec 'M(1.5)'", "spectral radius 1.5 >= 1"],
      id="unstable-spec",
    ),
    pytest.param(
      "[optimizers.sgd]\nlr = [0.1]\n",
      [],
      ["optimizer 'sgd': unknown hyperparameter(s) lr (did you mean 'learning_rate'?)"],
      id="did-you-mean-hyperparameter",
    ),
    pytest.param(
      "", ["--optimizers", "adma"], ["unknown optimizer 'adma' (did you mean 'adam'"], id="dym-opt"
    ),
    pytest.param(
      "", ["digits_mlp"], ["unknown task 'digits_mlp' (did you mean 'digits-mlp'?)"], id="dym-task"
    ),
    pytest.param(
      "stpes = 10\n", [], ["unknown key(s) stpes (did you mean 'steps'"], id="dym-protocol-key"
    ),
  ],
)
def test_bad_protocols_are_refused_with_the_culprit_and_a_valid_choice(
  toml, argv, culprits, tmp_path
):
  out = tmp_path / "s"
  code, _, err = _run(
    ["bench", *argv, "--profile", str(_profile(tmp_path, toml)), "--out", str(out)]
  )
  assert code == 2, err
  for culprit in culprits:
    assert culprit in err
  assert err.startswith("rllc: ") and "Traceback" not in err
  assert "allow_unstable" not in err  # Python's keyword, which the CLI cannot pass
  assert not out.exists()


def test_a_spec_error_comes_first_not_after_every_optimizer_name(tmp_path):
  code, _, err = _run(["bench", "--optimizers", "M(0.9", "--out", str(tmp_path / "s")])
  assert code == 2
  assert err.startswith("rllc: unknown optimizer 'M(0.9': bad propagator spec")
  assert "am-adamw-reset" not in err  # the names are not listed before the spec's own error


# Item 4: the report's tables and figures.


def test_one_seed_is_shown_without_a_spread_and_says_n_1(tmp_path, fake_record, fake_store):
  records = [
    fake_record("digits-mlp", "sgd", 0, lr=0.1, test_loss=0.0411, test_accuracy=0.97),
    fake_record("digits-mlp", "M(0.9)", 0, lr=0.1, test_loss=0.05, test_accuracy=0.96),
  ]
  fake_store(tmp_path / "s", records)
  assert (
    _run(["report", str(tmp_path / "s"), "--format", "md", "--out", str(tmp_path / "r")])[0] == 0
  )
  text = (tmp_path / "r" / "report.md").read_text()
  assert "0.0411" in text and "0.0411 ± 0.0000" not in text
  assert "ddof 1) over n = 1" not in text
  assert "the one seed (n = 1)" in text


def test_the_legend_names_the_best_baseline_once_per_format(hand_store_dir, tmp_path):
  assert _run(["report", str(hand_store_dir), "--out", str(tmp_path / "r")])[0] == 0
  for name in ("report.md", "report.tex", "report.html"):
    text = (tmp_path / "r" / name).read_text()
    legend = next(line for line in text.splitlines() if "Bold: the best of the column" in line)
    assert legend.count("Best baseline") + legend.count("best of the baselines") == 1, name


@pytest.fixture
def hand_store_dir(tmp_path, fake_record, fake_store) -> Path:
  records = [
    fake_record("digits-mlp", opt, seed, lr=0.1, test_loss=loss + seed / 100, test_accuracy=0.9)
    for seed in (0, 1)
    for opt, loss in (("sgd", 0.05), ("adam", 0.04), ("M(0.9)", 0.03))
  ]
  fake_store(tmp_path / "hand", records)
  return tmp_path / "hand"


def test_the_accuracy_figure_of_a_single_evaluation_shows_its_point(fake_record):
  from eval.report import document, draw, figures
  from eval.store import tidy

  records = []
  for seed in (0, 1):
    record = fake_record("digits-mlp", "sgd", seed, lr=0.1, test_loss=0.1, test_accuracy=0.9)
    for name in ("valid_loss", "valid_accuracy", "test_loss", "test_accuracy"):
      record["curves"][name] = record["curves"][name][-1:]
    record["curves"]["eval_step"] = [100]
    records.append(record)
  rows = selection.select(records)
  plot, caption = figures.accuracy(tidy.report_frames(records), rows, ("sgd",))
  fig = draw.figure(document.FigureSpec("accuracy", "digits-mlp", "figures/a", caption, "", plot))
  [line] = fig.axes[0].lines
  assert len(line.get_xdata()) == 1 and line.get_marker() == "o"


# Item 7: a report over several stores.


def test_report_over_two_stores_pools_their_tasks_in_one_table(tmp_path, fake_record, fake_store):
  for task, name in (("mnist-mlp", "a"), ("fmnist-mlp", "b")):
    fake_store(
      tmp_path / name,
      [
        fake_record(task, opt, seed, lr=0.1, test_loss=loss + seed / 100, test_accuracy=0.9)
        for seed in (0, 1)
        for opt, loss in (("sgd", 0.05), ("M(0.9)", 0.04))
      ],
    )
  argv = ["report", str(tmp_path / "a"), str(tmp_path / "b"), "--format", "md"]
  code, _, err = _run([*argv, "--out", str(tmp_path / "r")])
  assert code == 0, err
  text = (tmp_path / "r" / "report.md").read_text()
  assert "| Optimizer |  | fmnist-mlp | mnist-mlp |" in text
  assert text.count("### Protocol `quick`") == 1
  code, _, err = _run(argv)  # several stores: no default output
  assert code == 2 and "give --out" in err


def test_train_sizes_are_the_documented_splits():
  from tasks import data

  assert [data.train_size(n) for n in data.DATASETS] == [54_000, 54_000, 45_000, 1_197]
