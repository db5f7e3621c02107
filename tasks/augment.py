"""The ResNet-20 training augmentation of the RLLC paper (appendix A.5.3), on device.

The paper names a random resized crop with zoom scale 0.8-1.2, a horizontal
flip and a random rotation. Here the three are one affine transform per
image, applied with bilinear sampling, in pure JAX (jittable, vmapped over
the batch, deterministic for a PRNG key):

- zoom z ~ U(0.8, 1.2): the output shows a window of (H / z, W / z) input
  pixels, so z > 1 enlarges (crops), z < 1 shrinks;
- the window's centre is shifted uniformly within +-|H - H / z| / 2 rows and
  +-|W - W / z| / 2 columns: a crop (z > 1) stays inside the image, a shrunken
  image (z < 1) stays inside the output;
- rotation by an angle ~ U(-10, 10) degrees about the centre (the paper says
  only "random rotation"; 10 degrees is our choice of a small one);
- horizontal flip with probability 0.5.

Output pixels that sample outside the input are filled with 0, the mean of
the normalized images (bilinear weights fall off to 0 at the border).
"""

import math

import jax
import jax.numpy as jnp

ZOOM_RANGE = (0.8, 1.2)
MAX_ANGLE_DEGREES = 10.0
FLIP_PROBABILITY = 0.5


def affine_matrix(
  zoom: jax.Array | float,
  angle: jax.Array | float,
  flip: jax.Array | bool,
  shift: jax.Array | tuple[float, float] = (0.0, 0.0),
) -> jax.Array:
  """The 3x3 sampling matrix of one augmentation, in centred (row, col) pixel units.

  It maps an output pixel's homogeneous position (row, col, 1), measured from
  the image centre, to the input position it samples.

  Args:
    zoom: magnification; > 1 enlarges the content.
    angle: rotation about the centre, in radians; positive turns the content
      clockwise as displayed (row 0 at the top).
    flip: whether to mirror left-right.
    shift: (rows, cols) offset of the sampled window's centre in the input.

  Returns:
    (3, 3) float32 matrix.
  """
  cos, sin = jnp.cos(angle), jnp.sin(angle)
  rotate = jnp.array([[cos, -sin], [sin, cos]], jnp.float32)
  mirror = jnp.diag(jnp.array([1.0, jnp.where(flip, -1.0, 1.0)], jnp.float32))
  linear = rotate @ mirror / zoom
  offset = jnp.asarray(shift, jnp.float32)
  return jnp.block([[linear, offset[:, None]], [jnp.array([[0.0, 0.0, 1.0]], jnp.float32)]])


def warp(image: jax.Array, matrix: jax.Array) -> jax.Array:
  """Bilinearly resamples one image (H, W, C) through a sampling matrix.

  Args:
    image: (H, W, C) array.
    matrix: (3, 3) matrix from `affine_matrix`.

  Returns:
    (H, W, C) array; positions outside the input read as 0.
  """
  height, width = image.shape[:2]
  centre = jnp.array([(height - 1) / 2, (width - 1) / 2], jnp.float32)
  rows, cols = jnp.meshgrid(
    jnp.arange(height, dtype=jnp.float32), jnp.arange(width, dtype=jnp.float32), indexing="ij"
  )
  out = jnp.stack([rows, cols]) - centre[:, None, None]
  source = jnp.einsum("ij,jhw->ihw", matrix[:2, :2], out)
  source = source + (matrix[:2, 2] + centre)[:, None, None]

  def sample(channel: jax.Array) -> jax.Array:
    return jax.scipy.ndimage.map_coordinates(channel, list(source), order=1, mode="constant")

  return jax.vmap(sample, in_axes=-1, out_axes=-1)(image)


def augment(key: jax.Array, images: jax.Array) -> jax.Array:
  """A random zoom-crop, rotation and flip of every image, independently.

  Args:
    key: PRNG key; the same key gives the same output.
    images: (N, H, W, C) float32 normalized images.

  Returns:
    (N, H, W, C) augmented images, same dtype.
  """
  n, height, width = images.shape[:3]
  zoom_key, shift_key, angle_key, flip_key = jax.random.split(key, 4)
  zoom = jax.random.uniform(zoom_key, (n,), minval=ZOOM_RANGE[0], maxval=ZOOM_RANGE[1])
  size = jnp.array([height, width], jnp.float32)
  slack = jnp.abs(size - size / zoom[:, None])
  shift = jax.random.uniform(shift_key, (n, 2), minval=-0.5, maxval=0.5) * slack
  max_angle = math.radians(MAX_ANGLE_DEGREES)
  angle = jax.random.uniform(angle_key, (n,), minval=-max_angle, maxval=max_angle)
  flip = jax.random.bernoulli(flip_key, FLIP_PROBABILITY, (n,))
  matrices = jax.vmap(affine_matrix)(zoom, angle, flip, shift)
  return jax.vmap(warp)(images, matrices).astype(images.dtype)
