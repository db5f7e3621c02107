"""The fair protocol (issue 30) beside the unchanged paper protocol, and schedules in protocols.

The fair protocol keeps the paper's data, steps, batch and seeds on mnist-mlp and
fmnist-mlp, and states its selection rule before it runs (the protocol, the dry run).
A scheduled optimizer's grid carries the protocol's steps as total_steps.
"""

import pytest

from eval.run import dryrun
from eval.run import protocol as protocol_lib
from rllc import catalog

PAPER_TABLE1_SELECTED = {"sgd": 0.3, "momentum": 0.03, "adam": 0.001, "am-sgd": 1.0}


@pytest.fixture(scope="module")
def fair():
  return protocol_lib.resolve("fair")


@pytest.fixture(scope="module")
def paper():
  return protocol_lib.resolve("paper")


def test_fair_keeps_the_papers_data_steps_batch_and_seeds(fair, paper):
  assert fair.tasks == ("mnist-mlp", "fmnist-mlp")
  assert set(fair.tasks) <= set(paper.tasks)
  assert (fair.steps, fair.batch_size, fair.seeds) == (paper.steps, paper.batch_size, paper.seeds)
  assert (fair.eval_every, fair.log_every) == (paper.eval_every, paper.log_every)


def test_the_paper_protocol_is_as_the_paper_ran_it(paper):
  assert paper.select == "valid_accuracy"
  assert [p.name for p in paper.optimizers] == list(protocol_lib.PAPER_OPTIMIZERS)
  assert all("total_steps" not in p.grid for p in paper.optimizers)
  assert all(p.grid["learning_rate"] == catalog.PAPER_LR for p in paper.optimizers[:3])


def test_fair_states_its_rule_uncalibrated(fair):
  assert fair.select == "valid_loss"
  assert "valid_loss" in protocol_lib.__doc__.split("fair")[1].split("FILE.toml")[0]


def test_fair_runs_the_scheduled_and_averaged_baselines_rllc_and_scheduled_am(fair):
  names = [p.name for p in fair.optimizers]
  assert names == [
    "sgd+cosine(0.05)",
    "momentum+cosine(0.05)",
    "adam+cosine(0.05)",
    "sgd+ema(0.999)",
    "momentum+ema(0.999)",
    "adam+ema(0.999)",
    "M(0.9)",
    "M(0.9)+M(0)",
    "M(0.9)+M(0.8)+M(0.7)",
    "am-sgd+cosine(0.05)",
    "am-adamw+cosine(0.05)",
  ]
  grids = {p.name: p.grid for p in fair.optimizers}
  for name, grid in grids.items():
    scheduled = "cosine" in name
    assert (grid.get("total_steps") == (10_000,)) == scheduled, name
    if "+" in name and not name.startswith("M("):  # a baseline or AM: its lr grid extended upward
      base = name.split("+")[0]
      above = [lr for lr in grid["learning_rate"] if lr > PAPER_TABLE1_SELECTED.get(base, 0.003)]
      assert len(above) >= 2, name
  for spec in ("M(0.9)", "M(0.9)+M(0)", "M(0.9)+M(0.8)+M(0.7)"):
    laws = grids[spec]["law_learning_rate"]
    assert {0.001, 0.0003} <= set(laws) and min(laws) < 0.003 and 0.003 in laws
    assert grids[spec]["learning_rate"] == catalog.PAPER_RLLC_LR


def test_a_scheduled_grid_takes_the_protocols_steps(tmp_path):
  short = protocol_lib.resolve("fair", steps=300)
  (plan,) = [p for p in short.optimizers if p.name == "adam+cosine(0.05)"]
  assert plan.grid["total_steps"] == (300,)
  assert all(s["total_steps"] == 300 for s in plan.settings())


@pytest.mark.parametrize(
  "given, canonical",
  [
    ("momentum+constant", "momentum"),
    ("M(0.9) + M(0)+cosine(0.05)", "M(0.9)+M(0)+cosine(0.05)"),
    ("M(0.9)+M(0)@ones+linear", "M(0.9)+M(0)@ones+linear"),
    ("adam+ema(0.999)+cosine(0.05)", "adam+cosine(0.05)+ema(0.999)"),
  ],
)
def test_names_with_options_are_canonical(given, canonical):
  assert protocol_lib.canonical_name(given) == canonical


def test_toml_schedule_keys_become_the_rows_name(tmp_path):
  profile = tmp_path / "study.toml"
  profile.write_text(
    'tasks = ["digits-mlp"]\nsteps = 40\n'
    '[optimizers.momentum]\nschedule = "cosine"\nwarmup = 0.05\nlearning_rate = [0.01, 0.03]\n'
    "[optimizers.adam]\nema = 0.99\n"
    '[optimizers."sgd+linear"]\n'
  )
  got = protocol_lib.resolve(str(profile))
  assert [(p.name, p.grid) for p in got.optimizers] == [
    ("momentum+cosine(0.05)", {"learning_rate": (0.01, 0.03), "total_steps": (40,)}),
    ("adam+ema(0.99)", {"learning_rate": catalog.ADAM_LIKE_LR}),
    ("sgd+linear", {"learning_rate": catalog.SGD_LIKE_LR, "total_steps": (40,)}),
  ]


@pytest.mark.parametrize(
  "table, says",
  [
    ('schedule = ["cosine", "linear"]', "schedule takes one value, not a list"),
    ("total_steps = 10", "total_steps is the protocol's steps"),
    ('schedule = "cosin"', "schedule 'cosin'"),
    ("ema = 1.5", "EMA decay 1.5"),
    ("warmup = 0.05", "warmup = 0.05 without a schedule"),
  ],
)
def test_bad_toml_schedules_are_refused(tmp_path, table, says):
  profile = tmp_path / "study.toml"
  profile.write_text(f'tasks = ["digits-mlp"]\n[optimizers.momentum]\n{table}\n')
  with pytest.raises(protocol_lib.ProtocolError, match=None) as err:
    protocol_lib.resolve(str(profile))
  assert says in str(err.value)


def test_the_dry_run_states_the_rule_before_anything_runs(tmp_path):
  profile = tmp_path / "fair-digits.toml"
  profile.write_text('base = "fair"\ntasks = ["digits-mlp"]\nsteps = 100\n')
  text = dryrun.text(protocol_lib.resolve(str(profile)), str(tmp_path / "store"))
  rule = text.splitlines()[1]
  assert rule.startswith("selection rule, fixed before any run: per task and optimizer,")
  assert "lowest mean final validation loss over seeds (valid_loss)" in rule
  assert "11 jobs, 384 runs" in text  # 6 x 7 baselines + 3 x 24 RLLC + 2 x 7 AM, x 3 seeds
  assert not (tmp_path / "store").exists()
