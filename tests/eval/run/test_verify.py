"""`rllc store verify`: a job rerun here comes back bit for bit, and a changed record is found.

One small bench (two optimizers, two settings, one seed, 20 steps on
digits-mlp) is made in this process; verify reruns its jobs as the programs
that made them, from the records alone.
"""

import pytest

from eval.cli import commands as cli
from eval.run import verify
from eval.store import store as store_lib

PROFILE = """
base = "quick"
name = "verified"
tasks = ["digits-mlp"]
seeds = 1
steps = 20
eval_every = 10

[optimizers.sgd]
learning_rate = [0.1, 0.3]

[optimizers."M(0.9)"]
learning_rate = [0.1]
law_learning_rate = [0.01, 0.03]
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory):
  root = tmp_path_factory.mktemp("verify")
  profile = root / "verified.toml"
  profile.write_text(PROFILE)
  out = root / "store"
  assert cli.main(["bench", "--profile", str(profile), "--out", str(out), "--quiet"]) == 0
  return out


def test_every_job_comes_back_bit_for_bit(store, capsys):
  assert cli.main(["store", "verify", str(store), "--jobs", "2"]) == 0
  out = capsys.readouterr().out
  assert "digits-mlp sgd (protocol verified, 2 runs" in out
  assert "digits-mlp M(0.9) (protocol verified, 2 runs" in out
  assert out.count("2 of 2 bit for bit here") == 2
  assert "made by other code" not in out


def test_the_draw_is_seeded_and_keeps_the_training_order(store):
  first = verify.draw(str(store), 1, seed=3)
  assert [(s.task, s.optimizer) for s in first] == [
    (s.task, s.optimizer) for s in verify.draw(str(store), 1, seed=3)
  ]
  trained = [e["keys"] for e in store_lib.Store(store).read_log() if e["event"] == "trained"]
  for sample in verify.draw(str(store), 2, seed=0):
    assert [r["key"] for r in sample.records] in trained


def test_a_changed_record_is_found_and_fails_the_check(store, tmp_path, capsys):
  import shutil

  copy = tmp_path / "changed"
  shutil.copytree(store, copy)
  target = store_lib.Store(copy)
  record = next(r for r in target.records() if r["optimizer"] == "sgd")
  loss = record["final"]["test_loss"]
  target.put({**record, "final": {**record["final"], "test_loss": loss + 0.125}})
  seed = next(s for s in range(20) if verify.draw(str(copy), 1, s)[0].optimizer == "sgd")
  assert cli.main(["store", "verify", str(copy), "--seed", str(seed)]) == 1
  captured = capsys.readouterr()
  assert "digits-mlp sgd" in captured.out and "1 of 2 bit for bit here" in captured.out
  assert "test_loss 0.125" in captured.out
  assert "did not come back bit for bit" in captured.err


def test_a_bad_job_count_is_refused(store, capsys):
  assert cli.main(["store", "verify", str(store), "--jobs", "0"]) == 2
  assert "--jobs 0: give a positive number" in capsys.readouterr().err
