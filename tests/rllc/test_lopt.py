"""Tests for rllc.lopt.OptaxAdapter, including runs in learned_optimization."""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rllc.compat import lo_compat
from rllc.lopt import AdapterState, OptaxAdapter
from tasks.synthetic import QuadraticTask

eval_training = lo_compat.load("learned_optimization.eval_training")
training = lo_compat.load("learned_optimization.training")
tasks_base = lo_compat.load("learned_optimization.tasks.base")
opt_base = lo_compat.load("learned_optimization.optimizers.base")
lopt_base = lo_compat.load("learned_optimization.learned_optimizers.base")

# A small SPD quadratic f(w) = 0.5 w^T A w - b^T w with gradient A w - b.
_A = np.array([[3.0, 0.5, 0.0], [0.5, 2.0, 0.3], [0.0, 0.3, 1.0]], np.float32)
_B = np.array([1.0, -2.0, 0.5], np.float32)
_W0 = np.array([0.3, -0.7, 1.1], np.float32)


def _quadratic_loss(params: dict[str, jax.Array]) -> jax.Array:
  w = params["w"]
  return 0.5 * w @ (_A @ w) - _B @ w


def _loss_scaled_descent() -> optax.GradientTransformationExtraArgs:
  """Update = -value * grad; the state records the last `value` seen."""

  def init(params: Any) -> jax.Array:
    del params
    return jnp.zeros((), jnp.float32)

  def update(updates, state, params=None, *, value, **extra_args):
    del state, params, extra_args
    return jax.tree.map(lambda g: -value * g, updates), value

  return optax.GradientTransformationExtraArgs(init, update)


def test_sgd_matches_numpy_trajectory():
  adapter = OptaxAdapter(optax.sgd(0.1), "SGD_lr0.1")
  state = adapter.init({"w": jnp.asarray(_W0)})
  w = _W0.copy()
  for _ in range(15):
    params = adapter.get_params(state)
    loss, grad = jax.value_and_grad(_quadratic_loss)(params)
    state = adapter.update(state, grad, loss=loss)
    w = (w - np.float32(0.1) * (_A @ w - _B)).astype(np.float32)
    np.testing.assert_allclose(adapter.get_params(state)["w"], w, rtol=1e-5, atol=1e-6)
  assert int(state.iteration) == 15


def test_loss_is_forwarded_as_value():
  adapter = OptaxAdapter(_loss_scaled_descent(), "LossScaled")
  params = {"w": jnp.array([1.0, 2.0])}
  grad = {"w": jnp.array([0.5, -1.0])}
  state = adapter.init(params)

  after_two = adapter.update(state, grad, loss=jnp.asarray(2.0))
  after_three = adapter.update(state, grad, loss=jnp.asarray(3.0))

  np.testing.assert_allclose(after_two.params["w"], [0.0, 4.0])
  np.testing.assert_allclose(after_three.params["w"], [-0.5, 5.0])
  assert float(after_three.optax_opt_state) == 3.0


def test_plain_transformation_ignores_loss_and_extra_kwargs():
  adapter = OptaxAdapter(optax.sgd(0.5), "SGD_lr0.5")
  state = adapter.init({"w": jnp.array([1.0, -1.0])})
  grad = {"w": jnp.array([2.0, 4.0])}

  without_loss = adapter.update(state, grad)
  with_loss = adapter.update(
    state, grad, loss=jnp.asarray(7.0), is_valid=True, key=jax.random.key(0)
  )

  np.testing.assert_array_equal(without_loss.params["w"], [0.0, -3.0])
  np.testing.assert_array_equal(with_loss.params["w"], [0.0, -3.0])


def test_state_layout_name_and_model_state():
  adapter = OptaxAdapter(optax.sgd(0.1), "SGD_lr0.1")
  assert adapter.name == "SGD_lr0.1"
  assert isinstance(adapter, opt_base.Optimizer)

  model_state = {"count": jnp.asarray(0)}
  state = adapter.init({"w": jnp.zeros(2)}, model_state, num_steps=10)
  assert isinstance(state, AdapterState)
  assert state.iteration.dtype == jnp.int32 and int(state.iteration) == 0
  assert adapter.get_state(state) is model_state

  grad = {"w": jnp.ones(2)}
  kept = adapter.update(state, grad)
  assert int(kept.iteration) == 1 and kept.iteration.dtype == jnp.int32
  assert int(adapter.get_state(kept)["count"]) == 0
  replaced = adapter.update(kept, grad, model_state={"count": jnp.asarray(5)})
  assert int(adapter.get_state(replaced)["count"]) == 5
  assert int(replaced.iteration) == 2


def test_quadratic_task_is_a_deterministic_lo_task():
  task = QuadraticTask(dim=6, seed=3, condition_number=50.0)
  assert isinstance(task, tasks_base.Task)
  assert task.datasets is None
  assert task.name == "QuadraticTask_dim6_cond50_seed3"

  hessian = jax.hessian(lambda w: task.loss({"w": w}, None, ()))(jnp.zeros(6))
  np.testing.assert_allclose(
    np.linalg.eigvalsh(np.asarray(hessian, np.float64))[::-1],
    np.geomspace(1.0, 1.0 / 50.0, 6),
    rtol=1e-4,
  )
  assert float(task.loss(task.optimal_params(), None, ())) < 1e-8
  start = task.init(jax.random.PRNGKey(7))
  np.testing.assert_array_equal(start["w"], np.zeros(6, np.float32))
  np.testing.assert_allclose(task.normalizer(task.loss(start, None, ())), 1.0, rtol=1e-6)
  # Same arguments, same problem.
  twin = QuadraticTask(dim=6, seed=3, condition_number=50.0)
  probe = {"w": jnp.linspace(-1.0, 1.0, 6)}
  assert float(task.loss(probe, None, ())) == float(twin.loss(probe, None, ()))


def test_single_task_training_curves_runs_and_matches_lo_sgd():
  task = QuadraticTask(dim=8, seed=0)
  kwargs = {
    "num_steps": 20,
    "key": jax.random.PRNGKey(0),
    "eval_every": 10,
    "eval_batches": 1,
    "last_eval_batches": 1,
  }

  curves = eval_training.single_task_training_curves(
    task, OptaxAdapter(optax.sgd(0.5), "SGD_lr0.5"), **kwargs
  )

  train_loss = curves["train/loss"]
  assert train_loss.shape == (21,)
  assert np.all(np.isfinite(train_loss))
  assert train_loss[-1] < 0.1 * train_loss[0]
  np.testing.assert_array_equal(curves["eval/xs"], [0, 10, 20])
  eval_loss = curves["eval/train/loss"]
  assert np.all(np.isfinite(eval_loss))
  assert eval_loss[0] > eval_loss[1] > eval_loss[2]
  # The task starts at zero and its normalizer divides by the initial loss.
  np.testing.assert_allclose(curves["eval/train/loss_normalized"][0], 1.0, rtol=1e-5)

  # Same loop with learned_optimization's own optax wrapper: identical curve.
  reference = eval_training.single_task_training_curves(
    task, opt_base.SGD(learning_rate=0.5), **kwargs
  )
  np.testing.assert_allclose(train_loss, reference["train/loss"], rtol=1e-6)


class _FixedLearnedOptimizer(lopt_base.LearnedOptimizer):
  """A 'learned' optimizer whose meta-parameters do not change the optimizer."""

  def __init__(self, opt: opt_base.Optimizer):
    self._opt = opt

  def init(self, key: jax.Array) -> dict[str, jax.Array]:
    del key
    # Not {}: with an empty meta-parameter tree, learned_optimization's pmapped
    # eval_loss fails on current JAX (task_params keep their device axis).
    return {"unused": jnp.zeros(())}

  def opt_fn(self, theta: Any, is_training: bool = False) -> opt_base.Optimizer:
    del theta, is_training
    return self._opt


def test_multi_task_training_curves_runs_under_vmap_and_pmap():
  task = QuadraticTask(dim=8, seed=0)
  learned_opt = _FixedLearnedOptimizer(OptaxAdapter(optax.sgd(0.5), "SGD_lr0.5"))
  curves = eval_training.multi_task_training_curves(
    tasks_base.single_task_to_family(task),
    learned_opt,
    learned_opt.init(jax.random.PRNGKey(0)),
    n_tasks=2,
    key=jax.random.PRNGKey(1),
    n_devices=1,
    steps=20,
    steps_per_jit=10,
    eval_every=10,
  )

  train_loss = curves["train/loss"]
  assert train_loss.shape == (2, 20)
  assert np.all(np.isfinite(train_loss))
  assert np.all(train_loss[:, -1] < 0.1 * train_loss[:, 0])
  # The task is deterministic, so both vmapped copies follow one trajectory.
  np.testing.assert_allclose(train_loss[0], train_loss[1], rtol=1e-6)


def test_training_save_and_load_state_round_trip(tmp_path):
  adapter = OptaxAdapter(optax.adam(0.1), "Adam_lr0.1")
  params = {"w": jnp.array([1.0, 2.0, 3.0])}
  state = adapter.update(adapter.init(params), {"w": jnp.ones(3)})
  path = str(tmp_path / "state.msgpack")

  training.save_state(path, state)
  restored = training.load_state(path, adapter.init(params))

  assert isinstance(restored, AdapterState)
  assert jax.tree.structure(restored) == jax.tree.structure(state)
  jax.tree.map(np.testing.assert_array_equal, restored, state)
  assert int(restored.iteration) == 1


@pytest.mark.parametrize("pass_loss", [False, True])
def test_second_update_does_not_recompile(pass_loss):
  traces = []

  def update(updates, state, params=None, **extra_args):
    del params, extra_args
    traces.append(None)  # Python side effect: runs only while tracing.
    return jax.tree.map(lambda g: -0.1 * g, updates), state

  adapter = OptaxAdapter(
    optax.GradientTransformationExtraArgs(lambda p: optax.EmptyState(), update),
    f"Counting_{pass_loss}",
  )
  state = adapter.init({"w": jnp.ones(4)})
  grad = {"w": jnp.ones(4)}
  extra = {"loss": jnp.asarray(1.0)} if pass_loss else {}
  compiled_before = OptaxAdapter.update._cache_size()

  state = adapter.update(state, grad, is_valid=False, **extra)
  state = adapter.update(state, grad, is_valid=False, **extra)

  assert len(traces) == 1
  assert OptaxAdapter.update._cache_size() - compiled_before == 1
  assert int(state.iteration) == 2
