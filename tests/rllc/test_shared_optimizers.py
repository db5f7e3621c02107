"""Checks every optimizer of the catalog inherits: add one line to OPTIMIZERS.

Each entry is (catalog name or spec, hyperparameters for the parabola,
hyperparameters for Rosenbrock). Every update gets the loss as optax's
`value=`, which the adaptive-memory optimizers use and the others ignore.
The checks: convergence on a parabola and on Rosenbrock's function, float32
and bfloat16 kept, a stable state tree, no recompilation on a second call,
and a run through the learned_optimization adapter inside
learned_optimization's own training loop.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rllc
from rllc import catalog

SIGN_DECAY = optax.exponential_decay(0.1, transition_steps=25, decay_rate=0.7)  # parabola
SIGN_DECAY_SLOW = optax.exponential_decay(0.01, transition_steps=1000, decay_rate=0.8)

OPTIMIZERS = [
  ("sgd", {"learning_rate": 0.1}, {"learning_rate": 2e-3}),
  ("momentum", {"learning_rate": 0.02}, {"learning_rate": 1e-3}),
  ("nesterov", {"learning_rate": 0.02}, {"learning_rate": 1e-3}),
  ("adam", {"learning_rate": 0.05}, {"learning_rate": 1e-2}),
  # RLLC starts from L0 = 1 per unit (the default): its rates are the normalized
  # law's (0.1 and 2e-3 / 1e-3 at L0 = 1 / ||(I - B^T)^{-1} a||_1) times that L0.
  (
    "M(0.9)",
    {"learning_rate": 0.01, "law_learning_rate": 0.01},
    {"learning_rate": 2e-4, "law_learning_rate": 0.01},
  ),
  (
    "M(0.9)+M(0)",
    {"learning_rate": 0.01, "law_learning_rate": 0.01},
    {"learning_rate": 2e-4, "law_learning_rate": 0.01},
  ),
  (
    "M2(0.6)",
    {"learning_rate": 0.01, "law_learning_rate": 0.01},
    {"learning_rate": 1e-4, "law_learning_rate": 0.01},
  ),
  (
    "M(0.9)+M(0)+M2(0.6)+CM(0.9i)",
    {"learning_rate": 5e-3, "law_learning_rate": 0.01},
    {"learning_rate": 5e-5, "law_learning_rate": 0.01},
  ),
  (
    "lm:M(0.9)+M(0)",
    {"law": (0.9, 1.0), "learning_rate": 0.02},
    {"law": (0.9, 1.0), "learning_rate": 1e-3},
  ),
  ("adamw", {"learning_rate": 0.05, "weight_decay": 0.0}, {"learning_rate": 3e-3}),
  ("am-sgd", {"learning_rate": 0.1}, {"learning_rate": 2e-3}),
  ("am-sgd-clip", {"learning_rate": 0.1}, {"learning_rate": 2e-3}),
  ("am-sgd-reset", {"learning_rate": 0.1}, {"learning_rate": 2e-3}),
  ("am-sgd", {"learning_rate": 0.1, "per_leaf": True}, {"learning_rate": 2e-3, "per_leaf": True}),
  ("am-mgd", {"learning_rate": 0.1}, {"learning_rate": 2e-3}),
  ("ema-momentum", {"learning_rate": 0.1}, {"learning_rate": 2e-3}),
  ("am-adamw", {"learning_rate": 0.05, "weight_decay": 0.0}, {"learning_rate": 1e-2}),
  ("am-adamw-clip", {"learning_rate": 0.05, "weight_decay": 0.0}, {"learning_rate": 1e-2}),
  ("am-adamw-reset", {"learning_rate": 0.05, "weight_decay": 0.0}, {"learning_rate": 3e-3}),
  ("nadam", {"learning_rate": 0.05}, {"learning_rate": 1e-2}),
  ("nadamw", {"learning_rate": 0.05, "weight_decay": 0.0}, {"learning_rate": 3e-3}),
  # AdEMAMix's slow EMA (b3 = 0.9999) needs more than 500 steps: a faster one here.
  (
    "ademamix",
    {"learning_rate": 0.02, "b3": 0.99, "alpha": 1.0},
    {"learning_rate": 3e-3, "b3": 0.99, "alpha": 1.0},
  ),
  # Sign-like steps keep their size: they converge with a decaying learning rate.
  ("muon", {"learning_rate": SIGN_DECAY}, {"learning_rate": 1e-2}),
  ("lion", {"learning_rate": SIGN_DECAY}, {"learning_rate": SIGN_DECAY_SLOW}),
  ("signum", {"learning_rate": SIGN_DECAY}, {"learning_rate": SIGN_DECAY_SLOW}),
  ("lion-k", {"learning_rate": SIGN_DECAY}, {"learning_rate": SIGN_DECAY_SLOW}),
  ("lion-k", {"learning_rate": 0.3, "kernel": "l2"}, {"learning_rate": 1e-2, "kernel": "l2"}),
  ("precond-momentum", {"learning_rate": 0.01}, {"learning_rate": 1e-3}),
  (
    "precond-momentum",
    {"learning_rate": 0.02, "preconditioner": "identity"},
    {"learning_rate": 1e-3, "preconditioner": "identity"},
  ),
  ("delta-momentum", {"learning_rate": 0.05}, {"learning_rate": 2e-3}),
  ("ns-momentum", {"learning_rate": SIGN_DECAY}, {"learning_rate": 2e-3}),
  # Rosenbrock's one leaf of two coordinates: the shared MLP couples x and y
  # (its step on one is a kernel sum over both); at mlp_rate 1 it ends in a
  # 2-cycle across the valley.
  ("deep-momentum", {"learning_rate": 0.05}, {"learning_rate": 2e-3, "mlp_rate": 0.1}),
  (
    "deep-momentum",
    {"learning_rate": SIGN_DECAY, "sigma": "newton_schulz"},
    {"learning_rate": 2e-3, "mlp_rate": 0.1, "sigma": "newton_schulz"},
  ),
  (
    "delta-momentum",
    {"learning_rate": 0.05, "preconditioner": "adam"},
    {"learning_rate": 1e-3, "preconditioner": "adam"},
  ),
]
IDS = [rllc.optimizer(name, **hparams).name for name, hparams, _ in OPTIMIZERS]

TARGET = {"a": jnp.array([1.0, -2.0, 3.0]), "b": jnp.array([[0.5, -0.5], [2.0, 1.0]])}
SCALES = {"a": jnp.array([1.0, 2.0, 0.5]), "b": jnp.array([[1.0, 3.0], [0.3, 1.0]])}


def parabola(params):
  return sum(
    jnp.sum(s * (p - t) ** 2)
    for p, t, s in zip(
      jax.tree.leaves(params), jax.tree.leaves(TARGET), jax.tree.leaves(SCALES), strict=True
    )
  )


def rosenbrock(params):
  x, y = params["xy"][0], params["xy"][1]
  return (1 - x) ** 2 + 100 * (y - x * x) ** 2


def run(tx, loss_fn, params, steps):
  """Trains with a jitted scan, passing the loss as optax's value=; returns the final params."""
  tx = optax.with_extra_args_support(tx)

  def step(carry, _):
    params, state = carry
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, state = tx.update(grads, state, params, value=loss)
    return (optax.apply_updates(params, updates), state), None

  (params, _), _ = jax.jit(lambda c: jax.lax.scan(step, c, None, length=steps))(
    (params, tx.init(params))
  )
  return params


@pytest.mark.parametrize("name,hparams,_", OPTIMIZERS, ids=IDS)
def test_converges_on_parabola(name, hparams, _):
  params = jax.tree.map(jnp.zeros_like, TARGET)
  start = parabola(params)
  final = parabola(run(rllc.optimizer(name, **hparams).tx, parabola, params, 500))
  assert final < 1e-6 * start, f"{name}: loss {start} -> {final}"


@pytest.mark.parametrize("name,_,hparams", OPTIMIZERS, ids=IDS)
def test_converges_on_rosenbrock(name, _, hparams):
  params = {"xy": jnp.array([-1.0, 1.0])}
  final = run(rllc.optimizer(name, **hparams).tx, rosenbrock, params, 20000)
  np.testing.assert_allclose(final["xy"], [1.0, 1.0], atol=0.05, err_msg=name)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("name,hparams,_", OPTIMIZERS, ids=IDS)
def test_keeps_dtype(name, hparams, _, dtype):
  tx = optax.with_extra_args_support(rllc.optimizer(name, **hparams).tx)
  params = jax.tree.map(lambda t: t.astype(dtype), TARGET)
  state = tx.init(params)
  grads = jax.tree.map(lambda p: jnp.ones_like(p) * 0.1, params)
  updates, new_state = jax.jit(tx.update)(grads, state, params, value=parabola(params))
  assert all(u.dtype == dtype for u in jax.tree.leaves(updates))
  assert all(p.dtype == dtype for p in jax.tree.leaves(optax.apply_updates(params, updates)))
  assert [x.dtype for x in jax.tree.leaves(new_state)] == [x.dtype for x in jax.tree.leaves(state)]


@pytest.mark.parametrize("name,hparams,_", OPTIMIZERS, ids=IDS)
def test_state_structure_and_shapes_are_stable(name, hparams, _):
  tx = optax.with_extra_args_support(rllc.optimizer(name, **hparams).tx)
  state = tx.init(TARGET)
  new_state = state
  loss, grads = jax.value_and_grad(parabola)(TARGET)
  for _ in range(3):
    _, new_state = tx.update(grads, new_state, TARGET, value=loss)
  assert jax.tree.structure(new_state) == jax.tree.structure(state)
  assert [(x.shape, x.dtype) for x in jax.tree.leaves(new_state)] == [
    (x.shape, x.dtype) for x in jax.tree.leaves(state)
  ]


def test_every_catalog_entry_inherits_these_checks():
  assert set(catalog.DEFAULT) <= {name for name, _, _ in OPTIMIZERS}


@pytest.mark.parametrize("name,hparams,_", OPTIMIZERS, ids=IDS)
def test_declared_buffers_match_the_state(name, hparams, _):
  # Per parameter leaf, the state leaves of that leaf's shape, on shapes no
  # small state (a Gram matrix, a law) can share; the declared number is the
  # most over leaves (Muon keeps fewer on matrices).
  params = {"vector": jnp.zeros(17), "matrix": jnp.zeros((13, 11))}
  built = rllc.optimizer(name, **hparams)
  state = optax.with_extra_args_support(built.tx).init(params)
  shapes = [x.shape for x in jax.tree.leaves(state)]
  per_leaf = [shapes.count(p.shape) for p in jax.tree.leaves(params)]
  assert max(per_leaf) == built.buffers, f"{name}: state holds {per_leaf}"


@pytest.mark.parametrize("name,hparams,_", OPTIMIZERS, ids=IDS)
def test_no_recompilation_on_second_call(name, hparams, _):
  tx = optax.with_extra_args_support(rllc.optimizer(name, **hparams).tx)
  update = jax.jit(tx.update)
  state = tx.init(TARGET)
  loss, grads = jax.value_and_grad(parabola)(TARGET)
  _, state = update(grads, state, TARGET, value=loss)
  _, state = update(grads, state, TARGET, value=loss)
  assert update._cache_size() == 1


@pytest.mark.parametrize("name,hparams,_", OPTIMIZERS, ids=IDS)
def test_init_after_a_donated_state_still_works(name, hparams, _):
  # A training loop donates the state it carries; init must hand out fresh
  # buffers, not the transformation's own constants (an initial law, say),
  # or the next init returns deleted arrays.
  tx = optax.with_extra_args_support(rllc.optimizer(name, **hparams).tx)
  loss, grads = jax.value_and_grad(parabola)(TARGET)
  update = jax.jit(lambda state: tx.update(grads, state, TARGET, value=loss), donate_argnums=0)
  jax.block_until_ready(update(tx.init(TARGET)))
  state = tx.init(TARGET)
  assert not any(x.is_deleted() for x in jax.tree.leaves(state))
  _, state = update(state)
  assert all(np.isfinite(np.asarray(x, np.float64)).all() for x in jax.tree.leaves(state))


@pytest.mark.parametrize("name,hparams,_", OPTIMIZERS, ids=IDS)
def test_runs_in_learned_optimization_training_loop(name, hparams, _):
  from rllc.compat import lo_compat
  from tasks import synthetic

  eval_training = lo_compat.load("learned_optimization.eval_training")
  built = rllc.optimizer(name, **hparams)
  opt = built.lopt()
  assert opt.name == built.name
  task = synthetic.QuadraticTask(dim=8, seed=1, condition_number=10.0)
  curves = eval_training.single_task_training_curves(
    task,
    opt,
    num_steps=20,
    key=jax.random.key(0),
    eval_every=10,
    eval_batches=1,
    last_eval_batches=1,
  )
  losses = np.asarray(curves["train/loss"])
  assert np.all(np.isfinite(losses))
  assert losses[-1] < losses[0]
