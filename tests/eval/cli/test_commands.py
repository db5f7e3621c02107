"""The command lines: `rllc tasks/data` (eval.cli.commands) and eval.run.train, with bad input;
the libraries' start-up lines, silenced unless --verbose."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from eval.cli import commands as cli
from eval.run import train as train_lib
from tasks import lo_names, registry

SHARED = Path(__file__).resolve().parents[4] / "shared" / "datasets"


@pytest.fixture(autouse=True)
def empty_cache(tmp_path, monkeypatch):
  monkeypatch.setenv("RLLC_CACHE_DIR", str(tmp_path / "cache"))
  monkeypatch.delenv("RLLC_DATA_DIR", raising=False)
  monkeypatch.delenv("TFDS_DATA_DIR", raising=False)


def test_tasks_lists_every_task_with_its_data_status(capsys):
  assert cli.main(["tasks"]) == 0
  suite, lo, elsewhere = capsys.readouterr().out.split("\n\n")
  assert [line.split()[0] for line in suite.splitlines()] == list(registry.TASKS)
  assert [line.split()[0] for line in lo.splitlines()[1:]] == [t.name for t in lo_names.runnable()]
  by_name = {line.split()[0]: line for line in (suite + "\n" + lo).splitlines()}
  assert "available" in by_name["digits-mlp"]
  assert "missing: rllc data import cifar10 --from DIR" in by_name["cifar10-resnet20"]
  mnist = by_name["lo:ImageMLP_Mnist_128x128x128_Relu"]
  assert "missing: rllc data import mnist --from DIR" in mnist
  assert "available (no data)" in by_name["lo:QuadraticTask"]
  assert "lo:ImageMLP_Imagenet16_Relu256x256x256" in elsewhere


def test_import_then_status_says_cached(capsys):
  if not (SHARED / "mnist").is_dir():
    pytest.skip(f"{SHARED} not found: the shared data sets are only on development machines")
  assert cli.main(["data", "import", "mnist", "--from", str(SHARED)]) == 0
  assert cli.main(["data", "status"]) == 0
  assert "mnist          cached" in capsys.readouterr().out


def test_import_from_a_missing_directory_fails_with_the_reason(capsys, tmp_path):
  assert cli.main(["data", "import", "cifar10", "--from", str(tmp_path / "nowhere")]) == 1
  err = capsys.readouterr().err
  assert "cifar10" in err and "nowhere" in err


def test_unknown_data_set_is_refused_by_the_parser(capsys):
  with pytest.raises(SystemExit) as exit_info:
    cli.main(["data", "import", "svhn", "--from", "."])
  assert exit_info.value.code == 2
  assert "invalid choice: 'svhn'" in capsys.readouterr().err


def test_train_runs_and_reports_test_accuracy(capsys):
  args = [
    "digits-mlp",
    "M(0.9)+M(0)",
    "--hp",
    "learning_rate=0.1",
    "--hp",
    "law_learning_rate=0.01",
    "--steps",
    "30",
  ]
  assert train_lib.main(args) == 0
  out = capsys.readouterr().out
  assert "RLLC[M(0.9)+M(0)]_lr0.1_law0.01" in out and "test accuracy" in out


@pytest.mark.parametrize(
  "args,culprit",
  [
    (["digits-resnet", "sgd", "--hp", "learning_rate=0.1"], "unknown task 'digits-resnet'"),
    (["digits-mlp", "sgdd", "--hp", "learning_rate=0.1"], "unknown optimizer 'sgdd'"),
    (["digits-mlp", "sgd"], "missing hyperparameter(s) learning_rate"),
    (["cifar10-mlp", "sgd", "--hp", "learning_rate=0.1"], "cifar10"),
  ],
)
def test_train_bad_input_exits_non_zero_naming_the_culprit(args, culprit, capsys):
  assert train_lib.main(args) == 2
  assert culprit in capsys.readouterr().err


def test_train_malformed_hparam_is_an_argument_error(capsys):
  with pytest.raises(SystemExit) as exit_info:
    train_lib.main(["digits-mlp", "sgd", "--hp", "learning_rate"])
  assert exit_info.value.code == 2
  assert "--hp takes NAME=VALUE" in capsys.readouterr().err


def test_train_divergence_exits_non_zero_naming_the_step(capsys):
  assert train_lib.main(["digits-mlp", "sgd", "--hp", "learning_rate=1e6", "--steps", "20"]) == 3
  err = capsys.readouterr().err
  assert "SGD_lr1000000 diverged on digits-mlp" in err and "at step" in err


# `rllc bench` whose work is replaced by what makes the noise: TensorFlow's first operation
# (its CPU-instructions notice, absl's InitializeLog line) and an absl warning, both after
# main() has parsed the flags, as a real bench imports them.
NOISY_BENCH = """import os, sys
from eval.cli import commands

def noisy(args):
  import tensorflow as tf
  from absl import logging
  tf.constant(1.0) + 1.0
  logging.warning("an absl warning")
  print("TF_CPP_MIN_LOG_LEVEL=" + str(os.environ.get("TF_CPP_MIN_LOG_LEVEL")))
  print("TF_ENABLE_ONEDNN_OPTS=" + str(os.environ.get("TF_ENABLE_ONEDNN_OPTS")))
  return 0

commands._bench = noisy
sys.exit(commands.main(sys.argv[1:]))
"""
TF_LINES = ("cpu_feature_guard", "absl::InitializeLog", "oneDNN")


def _noisy_bench(*flags: str, **preset: str) -> subprocess.CompletedProcess:
  unset = ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")
  env = {k: v for k, v in os.environ.items() if k not in unset} | preset
  return subprocess.run(
    [sys.executable, "-c", NOISY_BENCH, *flags, "bench"], capture_output=True, text=True, env=env
  )


def test_tensorflow_and_absl_start_up_lines_are_silenced_by_default():
  done = _noisy_bench()
  assert done.returncode == 0, done.stderr
  assert "TF_CPP_MIN_LOG_LEVEL=2" in done.stdout and "TF_ENABLE_ONEDNN_OPTS=0" in done.stdout
  assert not [line for line in TF_LINES if line in done.stderr], done.stderr
  assert "an absl warning" not in done.stderr


def test_verbose_lets_the_start_up_lines_through():
  done = _noisy_bench("--verbose")
  assert done.returncode == 0, done.stderr
  assert "TF_ENABLE_ONEDNN_OPTS=0" in done.stdout  # verbose or not, TensorFlow computes alike
  assert [line for line in TF_LINES if line in done.stderr], done.stderr
  assert "an absl warning" in done.stderr


def test_a_onednn_setting_in_the_environment_wins():
  done = _noisy_bench(TF_ENABLE_ONEDNN_OPTS="1")
  assert done.returncode == 0, done.stderr
  assert "TF_ENABLE_ONEDNN_OPTS=1" in done.stdout
