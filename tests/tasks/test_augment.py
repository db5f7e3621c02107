"""The on-device ResNet-20 augmentation: determinism, the affine helpers, jit.

Every call goes through one jitted function per helper and one input shape,
so the file compiles each helper once.
"""

import jax
import numpy as np

from tasks import augment as augment_lib

_augment = jax.jit(augment_lib.augment)
_matrix = jax.jit(augment_lib.affine_matrix)
_warp = jax.jit(augment_lib.warp)
SHAPE = (32, 32, 3)


def _images(n: int = 128) -> np.ndarray:
  return np.random.default_rng(0).normal(size=(n,) + SHAPE).astype(np.float32)


def test_augment_keeps_shape_and_dtype():
  images = _images()
  out = _augment(jax.random.key(1), images)
  assert out.shape == images.shape and out.dtype == images.dtype


def test_same_key_gives_identical_output_and_different_key_a_different_one():
  images = _images()
  first = _augment(jax.random.key(1), images)
  np.testing.assert_array_equal(first, _augment(jax.random.key(1), images))
  assert not np.allclose(first, _augment(jax.random.key(2), images))


def test_warp_with_the_identity_matrix_returns_the_image():
  image = _images(1)[0]
  identity = _matrix(1.0, 0.0, False)
  np.testing.assert_array_equal(identity, np.eye(3))
  np.testing.assert_allclose(_warp(image, identity), image, atol=1e-6)


def test_flip_matrix_mirrors_an_asymmetric_image():
  image = np.zeros(SHAPE, np.float32)
  image[2:9, 0:5, 0] = 1.0
  image[20, 3, 1] = 2.0
  image[5, 30, 2] = -1.0
  flipped = _warp(image, _matrix(1.0, 0.0, True))
  np.testing.assert_allclose(flipped, image[:, ::-1, :], atol=1e-6)


def test_zoom_above_one_enlarges_a_centred_square():
  image = np.zeros(SHAPE, np.float32)
  image[12:20, 12:20, :] = 1.0
  zoomed = _warp(image, _matrix(1.2, 0.0, False))
  assert np.sum(zoomed > 0.5) > np.sum(image > 0.5)


def test_augment_runs_under_jit_on_a_batch_of_128_cifar_images():
  images = _images(128)
  out = _augment(jax.random.key(3), images)
  assert out.shape == images.shape
  assert np.all(np.isfinite(out))
  assert not np.allclose(out, images)
