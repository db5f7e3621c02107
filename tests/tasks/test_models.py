"""The paper's networks: shapes against learned_optimization, ResNet-20, training sanity."""

import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax import lax

from rllc.compat import lo_compat
from tasks import models

MNIST, CIFAR, DIGITS = (28, 28, 1), (32, 32, 3), (8, 8, 1)


def _lo_datasets(image_shape: tuple[int, ...]):
  """learned_optimization `Datasets` with only an abstract batch: no tfds, no data."""
  datasets_base = lo_compat.load("learned_optimization.tasks.datasets.base")
  abstract = {
    "image": jax.ShapeDtypeStruct((2,) + image_shape, jnp.float32),
    "label": jax.ShapeDtypeStruct((2,), jnp.int32),
  }
  empty = [iter(()) for _ in range(4)]
  return datasets_base.Datasets(*empty, extra_info={"num_classes": 10}, abstract_batch=abstract)


def _layer_shapes(params) -> list[list[tuple[int, ...]]]:
  """Per layer, in creation order: the sorted shapes of its parameters."""
  return [sorted(np.shape(leaf) for leaf in jax.tree.leaves(layer)) for layer in params.values()]


def _flax_params(model, image_shape):
  """The model's parameter shapes for a batch of two images."""
  images = jax.ShapeDtypeStruct((2,) + image_shape, jnp.float32)
  return jax.eval_shape(model.init, jax.random.key(0), images)["params"]


def _sgd_check(model, variables, images, labels):
  """A jitted check(params) -> (loss, logits, grads, mutated collections, loss after a step).

  Train mode, cross-entropy on the fixed batch, one SGD step of 0.01; one
  program, so each model and input shape compiles once.
  """
  state = {k: v for k, v in variables.items() if k != "params"}

  def loss_fn(params):
    logits, updates = model.apply(
      {"params": params, **state}, images, train=True, mutable=list(state)
    )
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return loss, (logits, updates)

  @jax.jit
  def check(params):
    (loss, (logits, updates)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    stepped = jax.tree.map(lambda p, g: p - 0.01 * g, params, grads)
    return loss, logits, grads, updates, loss_fn(stepped)[0]

  return check


def _batch(n: int, shape: tuple[int, ...] = CIFAR) -> tuple[np.ndarray, np.ndarray]:
  """Random images (host numpy, no device compile) and fixed labels 0, 1, ..."""
  images = np.random.default_rng(0).normal(size=(n,) + shape).astype(np.float32)
  return images, np.arange(n, dtype=np.int32) % 10


def _finite(tree) -> bool:
  return all(np.all(np.isfinite(np.asarray(leaf))) for leaf in jax.tree.leaves(tree))


def _equal(a, b) -> bool:
  return jax.tree.all(jax.tree.map(np.array_equal, a, b))


@pytest.mark.parametrize(
  "task_name, image_shape",
  [("ImageMLP_Mnist_128x128x128_Relu", MNIST), ("ImageMLP_Cifar10_128x128x128_Relu", CIFAR)],
)
def test_mlp_param_shapes_equal_learned_optimization_image_mlp(task_name, image_shape):
  image_mlp = lo_compat.load("learned_optimization.tasks.fixed.image_mlp")
  # The named task builds tfds data in __init__; its network is _MLPImageTask's
  # with hidden sizes [128, 128, 128], built here on an abstract batch instead.
  assert "_MLPImageTask(datasets, [128, 128, 128])" in inspect.getsource(
    getattr(image_mlp, task_name)
  )
  lo_task = image_mlp._MLPImageTask(_lo_datasets(image_shape), [128, 128, 128])
  lo_params = jax.eval_shape(lo_task.init, jax.random.key(0))
  assert _layer_shapes(_flax_params(models.mlp(10), image_shape)) == _layer_shapes(lo_params)


def test_conv_param_shapes_equal_learned_optimization_conv_cifar10_32x64x64():
  conv = lo_compat.load("learned_optimization.tasks.fixed.conv")
  # Conv_Cifar10_32x64x64 = _cross_entropy_pool_loss([32, 64, 64], relu, num_classes=10)
  # (strides 2, 1, 1) on tfds CIFAR-10; built here with the max pool on an abstract batch.
  assert "_cross_entropy_pool_loss([32, 64, 64]" in inspect.getsource(conv.Conv_Cifar10_32x64x64)
  loss_fn = conv._cross_entropy_pool_loss([32, 64, 64], jax.nn.relu, pool="max", num_classes=10)
  lo_params = jax.eval_shape(conv._ConvTask(loss_fn, _lo_datasets(CIFAR)).init, jax.random.key(0))
  assert _layer_shapes(_flax_params(models.conv(10), CIFAR)) == _layer_shapes(lo_params)


def test_resnet20_parameter_count_is_about_027m():
  params = _flax_params(models.resnet20(10), CIFAR)
  count = sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(params))
  assert 260_000 <= count <= 280_000, f"ResNet-20 has {count} parameters"


@functools.cache
def _resnet20():
  """ResNet-20's jitted init, its variables for a (2, 32, 32, 3) batch, eval and SGD check."""
  model = models.resnet20(10)
  images, labels = _batch(2)
  init = jax.jit(model.init)
  variables = init(jax.random.key(0), images)
  evaluate = jax.jit(
    lambda variables: model.apply(variables, images, train=False, mutable=["batch_stats"])
  )
  return init, variables, evaluate, _sgd_check(model, variables, images, labels)


def test_resnet20_forward_gives_logits_of_shape_2_by_10():
  _, variables, evaluate, _ = _resnet20()
  logits, _ = evaluate(variables)
  assert logits.shape == (2, 10)


def test_resnet20_batch_stats_update_in_train_mode_and_are_unchanged_in_eval_mode():
  _, variables, evaluate, check = _resnet20()
  stats = variables["batch_stats"]
  trained = check(variables["params"])[3]["batch_stats"]
  # Every mean and variance moved: none equals its initial value.
  assert not any(jax.tree.leaves(jax.tree.map(np.array_equal, stats, trained)))
  _, updates = evaluate(variables)
  assert _equal(updates["batch_stats"], stats)


def test_resnet20_init_is_deterministic_for_a_fixed_key():
  init, variables, _, _ = _resnet20()
  images = np.zeros((2,) + CIFAR, np.float32)
  assert _equal(init(jax.random.key(0), images), variables)
  assert not _equal(init(jax.random.key(1), images), variables)


def test_resnet20_finite_gradients_and_one_sgd_step_lowers_the_loss():
  _, variables, _, check = _resnet20()
  loss, _, grads, _, after = check(variables["params"])
  assert _finite(grads)
  assert float(after) < float(loss)


@pytest.mark.parametrize(
  "name, image_shape",
  [
    ("mlp", MNIST),
    ("mlp", CIFAR),
    ("mlp", DIGITS),
    ("conv", MNIST),
    ("conv", CIFAR),
    ("conv", DIGITS),
  ],
)
def test_output_shape_finite_gradients_and_one_sgd_step_lowers_the_loss(name, image_shape):
  model = getattr(models, name)(10)
  images, labels = _batch(8, image_shape)
  variables = model.init(jax.random.key(0), images)
  loss, logits, grads, _, after = _sgd_check(model, variables, images, labels)(variables["params"])
  assert logits.shape == (8, 10)
  assert _finite(grads)
  assert float(after) < float(loss)


# The convolution with canonical-layout gradients (models.conv_general_dilated)
# against jax.grad of lax.conv_general_dilated, JAX's own transpose rules.
_LAX_CONV = functools.partial(lax.conv_general_dilated, dimension_numbers=("NHWC", "HWIO", "NHWC"))


@pytest.mark.parametrize(
  "x_shape, kernel_shape, strides, padding",
  [
    ((4, 28, 28, 1), (3, 3, 1, 8), (2, 2), "SAME"),  # mnist-conv's first layer
    ((4, 14, 14, 8), (3, 3, 8, 16), (1, 1), "SAME"),
    ((3, 9, 7, 5), (3, 2, 5, 4), (2, 3), "SAME"),  # odd extents, unequal strides
    ((3, 9, 7, 5), (3, 3, 5, 4), (2, 2), "VALID"),
    ((2, 8, 8, 3), (3, 3, 3, 2), (2, 2), ((1, 0), (2, 1))),  # explicit, uneven pads
  ],
)
def test_conv_gives_the_bits_of_autodiff_of_lax_conv_in_a_jitted_step(
  x_shape, kernel_shape, strides, padding
):
  rng = np.random.default_rng(0)
  x = rng.standard_normal(x_shape).astype(np.float32)
  kernel = rng.standard_normal(kernel_shape).astype(np.float32)
  out = _LAX_CONV(x, kernel, strides, padding)
  cotangent = rng.standard_normal(out.shape).astype(np.float32)

  def grads(conv):
    loss = lambda x, w: jnp.sum(conv(x, w, strides, padding) * cotangent)  # noqa: E731
    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(x, kernel)

  got, expected = grads(models.conv_general_dilated), grads(_LAX_CONV)
  assert _equal(got, expected)


def _model_grads(model, variables, images, labels):
  """Loss and gradients of cross-entropy in train mode (BatchNorm on the batch)."""
  state = {k: v for k, v in variables.items() if k != "params"}

  def loss_fn(params):
    logits, _ = model.apply({"params": params, **state}, images, train=True, mutable=list(state))
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

  return jax.value_and_grad(loss_fn)(variables["params"])


_MODELS = [("mlp", MNIST), ("conv", MNIST), ("conv", CIFAR), ("resnet20", CIFAR)]


def _variables(model, images):
  """Random weights (N(0, 0.1)) and BatchNorm statistics (0, 1) of the model's shapes.

  Without model.init, whose compilation costs ResNet-20 half a minute.
  """
  shapes = jax.eval_shape(model.init, jax.random.key(0), images)
  rng = np.random.default_rng(1)
  params = jax.tree.map(
    lambda s: (0.1 * rng.standard_normal(s.shape)).astype(s.dtype), shapes["params"]
  )
  stats = shapes.get("batch_stats", {})
  stats = jax.tree_util.tree_map_with_path(
    lambda path, s: np.full(s.shape, float(path[-1].key == "var"), s.dtype), stats
  )
  return {"params": params, **({"batch_stats": stats} if stats else {})}


def _jitted_grads(model):
  """A freshly traced jitted _model_grads of the model (no cached trace is reused)."""
  return jax.jit(lambda variables, images, labels: _model_grads(model, variables, images, labels))


@functools.cache
def _reference(name, image_shape):
  """The model, its variables, a batch, and jitted autodiff of its lax convolutions."""
  model = getattr(models, name)(10)
  images, labels = _batch(2, image_shape)
  variables = _variables(model, images)
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(models, "conv_general_dilated", lax.conv_general_dilated)
    reference = _jitted_grads(model)(variables, images, labels)
  return model, variables, images, labels, reference


@pytest.mark.parametrize("name, image_shape", _MODELS)
def test_every_model_gives_the_bits_of_autodiff_in_a_jitted_step(name, image_shape):
  model, variables, images, labels, reference = _reference(name, image_shape)
  got = _jitted_grads(model)(variables, images, labels)
  assert _equal(got, reference)


def _scanned_grads(model, variables, images, labels):
  """The loss and gradients computed inside a lax.scan of two trips (a while loop)."""

  def step(carry, _):
    return carry, _model_grads(model, variables, images, labels)

  return jax.jit(lambda: jax.lax.scan(step, 0, length=2))()[1]


@pytest.mark.parametrize("name, image_shape", _MODELS)
def test_every_model_gradients_inside_a_scan_are_autodiffs_to_round_off(name, image_shape):
  # Against autodiff inside the same loop: XLA lays a loop body out apart from
  # the entry computation (jaxlib 0.10.2 moved ResNet-20's BatchNorm gradients
  # by 0.3% there, autodiff and this conv alike).
  model, variables, images, labels, _ = _reference(name, image_shape)
  got = _scanned_grads(model, variables, images, labels)
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(models, "conv_general_dilated", lax.conv_general_dilated)
    expected = _scanned_grads(model, variables, images, labels)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
  "kwargs",
  [
    {"rhs_dilation": (2, 2)},
    {"lhs_dilation": (2, 1)},
    {"feature_group_count": 2},
    {"dimension_numbers": ("NCHW", "OIHW", "NCHW")},
    {"precision": lax.Precision.HIGHEST},
  ],
)
def test_conv_rejects_what_it_does_not_compute(kwargs):
  x, kernel = np.zeros((1, 4, 4, 2), np.float32), np.zeros((3, 3, 2, 2), np.float32)
  if "dimension_numbers" in kwargs:
    kwargs["dimension_numbers"] = lax.conv_dimension_numbers(
      x.shape, kernel.shape, kwargs["dimension_numbers"]
    )
  with pytest.raises(ValueError, match="NHWC/HWIO"):
    models.conv_general_dilated(x, kernel, (1, 1), "SAME", **kwargs)
