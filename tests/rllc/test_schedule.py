"""Learning-rate schedules (rllc.schedule) on every catalog optimizer, through the catalog.

- the schedules are optax's warmup-cosine and AlgoPerf's warmup-linear, value for value;
- a constant schedule leaves an optimizer as it was: hyperparameters, results name, bits;
- warmup + cosine at step t is, bit for bit, a constant-lr optimizer's step t at lr(t)
  from the same state (the pattern of tests/rllc/test_memory_golden.py);
- bad names, warmup fractions and decays are refused with a message saying what is valid.
"""

import jax
import numpy as np
import optax
import pytest

import rllc
from rllc import catalog
from rllc import schedule as schedule_lib

STEPS = 12
SHAPES = {"b": (3,), "w": (2, 3)}
# (name, hyperparameters) of the catalog optimizers the fair protocol runs, and a fixed law.
CASES = [
  ("sgd", {"learning_rate": 0.1}),
  ("momentum", {"learning_rate": 0.03}),
  ("nesterov", {"learning_rate": 0.03}),
  ("adam", {"learning_rate": 1e-3}),
  ("M(0.9)+M(0)", {"learning_rate": 0.1, "law_learning_rate": 0.01}),
  ("lm:M(0.9)+M(0)", {"learning_rate": 0.1, "law": (0.9, 1.0)}),
  ("am-sgd", {"learning_rate": 0.1}),
  ("am-adamw", {"learning_rate": 1e-3}),
]


def _grads() -> list[dict]:
  rng = np.random.default_rng(30)
  return [
    {k: rng.standard_normal(s).astype(np.float32) for k, s in SHAPES.items()} for _ in range(STEPS)
  ]


def _params() -> dict:
  return {k: np.full(s, 0.5, np.float32) for k, s in SHAPES.items()}


def _run(tx, grads) -> tuple[list, list]:
  """Updates, and the state each started from (fixed params: AM-AdamW reads them)."""
  tx = optax.with_extra_args_support(tx)
  update = jax.jit(lambda g, s: tx.update(g, s, _params(), value=np.float32(1.0)))
  state, updates, states = tx.init(_params()), [], []
  for g in grads:
    states.append(state)
    u, state = update(g, state)
    updates.append(u)
  return updates, states


@pytest.mark.parametrize("warmup, total", [(0.0, 100), (0.05, 100), (0.1, 37), (0.5, 10)])
def test_cosine_is_optax_warmup_cosine_decay_to_zero(warmup, total):
  lr = schedule_lib.learning_rate(0.3, "cosine", warmup, total)
  w = int(np.floor(warmup * total))
  want = optax.warmup_cosine_decay_schedule(0.0, 0.3, w, total, 0.0)
  for t in range(total + 5):
    np.testing.assert_allclose(float(lr(t)), float(want(t)), rtol=1e-5, atol=1e-7, err_msg=t)


@pytest.mark.parametrize("warmup, total", [(0.0, 100), (0.05, 100), (0.2, 33)])
def test_linear_is_a_linear_warmup_then_a_linear_decay_to_zero(warmup, total):
  lr = schedule_lib.learning_rate(0.3, "linear", warmup, total)
  w = int(np.floor(warmup * total))
  want = optax.join_schedules(
    [optax.linear_schedule(0.0, 0.3, w), optax.linear_schedule(0.3, 0.0, total - w)], [w]
  )
  for t in range(total + 5):
    np.testing.assert_allclose(float(lr(t)), float(want(t)), rtol=1e-5, atol=1e-7, err_msg=t)


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_the_float64_learning_rate_is_the_traced_one(kind):
  hparams = {"learning_rate": 0.1, "schedule": kind, "warmup": 0.1, "total_steps": 50}
  counts = np.arange(60)
  traced = jax.vmap(schedule_lib.learning_rate(0.1, kind, 0.1, 50))(counts)
  np.testing.assert_allclose(schedule_lib.learning_rate_np(hparams, counts), traced, atol=1e-8)
  constant = schedule_lib.learning_rate_np({"learning_rate": 0.1}, counts)
  np.testing.assert_array_equal(constant, np.full(60, 0.1))


def test_a_schedule_may_be_traced_over_a_grid_of_peaks_and_warmups():
  peaks, warmups = np.array([0.1, 0.2], np.float32), np.array([0.0, 0.5], np.float32)
  got = jax.vmap(lambda p, w: schedule_lib.learning_rate(p, "cosine", w, 10)(4))(peaks, warmups)
  want = [
    optax.warmup_cosine_decay_schedule(0.0, p, int(w * 10), 10)(4)
    for p, w in (
      (0.1, 0.0),
      (0.2, 0.5),
    )
  ]
  np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("name", sorted(catalog.DEFAULT))
def test_a_constant_schedule_keeps_every_entrys_hyperparameters_and_results_name(name):
  entry = catalog.lookup(name)
  given = {"learning_rate": 0.01}
  plain = entry.resolve(given)
  for constant in (
    entry.resolve({**given, "schedule": "constant"}),
    catalog.lookup(name + "+constant").resolve(given),
  ):
    assert constant == plain
    assert list(constant) == list(plain)
    assert entry.result_name(constant) == entry.result_name(plain)


def test_todays_names_and_hyperparameters_are_unchanged():
  """Literal values of the records written before schedules existed (reports/table1/runs.csv)."""
  momentum = catalog.lookup("momentum")
  resolved = momentum.resolve({"learning_rate": 0.01, "schedule": "constant"})
  assert resolved == {"learning_rate": 0.01, "momentum": 0.9}
  assert momentum.result_name(resolved) == "Momentum_lr0.01_m0.9"
  spec = catalog.lookup("M(0.9)+M(0)")
  resolved = spec.resolve({"learning_rate": 0.03, "law_learning_rate": 0.003})
  assert spec.result_name(resolved) == "RLLC[M(0.9)+M(0)]_lr0.03_law0.003"


@pytest.mark.parametrize("name, hparams", CASES, ids=[c[0] for c in CASES])
def test_a_constant_schedule_gives_todays_bits(name, hparams):
  grads = _grads()
  plain, _ = _run(rllc.optimizer(name, **hparams).tx, grads)
  constant, _ = _run(rllc.optimizer(name, schedule="constant", **hparams).tx, grads)
  for t, (got, want) in enumerate(zip(constant, plain, strict=True)):
    for leaf in SHAPES:
      assert np.array_equal(got[leaf], want[leaf]), (t, leaf)


def _as_constant(state):
  """A scheduled optax optimizer's state as its constant-lr form holds it (no schedule count)."""
  return jax.tree.map(
    lambda s: optax.EmptyState() if isinstance(s, optax.ScaleByScheduleState) else s,
    state,
    is_leaf=lambda s: isinstance(s, optax.ScaleByScheduleState),
  )


@pytest.mark.parametrize("name, hparams", CASES, ids=[c[0] for c in CASES])
def test_warmup_cosine_at_step_t_is_the_constant_lr_step_at_lr_t(name, hparams):
  """The state does not involve the lr, so the optimizer at the constant lr(t), fed the
  scheduled run's state before step t, makes step t's update, bit for bit; a schedule read at
  another count fails here. Both are compiled alike: the update and the state returned (XLA
  fuses a program that drops the state otherwise, which rounds RLLC's update differently in
  the last place), the constant lr an argument as a grid's is in the engine, not a literal
  (which XLA folds into AM-AdamW's 1 / (1 + mu lr))."""
  grads = _grads()
  options = {"schedule": "cosine", "warmup": 0.25, "total_steps": STEPS}
  updates, states = _run(rllc.optimizer(name, **hparams, **options).tx, grads)
  rate = schedule_lib.learning_rate(hparams["learning_rate"], "cosine", 0.25, STEPS)
  assert float(rate(0)) == 0 and rate(3) == np.float32(hparams["learning_rate"])  # warmup, peak

  @jax.jit
  def constant_step(g, state, lr):
    tx = optax.with_extra_args_support(rllc.optimizer(name, **{**hparams, "learning_rate": lr}).tx)
    return tx.update(g, state, _params(), value=np.float32(1.0))

  for t in range(STEPS):
    want, _ = constant_step(grads[t], _as_constant(states[t]), rate(t))
    for leaf in SHAPES:
      assert np.array_equal(updates[t][leaf], want[leaf]), (t, leaf)


@pytest.mark.parametrize(
  "name, options",
  [
    ("momentum+cosine(0.05)", {"schedule": "cosine", "warmup": 0.05}),
    ("momentum+cosine", {"schedule": "cosine", "warmup": 0.0}),
    ("M(0.9)+M(0)@ones+linear(0.1)", {"schedule": "linear", "warmup": 0.1}),
    ("adam+cosine(0.05)+ema(0.999)", {"schedule": "cosine", "warmup": 0.05, "ema": 0.999}),
    ("sgd+ema(0.9)", {"ema": 0.9}),
    ("sgd+constant", {}),
  ],
)
def test_names_carry_the_options_and_print_them_back(name, options):
  base, got = schedule_lib.split_options(name)
  assert got == options
  assert base + schedule_lib.suffix(got) == name.removesuffix("+constant")
  entry = catalog.lookup(name)
  assert entry.options == options and entry.family == catalog.lookup(base).family


def test_a_scheduled_record_names_its_schedule_and_length():
  built = rllc.optimizer("momentum+cosine(0.05)+ema(0.999)", learning_rate=0.1, total_steps=1000)
  assert built.hparams == {
    "learning_rate": 0.1,
    "momentum": 0.9,
    "schedule": "cosine",
    "warmup": 0.05,
    "total_steps": 1000,
    "ema": 0.999,
  }
  assert built.name == "Momentum_lr0.1_m0.9_cosine_wu0.05_T1000_ema0.999"
  by_keys = rllc.optimizer(
    "momentum", learning_rate=0.1, schedule="cosine", warmup=0.05, total_steps=1000, ema=0.999
  )
  assert by_keys.hparams == built.hparams and by_keys.name == built.name


@pytest.mark.parametrize(
  "name, hparams, says",
  [
    ("momentum+cosin(0.05)", {}, "unknown schedule 'cosin'"),
    ("momentum+cosine(1.5)", {}, "warmup fraction 1.5"),
    ("momentum+cosine(-0.1)", {}, "in [0, 1)"),
    ("momentum+cosine(x)", {}, "takes a number"),
    ("momentum+ema(1)", {}, "EMA decay 1.0"),
    ("momentum+ema", {}, "needs its decay"),
    ("momentum+cosine+linear", {}, "two schedules"),
    ("momentum+cosine", {}, "needs total_steps"),
    ("momentum", {"warmup": 0.1}, "without a schedule"),
    ("momentum", {"schedule": "step"}, "valid: constant, cosine, linear"),
    ("momentum+cosine(0.05)", {"schedule": "linear", "total_steps": 9}, "its name sets"),
  ],
)
def test_bad_options_are_refused_naming_the_culprit(name, hparams, says):
  with pytest.raises(ValueError, match=None) as err:
    rllc.optimizer(name, learning_rate=0.1, **hparams)
  assert says in str(err.value) and "\n" not in str(err.value)
