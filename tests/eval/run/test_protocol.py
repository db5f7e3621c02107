"""Protocols (quick, paper, TOML) and hyperparameter selection, without training."""

import math

import numpy as np
import pytest

import rllc
from eval.report import selection
from eval.run import protocol as protocol_lib
from rllc import catalog


def _grid(protocol, name):
  return next(o.grid for o in protocol.optimizers if o.name == name)


def test_paper_protocol_is_appendix_a52():
  paper = protocol_lib.resolve("paper")
  assert paper.tasks == (
    "mnist-mlp",
    "mnist-conv",
    "fmnist-mlp",
    "fmnist-conv",
    "cifar10-mlp",
    "cifar10-conv",
    "cifar10-resnet20",
  )
  assert (paper.steps, paper.batch_size, paper.seeds) == (10_000, 128, (0, 1, 2))
  lrs = _grid(paper, "sgd")["learning_rate"]
  # 1e-7, 3e-7, ..., 0.3, 1: fifteen values alternating 1 and 3 per decade.
  expected = [m * 10.0**e for e in range(-7, 0) for m in (1, 3)] + [1.0]
  np.testing.assert_allclose(lrs, expected, rtol=1e-12)
  assert _grid(paper, "M(0.9)+M(0)") == {
    "learning_rate": (0.001, 0.003, 0.01, 0.03, 0.1, 0.3),
    "law_learning_rate": (0.003, 0.01, 0.03),
  }
  assert _grid(paper, "am-sgd") == {"learning_rate": tuple(lrs)}
  # Table 1's propagators, in the parser's canonical spelling.
  names = [o.name for o in paper.optimizers]
  for spec in ("M2(0.6)", "M3(0.6)", "M(0.9)+M(-0.9)+CM(0.9i)", "M(0.9)+M(0)+M2(0.6)"):
    assert spec in names
  assert len(names) == 15


def test_quick_protocol_is_the_default_comparison():
  quick = protocol_lib.resolve("quick")
  assert quick.tasks == ("digits-mlp",)
  assert [o.name for o in quick.optimizers] == [
    "sgd",
    "momentum",
    "adam",
    "M(0.9)",
    "M(0.9)+M(0)",
    "M(0.9)+M(0.8)+M(0.7)",
    "am-sgd",
    "am-adamw",
  ]
  assert len(quick.seeds) in (2, 3)
  assert quick.steps < 10_000
  for plan in quick.optimizers:  # narrowed: a few points, inside the paper's ranges
    if protocol_lib.family(plan.name) == "rllc":  # the paper's lrs, law rates one step wider
      assert plan.grid["learning_rate"] == catalog.PAPER_RLLC_LR
      assert plan.grid["law_learning_rate"] == (0.003, 0.01, 0.03, 0.1)
    else:
      assert 1 <= len(plan.settings()) <= 8
      assert set(plan.grid["learning_rate"]) <= set(catalog.PAPER_LR)


def test_overrides_replace_tasks_optimizers_seeds_and_steps():
  p = protocol_lib.resolve(
    "quick", tasks=["mnist-mlp"], optimizers=["adam", "M(0.9)+M2(0.6)"], seeds=3, steps=100
  )
  assert p.tasks == ("mnist-mlp",) and p.seeds == (0, 1, 2) and p.steps == 100
  assert [o.name for o in p.optimizers] == ["adam", "M(0.9)+M2(0.6)"]
  # A new propagator gets the RLLC grid; intervals are capped at the run's length.
  assert _grid(p, "M(0.9)+M2(0.6)") == catalog.RLLC.quick
  assert p.eval_every <= 100 and p.log_every <= 100


def test_specs_are_canonicalized_so_spellings_share_records():
  p = protocol_lib.resolve("quick", optimizers=["M(0.90) ⊕ M(0.0)"])
  assert p.optimizers[0].name == "M(0.9)+M(0)"


def test_toml_file_overrides_every_part(tmp_path):
  path = tmp_path / "study.toml"
  path.write_text(
    """
base = "paper"
tasks = ["digits-mlp", "digits-conv"]
seeds = [3, 5]
steps = 400
batch_size = 64
eval_every = 100
log_every = 20
max_members = 16

[optimizers.adam]
learning_rate = [1e-4, 1e-3]
b1 = 0.8

[optimizers."M(0.9)+M2(0.6)"]
law_learning_rate = [0.01]

[optimizers."lm:M(0.9)+M(0)"]
law = [[0.9, 1.0], [0.5, 1.0]]
learning_rate = 0.1
"""
  )
  p = protocol_lib.resolve(str(path))
  assert p.name == "study"
  assert p.tasks == ("digits-mlp", "digits-conv") and p.seeds == (3, 5)
  assert (p.steps, p.batch_size, p.eval_every, p.log_every, p.max_members) == (
    400,
    64,
    100,
    20,
    16,
  )
  assert _grid(p, "adam") == {"learning_rate": (1e-4, 1e-3), "b1": (0.8,)}
  # Axes not given keep the base's (paper) default grid.
  assert _grid(p, "M(0.9)+M2(0.6)") == {
    "learning_rate": catalog.PAPER_RLLC_LR,
    "law_learning_rate": (0.01,),
  }
  fixed = next(o for o in p.optimizers if o.name.startswith("lm:"))
  assert fixed.settings() == [
    {"law": (0.9, 1.0), "learning_rate": 0.1},
    {"law": (0.5, 1.0), "learning_rate": 0.1},
  ]


def test_one_law_in_toml_is_one_setting(tmp_path):
  path = tmp_path / "law.toml"
  path.write_text('[optimizers."lm:M(0.9)+M(0)"]\nlaw = [0.9, 1.0]\n')
  (plan,) = protocol_lib.resolve(str(path)).optimizers
  assert plan.settings() == [{"law": (0.9, 1.0)}]  # learning_rate keeps its default


@pytest.mark.parametrize(
  "text,culprit",
  [
    ("steps = ", "not valid TOML"),
    ("stepz = 10", "unknown key(s) stepz"),
    ('steps = "ten"', "steps must be a positive integer"),
    ("seeds = 0", "seeds must be a positive count"),
    ('base = "slow"', "base = 'slow'; valid: quick, paper"),
    (
      'tasks = ["mnist-mlpp"]',
      "unknown task 'mnist-mlpp' (did you mean 'mnist-mlp'?); valid tasks: mnist-mlp",
    ),
    ('optimizers = ["adamm"]', "unknown optimizer 'adamm' (did you mean 'adam'"),
    ('optimizers = ["M(0.9"]', "missing ')'"),
    ("[optimizers.adam]\nlearning_rat = [0.1]", "unknown hyperparameter(s) learning_rat"),
    (
      '[optimizers.adam]\nlearning_rate = ["fast"]',
      "learning_rate = 'fast': learning_rate takes a real number",
    ),
    ("[optimizers.adam]\nlearning_rate = []", "empty list"),
    ('[optimizers."lm:M(0.9)"]', "needs law"),
    ('optimizers = ["adam", "adam"]', "listed twice"),
    ('tasks = ["digits-mlp", "digits-mlp"]', "task(s) listed twice: digits-mlp"),
    ('select = ["valid_loss"]', "select = ['valid_loss']; valid selection rules"),
    ("steps = 1" + "0" * 5000, "not valid TOML: Exceeds the limit (4300 digits)"),
    ("[optimizers.adam]\nlearning_rate = 1" + "0" * 400, "learning_rate = inf: learning_rate"),
  ],
)
def test_bad_toml_names_the_culprit(tmp_path, text, culprit):
  path = tmp_path / "bad.toml"
  path.write_text(text + "\n")
  with pytest.raises(protocol_lib.ProtocolError) as err:
    protocol_lib.resolve(str(path))
  assert culprit in str(err.value)


def test_bad_profile_and_missing_file():
  with pytest.raises(protocol_lib.ProtocolError, match="valid: quick, paper, fair, or a FILE.toml"):
    protocol_lib.resolve("fast")
  with pytest.raises(protocol_lib.ProtocolError, match="cannot read it"):
    protocol_lib.resolve("/nonexistent/study.toml")


def test_initial_law_is_chosen_by_suffix_or_toml_and_keeps_conventions_apart(tmp_path):
  by_name = protocol_lib.resolve(optimizers=["M(0.9) + M(0)@ones", "M(0.9)+M(0)"])
  assert [p.name for p in by_name.optimizers] == ["M(0.9)+M(0)@ones", "M(0.9)+M(0)"]
  ones = rllc.optimizer(by_name.optimizers[0].name, **by_name.optimizers[0].settings()[0])
  assert ones.hparams["initial_law"] == "ones"
  path = tmp_path / "laws.toml"
  path.write_text(
    '[optimizers."M(0.9)+M(0)"]\nlearning_rate = 0.01\nlaw_learning_rate = 0.01\n'
    'initial_law = ["ones", "normalized", [1.0, 0.5]]\n'
  )
  plan = protocol_lib.resolve(str(path)).optimizers[0]
  assert [s["initial_law"] for s in plan.settings()] == ["ones", "normalized", (1.0, 0.5)]
  names = {rllc.optimizer(plan.name, **s).name for s in plan.settings()}
  assert len(names) == 3


def test_split_names_keeps_commas_inside_brackets():
  assert protocol_lib.split_names("sgd, M(0.9)+M2(0.6),adam") == ["sgd", "M(0.9)+M2(0.6)", "adam"]
  assert protocol_lib.split_names("f(1,2),g") == ["f(1,2)", "g"]


def _record(task, optimizer, lr, seed, valid, test, acc, status="ok"):
  return {
    "task": task,
    "optimizer": optimizer,
    "family": "baseline",
    "protocol": {"protocol": "quick"},
    "hparams": {"learning_rate": lr},
    "name": f"{optimizer}_lr{lr}",
    "seed": seed,
    "status": status,
    "final": {"valid_loss": valid, "test_loss": test, "test_accuracy": acc},
  }


def test_selection_takes_lowest_mean_validation_loss_and_reports_mean_std():
  records = [
    _record("t", "sgd", 0.1, 0, 0.30, 0.31, 0.90),
    _record("t", "sgd", 0.1, 1, 0.50, 0.52, 0.80),  # mean 0.40
    _record("t", "sgd", 0.3, 0, 0.20, 0.25, 0.95),
    _record("t", "sgd", 0.3, 1, 0.40, 0.35, 0.85),  # mean 0.30: selected
  ]
  (s,) = selection.select(records)
  assert s.hparams == {"learning_rate": 0.3} and s.seeds == 2 and s.settings == 2
  assert math.isclose(s.score, 0.30) and s.rule == "valid_loss"
  np.testing.assert_allclose(s.test_loss, (0.30, np.std([0.25, 0.35], ddof=1)))
  np.testing.assert_allclose(s.test_accuracy, (0.90, np.std([0.95, 0.85], ddof=1)))


def test_selection_never_picks_a_setting_with_a_diverged_seed():
  records = [
    _record("t", "sgd", 1.0, 0, 0.01, 0.01, 0.99),  # best score, but its other seed diverged
    _record("t", "sgd", 1.0, 1, None, None, None, status="diverged"),
    _record("t", "sgd", 0.1, 0, 0.50, 0.50, 0.80),
    _record("t", "sgd", 0.1, 1, 0.50, 0.50, 0.80),
  ]
  (s,) = selection.select(records)
  assert s.hparams == {"learning_rate": 0.1} and s.diverged == 1 and s.eligible == 1
  assert "1 diverged" in selection.table([s])
  # Every setting diverged: nothing is selected.
  assert selection.select(records[:2]) == []


def test_toml_names_its_selection_rule(tmp_path):
  path = tmp_path / "rule.toml"
  path.write_text('select = "valid_accuracy"\n')
  assert protocol_lib.resolve(str(path)).select == "valid_accuracy"
  assert protocol_lib.resolve("paper").select == "valid_accuracy"  # the calibration's choice
  assert protocol_lib.resolve("quick").select == "valid_loss"
  path.write_text('select = "test_accuracy"\n')
  with pytest.raises(protocol_lib.ProtocolError, match="valid selection rules: valid_loss"):
    protocol_lib.resolve(str(path))


def test_two_initial_law_conventions_never_share_a_record_key(tmp_path):
  """The same propagator, grid and seeds under ones, normalized and a vector: disjoint keys."""
  from eval.run import bench
  from eval.store import store as store_lib

  path = tmp_path / "laws.toml"
  path.write_text(
    '[optimizers."M(0.9)+M(0)@ones"]\nlearning_rate = [0.01, 0.03]\nlaw_learning_rate = 0.01\n'
    '[optimizers."M(0.9)+M(0)@normalized"]\nlearning_rate = [0.01, 0.03]\n'
    "law_learning_rate = 0.01\n"
    '[optimizers."M(0.9)+M(0)"]\nlearning_rate = [0.01, 0.03]\nlaw_learning_rate = 0.01\n'
    "initial_law = [0.5, 0.5]\n"
  )
  env = {"code": "c", "versions": {}, "backend": "cpu", "devices": 1}
  jobs = bench.plan(protocol_lib.resolve(str(path)), env)
  keys = [set(job.keys) for job in jobs]
  assert len(jobs) == 3 and all(len(k) == 4 for k in keys)  # 2 lr x 2 seeds
  assert not (keys[0] & keys[1]) and not (keys[0] & keys[2]) and not (keys[1] & keys[2])
  laws = [
    {store_lib.canonical_json(i["hparams"]["initial_law"]) for i in job.identities} for job in jobs
  ]
  assert laws == [{'"ones"'}, {'"normalized"'}, {"[0.5,0.5]"}]
