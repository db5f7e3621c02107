"""Schedules, the parameters' EMA and the effective step through the engine and the command line.

- a constant schedule, named or given as a hyperparameter, gives today's records bit for bit;
  the EMA leaves the raw iterate's bits alone;
- the EMA is the float64 re-derivation of the average of the iterates, and its evaluation
  is the task's evaluation at that average;
- the effective step recorded at each evaluation is c1 W(L) as `rllc analyze` prints it
  for a fixed law, c1 W(L_t) of the recorded law for RLLC, and lr(t) / (1 - beta) for heavy
  ball under optax's warmup-cosine schedule;
- a bad schedule is refused by `rllc bench` with one line and status 2, nothing written.

Every run trains digits-mlp for a few steps.
"""

import contextlib
import functools
import io

import jax
import numpy as np
import optax
import pytest

from eval.cli import commands as cli
from eval.run import engine
from rllc import catalog
from rllc.analysis import linear
from tasks import registry

SHORT = engine.Schedule(20, 10, 5)
MEMBERS = [({"learning_rate": 0.03}, 0), ({"learning_rate": 0.1}, 1)]


@pytest.fixture(scope="module")
def task():
  return registry.get_task("digits-mlp", batch_size=32)


@pytest.fixture(scope="module")
def momentum_runs(task) -> dict[str, engine.GridResult]:
  """momentum as it always was, with a constant schedule named and given, and with an EMA."""
  by_key = [({**hp, "schedule": "constant"}, seed) for hp, seed in MEMBERS]
  return {
    "plain": engine.train_grid(task, catalog.lookup("momentum"), MEMBERS, SHORT),
    "named": engine.train_grid(task, catalog.lookup("momentum+constant"), MEMBERS, SHORT),
    "by_key": engine.train_grid(task, catalog.lookup("momentum"), by_key, SHORT),
    "ema": engine.train_grid(task, catalog.lookup("momentum+ema(0.9)"), MEMBERS, SHORT),
  }


def _same_params(one: engine.GridResult, two: engine.GridResult) -> bool:
  pairs = zip(jax.tree.leaves(one.params), jax.tree.leaves(two.params), strict=True)
  return all(np.array_equal(a, b) for a, b in pairs)


@pytest.mark.parametrize("form", ["named", "by_key"])
def test_a_constant_schedule_gives_todays_records_bit_for_bit(momentum_runs, form):
  plain, constant = momentum_runs["plain"], momentum_runs[form]
  assert constant.members == plain.members  # name, hparams, curves, final: every float equal
  assert plain.members[0]["hparams"] == {"learning_rate": 0.03, "momentum": 0.9}
  assert plain.members[0]["name"] == "Momentum_lr0.03_m0.9"
  assert _same_params(constant, plain)


def test_the_ema_leaves_the_raw_iterate_bit_for_bit(momentum_runs):
  plain, ema = momentum_runs["plain"], momentum_runs["ema"]
  assert _same_params(ema, plain)
  for with_ema, without in zip(ema.members, plain.members, strict=True):
    assert with_ema["hparams"] == {**without["hparams"], "ema": 0.9}
    assert with_ema["name"] == without["name"] + "_ema0.9"
    for key, curve in without["curves"].items():
      assert with_ema["curves"][key] == curve, key
    assert {k: v for k, v in with_ema["final"].items() if not k.startswith("ema_")} == without[
      "final"
    ]
    assert set(with_ema["final"]) - set(without["final"]) == {
      f"ema_{split}_{metric}" for split in ("valid", "test") for metric in ("loss", "accuracy")
    }


def test_the_ema_is_the_float64_average_of_the_iterates_and_is_evaluated(task):
  decay, steps = 0.8, 15
  entry = catalog.lookup(f"momentum+ema({decay})")
  init, interval, evaluate = engine.member_functions(task, entry, {"learning_rate": 0.1})
  step = jax.jit(functools.partial(interval, length=1))
  carry = jax.jit(init)({}, 0)
  average = jax.tree.map(lambda p: np.asarray(p, np.float64), carry.params)  # EMA_0 = theta_0
  for t in range(steps):
    carry, _ = step(carry, {}, t, task.splits)
    average = jax.tree.map(
      lambda e, p: decay * e + (1 - decay) * np.asarray(p, np.float64), average, carry.params
    )
  for got, want in zip(jax.tree.leaves(carry.ema), jax.tree.leaves(average), strict=True):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
  assert not np.allclose(jax.tree.leaves(carry.ema)[0], jax.tree.leaves(carry.params)[0])
  metrics, _ = jax.jit(evaluate)(carry, task.splits)
  at_average = jax.tree.map(lambda e: e.astype(np.float32), average)
  for split in ("valid", "test"):
    want = task.evaluate(at_average, carry.model_state, split)
    np.testing.assert_allclose(metrics[f"ema_{split}"], want, rtol=1e-5)
    assert not np.allclose(metrics[f"ema_{split}"][0], metrics[split][0])  # not the raw iterate


def _analyze_effective_lr(spec: str, law: str, lr: float) -> float:
  """`rllc analyze SPEC --law L --lr H`'s "effective lr h*W" line."""
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    assert cli.main(["analyze", spec, "--law", law, "--lr", str(lr)]) == 0
  (line,) = [x for x in out.getvalue().splitlines() if x.startswith("effective lr h*W")]
  return float(line.split()[-1])


def test_a_fixed_laws_effective_step_is_c1_times_rllc_analyzes_w(task):
  entry = catalog.lookup("lm:M(0.9)+M(0)")
  members = [({"law": (0.5, 1.0), "learning_rate": 0.02}, 0)]
  (member,) = engine.train_grid(task, entry, members, SHORT).members
  want = _analyze_effective_lr("M(0.9)+M(0)", "0.5,1", 0.02)  # 0.02 (0.5 / 0.1 + 1) = 0.12
  assert member["curves"]["eval_step"] == [10, 20]
  np.testing.assert_allclose(member["curves"]["effective_step"], [want, want], rtol=1e-5)


def test_rllcs_effective_step_is_c1_times_w_of_the_recorded_law(task):
  spec = "M(0.9)+M(0)"
  members = [({"learning_rate": 0.05, "law_learning_rate": 0.03}, 0)]
  (member,) = engine.train_grid(task, catalog.lookup(spec), members, SHORT).members
  curves = member["curves"]
  laws = [curves["law"][curves["step"].index(t)] for t in curves["eval_step"]]  # law at step t
  want = [0.05 * linear.effective(spec, law).W for law in laws]
  np.testing.assert_allclose(curves["effective_step"], want, rtol=1e-12)
  assert laws[0] != laws[1]  # the law moved: the step is read at each evaluation


def test_heavy_balls_effective_step_follows_optaxs_warmup_cosine(task):
  members = [({"learning_rate": 0.05, "total_steps": SHORT.steps}, 0)]
  entry = catalog.lookup("momentum+cosine(0.2)")
  (member,) = engine.train_grid(task, entry, members, SHORT).members
  assert member["hparams"]["total_steps"] == 20 and member["hparams"]["warmup"] == 0.2
  lr = optax.warmup_cosine_decay_schedule(0.0, 0.05, 4, 20, 0.0)
  want = [float(lr(t - 1)) / (1 - 0.9) for t in member["curves"]["eval_step"]]
  np.testing.assert_allclose(member["curves"]["effective_step"], want, rtol=1e-5)


def _bench(argv: list[str]) -> tuple[int, str]:
  err = io.StringIO()
  with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
    code = cli.main(argv)
  return code, err.getvalue()


@pytest.mark.parametrize(
  "optimizer, says",
  [
    ("momentum+cosin(0.05)", "unknown schedule 'cosin' in 'momentum+cosin(0.05)'"),
    ("adam+cosine(1.5)", "warmup fraction 1.5 in 'adam+cosine(1.5)'"),
    ("M(0.9)+linear(x)", "linear(x) in 'M(0.9)+linear(x)' takes a number"),
    ("sgd+ema(1.2)", "EMA decay 1.2 in 'sgd+ema(1.2)'"),
  ],
)
def test_a_bad_schedule_gets_one_line_and_status_2_with_nothing_written(tmp_path, optimizer, says):
  out = tmp_path / "store"
  code, err = _bench(["bench", "--optimizers", optimizer, "--steps", "10", "--out", str(out)])
  assert code == 2
  assert err.startswith("rllc: ") and says in err and err.count("\n") == 1
  assert not out.exists()


def test_a_bad_schedule_in_a_toml_table_is_refused_the_same_way(tmp_path):
  profile = tmp_path / "study.toml"
  profile.write_text('[optimizers.momentum]\nschedule = "cosine"\nwarmup = 2.0\n')
  code, err = _bench(["bench", "--profile", str(profile), "--out", str(tmp_path / "store")])
  assert code == 2 and "warmup fraction 2.0" in err and err.count("\n") == 1
  assert sorted(p.name for p in tmp_path.iterdir()) == ["study.toml"]
