"""eval.run.strategies and eval.run.layout: each layout strategy on its own, and the rule.

Every run trains the embedded digits-mlp task with momentum for 7 steps
(evaluations after 3, 6 and 7; curve points every 2), on one device. The
runs are shared by a module fixture; every strategy class is wrapped by a
counter of its interface's calls (start, advance, evaluate) for the runs.

References: "host" runs each member's own step, one call per step, so a
member's bits are those of the one-run program (train_grid with that member
alone, the member's function around a unit axis) and of the member run alone
under "host"; "vmap" and "map" batch or loop the members inside one program,
whose float32 sums may run in another order: they agree with "host" to
round-off (RTOL; a member trained with another's hyperparameters is off by
1e-3 or more, see tests/eval/run/test_engine.py).
"""

import ast
import collections
from pathlib import Path

import jax
import numpy as np
import pytest

from eval.run import engine, layout, strategies
from eval.run.strategies import base
from rllc import catalog
from tasks import data as data_lib
from tasks import models, registry
from tasks.image_tasks import ImageTask

ROOT = Path(__file__).resolve().parents[3]
RTOL, ATOL = 1e-4, 1e-5
SCHEDULE = engine.Schedule(steps=7, eval_every=3, log_every=2)
MEMBERS = [({"learning_rate": lr}, seed) for lr, seed in ((0.1, 0), (0.03, 1), (0.01, 0))]
ALONE = 1  # the member also trained alone


def counting(cls: type[base.Strategy], calls: collections.Counter) -> type[base.Strategy]:
  """The strategy class with each start, advance (by its length) and evaluate counted."""

  class Counted(cls):
    def start(self, hps, seeds):
      calls[cls.name, "start"] += 1
      return super().start(hps, seeds)

    def advance(self, chunk, t0, length):
      calls[cls.name, "advance", t0, length] += 1
      return super().advance(chunk, t0, length)

    def evaluate(self, chunk):
      calls[cls.name, "evaluate"] += 1
      return super().evaluate(chunk)

  return Counted


@pytest.fixture(scope="module")
def task():
  return registry.get_task("digits-mlp")


@pytest.fixture(scope="module")
def runs(task):
  """Each strategy's run of MEMBERS, the one-run program's and "host"'s of member ALONE alone,
  and the interface calls that each strategy's grid run made."""
  calls = collections.Counter()
  momentum = catalog.lookup("momentum")
  device = jax.devices()[:1]
  with pytest.MonkeyPatch.context() as patch:
    for name, cls in strategies.BY_NAME.items():
      patch.setitem(strategies.BY_NAME, name, counting(cls, calls))
    grids = {
      name: engine.train_grid(task, momentum, MEMBERS, SCHEDULE, devices=device, strategy=name)
      for name in strategies.STRATEGIES
    }
    grid_calls = collections.Counter(calls)
    alone = [MEMBERS[ALONE]]
    one_run = engine.train_grid(task, momentum, alone, SCHEDULE, devices=device, strategy="vmap")
    host_alone = engine.train_grid(task, momentum, alone, SCHEDULE, devices=device, strategy="host")
  return {"grids": grids, "one_run": one_run, "host_alone": host_alone, "calls": grid_calls}


def member(result: engine.GridResult, i: int):
  return jax.tree.map(lambda x: np.asarray(x[i]), result.params)


def assert_equal(actual, expected, what: str) -> None:
  for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
    np.testing.assert_array_equal(a, e, err_msg=what)


def assert_close(actual, expected, what: str) -> None:
  for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
    np.testing.assert_allclose(a, e, rtol=RTOL, atol=ATOL, err_msg=what)


def test_host_gives_a_member_the_bits_of_its_one_run_program(runs):
  host = runs["grids"]["host"]
  for reference in ("one_run", "host_alone"):
    assert_equal(member(host, ALONE), member(runs[reference], 0), f"host vs {reference}")
    assert host.members[ALONE]["final"] == runs[reference].members[0]["final"], reference
    assert host.members[ALONE]["curves"] == runs[reference].members[0]["curves"], reference


@pytest.mark.parametrize("name", ["vmap", "map"])
def test_the_batched_strategies_agree_with_host_to_round_off(runs, name):
  grid, host = runs["grids"][name], runs["grids"]["host"]
  assert grid.layout.strategy == name
  for i, (hp, seed) in enumerate(MEMBERS):
    assert grid.members[i]["hparams"] == {"learning_rate": hp["learning_rate"], "momentum": 0.9}
    assert grid.members[i]["seed"] == seed
    assert_close(member(grid, i), member(host, i), f"{name} member {i}")
    for metric, value in host.members[i]["final"].items():
      assert grid.members[i]["final"][metric] == pytest.approx(value, rel=RTOL), metric
  # Members differ: a strategy that gave every member one setting would fail above, and here.
  assert not np.allclose(member(host, 0)["Dense_0"]["kernel"], member(host, 2)["Dense_0"]["kernel"])


@pytest.mark.parametrize("name", ["vmap", "map", "host"])
def test_each_strategy_runs_every_interval_once_and_evaluates_after_it(runs, name):
  calls = {k[1:]: n for k, n in runs["calls"].items() if k[0] == name}
  # One chunk of the 3 members; intervals of 3, 3 and 1 steps from steps 0, 3 and 6.
  assert calls == {
    ("start",): 1,
    ("advance", 0, 3): 1,
    ("advance", 3, 3): 1,
    ("advance", 6, 1): 1,
    ("evaluate",): 3,
  }
  curves = runs["grids"][name].members[0]["curves"]
  assert curves["eval_step"] == [3, 6, 7]
  assert curves["step"] == [2, 4, 6, 7]
  assert all(len(curves[f"{s}_{m}"]) == 3 for s in ("valid", "test") for m in ("loss", "accuracy"))


@pytest.mark.parametrize("name", strategies.STRATEGIES)
def test_compiling_ahead_of_time_runs_the_same_program(task, name):
  """Strategy.compile (bench_engine's timed programs) gives the bits advance gives uncompiled."""
  two = MEMBERS[:2]
  groups, vectorized = engine.split_hparams(two)
  assert groups == [[0, 1]] and vectorized == ["learning_rate"]
  outcomes = []
  for ahead in (False, True):
    programs = engine.Programs(
      task,
      catalog.lookup("momentum"),
      {},
      engine.Schedule(2, 2, 2),
      jax.devices()[:1],
      width=2,
      strategy=name,
    )
    runner = programs.strategy
    chunk = runner.start(*engine.member_arrays(two, vectorized))
    if ahead:
      runner.compile(chunk, 2)
    losses, _ = runner.advance(chunk, 0, 2)
    metrics, finite = runner.evaluate(chunk)
    outcomes.append((np.asarray(losses), jax.tree.map(np.asarray, metrics), np.asarray(finite)))
    assert np.asarray(losses).shape == (2, 2)  # (members, steps)
  assert_equal(outcomes[1], outcomes[0], f"{name}: compiled ahead vs not")


def test_the_rule_is_a_table_of_backend_and_task_kind(task, monkeypatch):
  conv = ImageTask("conv", data_lib.load("digits"), models.conv(10, channels=(4,), strides=(1,)))
  assert layout.task_kind(conv) == layout.CONV and layout.task_kind(task) == layout.DENSE
  # Today's answers: CPU: conv -> map, otherwise vmap; other backends vmap.
  assert layout.default_strategy(conv, "cpu") == "map"
  assert layout.default_strategy(task, "cpu") == "vmap"
  for backend in ("gpu", "tpu"):
    assert layout.default_strategy(conv, backend) == "vmap"
    assert layout.default_strategy(task, backend) == "vmap"
  assert set(layout.RULE.values()) | {layout.OTHERWISE} <= set(strategies.STRATEGIES)
  # A measurement changes one entry, and the rule follows it.
  monkeypatch.setitem(layout.RULE, ("gpu", layout.CONV), "host")
  assert layout.default_strategy(conv, "gpu") == "host"
  assert layout.default_strategy(task, "gpu") == "vmap"


def test_each_strategy_is_its_class_under_its_name():
  assert strategies.STRATEGIES == ("vmap", "map", "host")
  for name, cls in strategies.BY_NAME.items():
    assert issubclass(cls, base.Strategy) and cls.name == name
  with pytest.raises(ValueError, match="unknown layout strategy 'scan'; valid: vmap, map, host"):
    layout.check_strategy("scan")


def test_the_engine_has_no_branch_on_a_strategy_name():
  """engine.py names no strategy in a comparison or a match: the classes hold what differs."""
  tree = ast.parse((ROOT / "eval/run/engine.py").read_text())
  named = [
    node
    for node in ast.walk(tree)
    if isinstance(node, (ast.Compare, ast.match_case))
    and any(
      isinstance(c, ast.Constant) and c.value in strategies.STRATEGIES for c in ast.walk(node)
    )
  ]
  assert named == [], [ast.unparse(n) for n in named if isinstance(n, ast.Compare)]
