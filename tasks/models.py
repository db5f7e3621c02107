"""The RLLC paper's three networks (appendix A.5.1) as flax linen modules.

- `mlp`: flatten, three ReLU hidden layers of 128, a linear output; no
  normalization. Its parameter shapes are those of learned_optimization's
  `ImageMLP_Mnist_128x128x128_Relu` / `ImageMLP_Cifar10_128x128x128_Relu`.
- `conv`: three 3x3 ReLU convolutions of 32, 64, 64 channels (strides 2, 1,
  1, SAME padding), no normalization, a global max pool over space, a linear
  output. Its parameter shapes are those of learned_optimization's
  `Conv_Cifar10_32x64x64` (whose network code also has a max-pool option).
- `resnet20`: the CIFAR ResNet-20 of He et al. (2016), 269,722 parameters.

Every module is called as `model.apply(variables, x, train=...)` with `x` of
shape (N, H, W, C) and returns logits (N, num_classes). Only `resnet20` has
BatchNorm: its running statistics live in the `batch_stats` collection
(momentum 0.9, epsilon 1e-5), are used when `train=False`, and are updated
when `train=True` with `mutable=["batch_stats"]`.

Initializers are flax's defaults (LeCun normal weights, zero biases), except
for ResNet-20's convolutions, which use He normal as in He et al.

Every convolution is `conv_general_dilated` below: lax's convolution with a
custom VJP whose two gradients are NHWC/HWIO convolutions with explicit
transposes. JAX's own transpose rules give the gradients as convolutions in
other layouts (batch and feature dimensions swapped), which XLA:CPU turns
into its fast canonical form only in the entry computation: inside a while
loop (lax.scan, lax.map) they fall back to naive loops, 60-70x slower a step
on mnist-conv (jaxlib 0.12.0.1; openxla/xla's
xla/service/cpu/conv_canonicalization.cc, jax-ml/jax#12868). The gradients
written in the canonical layouts run fast in a loop too, and outside one
they give the same bits as JAX's autodiff (tests/tasks/test_models.py).
"""

import functools
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

_BN_MOMENTUM = 0.9
_BN_EPSILON = 1e-5
_NHWC = ("NHWC", "HWIO", "NHWC")


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv(x: jax.Array, w: jax.Array, strides: tuple, pads: tuple) -> jax.Array:
  """x (N, H, W, C) convolved with w (kh, kw, C, O): (N, Ho, Wo, O)."""
  return lax.conv_general_dilated(x, w, strides, pads, dimension_numbers=_NHWC)


def _conv_fwd(x, w, strides, pads):
  return _conv(x, w, strides, pads), (x, w)


def _conv_bwd(strides, pads, residuals, g):
  """The input's and the kernel's gradients, each one NHWC/HWIO convolution.

  With out_d = (Ho - 1) * s + 1 the output's extent dilated by the stride s
  and (lo, hi) the forward padding of a spatial axis of extent n and kernel
  extent k (the pads of JAX's own transpose rules, lax.convolution):
  - input: g dilated by s, padded (k - lo - 1, n + lo - out_d), convolved
    with the kernel flipped in space, its in and out channels swapped;
  - kernel: x with batch and channels swapped (C, H, W, N) as the input,
    g as (Ho, Wo, N, O) as the kernel dilated by s, padding
    (lo, out_d - n + k - lo - 1): a (C, kh, kw, O) result, transposed to HWIO.
  """
  x, w = residuals
  input_pads, kernel_pads = [], []
  for d in range(2):
    n, k, lo, out = x.shape[1 + d], w.shape[d], pads[d][0], (g.shape[1 + d] - 1) * strides[d] + 1
    input_pads.append((k - lo - 1, n + lo - out))
    kernel_pads.append((lo, out - n + k - lo - 1))
  flipped = jnp.flip(w, (0, 1)).transpose(0, 1, 3, 2)
  dx = lax.conv_general_dilated(
    g, flipped, (1, 1), input_pads, lhs_dilation=strides, dimension_numbers=_NHWC
  )
  dw = lax.conv_general_dilated(
    x.transpose(3, 1, 2, 0),
    g.transpose(1, 2, 0, 3),
    (1, 1),
    kernel_pads,
    rhs_dilation=strides,
    dimension_numbers=_NHWC,
  )
  return dx, dw.transpose(1, 2, 0, 3)


_conv.defvjp(_conv_fwd, _conv_bwd)


def conv_general_dilated(
  lhs: jax.Array,
  rhs: jax.Array,
  window_strides: Sequence[int],
  padding: str | Sequence[tuple[int, int]],
  lhs_dilation: Sequence[int] | None = None,
  rhs_dilation: Sequence[int] | None = None,
  dimension_numbers=None,
  feature_group_count: int = 1,
  precision=None,
) -> jax.Array:
  """lax.conv_general_dilated for 2-D NHWC/HWIO convolutions, gradients in canonical layouts.

  flax's nn.Conv calls it (its `conv_general_dilated` field). Only what the
  models use is supported: NHWC input, HWIO kernel, no dilation, one feature
  group, the default precision; padding "SAME", "VALID" or explicit pairs.

  Raises:
    ValueError: for anything else.
  """
  canonical = lax.conv_dimension_numbers(lhs.shape, rhs.shape, _NHWC)
  if (
    lhs.ndim != 4
    or (dimension_numbers is not None and dimension_numbers != canonical)
    or any(d != 1 for d in (*(lhs_dilation or ()), *(rhs_dilation or ())))
    or feature_group_count != 1
    or precision is not None
  ):
    raise ValueError(
      "models.conv_general_dilated takes 2-D NHWC/HWIO convolutions without dilation,"
      " feature groups or a precision"
    )
  strides = tuple(int(s) for s in window_strides)
  if isinstance(padding, str):
    padding = lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], strides, padding)
  return _conv(lhs, rhs, strides, tuple((int(lo), int(hi)) for lo, hi in padding))


class MLP(nn.Module):
  """A ReLU multilayer perceptron on flattened images."""

  num_classes: int
  hidden: Sequence[int] = (128, 128, 128)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Logits (N, num_classes) for images x (N, ...); `train` is unused."""
    del train
    x = jnp.reshape(x, (x.shape[0], -1))
    for width in self.hidden:
      x = nn.relu(nn.Dense(width)(x))
    return nn.Dense(self.num_classes)(x)


class ConvNet(nn.Module):
  """3x3 ReLU convolutions, a global max pool over space, a linear output."""

  num_classes: int
  channels: Sequence[int] = (32, 64, 64)
  strides: Sequence[int] = (2, 1, 1)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Logits (N, num_classes) for images x (N, H, W, C); `train` is unused."""
    del train
    for width, stride in zip(self.channels, self.strides, strict=True):
      layer = nn.Conv(
        width,
        (3, 3),
        strides=(stride, stride),
        padding="SAME",
        conv_general_dilated=conv_general_dilated,
      )
      x = nn.relu(layer(x))
    x = jnp.max(x, axis=(1, 2))
    return nn.Dense(self.num_classes)(x)


def _conv3x3(features: int, stride: int = 1) -> nn.Conv:
  """A bias-free 3x3 SAME convolution with He normal initialization."""
  return nn.Conv(
    features,
    (3, 3),
    strides=(stride, stride),
    padding="SAME",
    use_bias=False,
    kernel_init=nn.initializers.he_normal(),
    conv_general_dilated=conv_general_dilated,
  )


def _batch_norm(train: bool) -> nn.BatchNorm:
  """BatchNorm on batch statistics in training, running statistics otherwise."""
  return nn.BatchNorm(use_running_average=not train, momentum=_BN_MOMENTUM, epsilon=_BN_EPSILON)


class BasicBlock(nn.Module):
  """conv3x3-BN-ReLU-conv3x3-BN, plus the option A shortcut, then ReLU.

  The shortcut (He et al. 2016, option A, as for their CIFAR networks) has no
  parameters: when the block changes shape it subsamples space with the
  block's stride and zero-pads the new channels, half before and half after
  the existing ones.
  """

  features: int
  stride: int = 1

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """The block's output for x (N, H, W, C_in): (N, H / stride, W / stride, features)."""
    y = nn.relu(_batch_norm(train)(_conv3x3(self.features, self.stride)(x)))
    y = _batch_norm(train)(_conv3x3(self.features)(y))
    shortcut = x[:, :: self.stride, :: self.stride, :]
    extra = self.features - x.shape[-1]
    if extra:
      shortcut = jnp.pad(shortcut, ((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)))
    return nn.relu(y + shortcut)


class ResNet20(nn.Module):
  """ResNet-20 for 32x32 images: a 16-channel stem, 3 stages of 3 basic blocks."""

  num_classes: int = 10
  stage_features: Sequence[int] = (16, 32, 64)
  blocks_per_stage: int = 3

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Logits (N, num_classes) for images x (N, H, W, C)."""
    x = nn.relu(_batch_norm(train)(_conv3x3(self.stage_features[0])(x)))
    for stage, features in enumerate(self.stage_features):
      for block in range(self.blocks_per_stage):
        stride = 2 if stage > 0 and block == 0 else 1
        x = BasicBlock(features, stride)(x, train)
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes)(x)


def mlp(num_classes: int, hidden: Sequence[int] = (128, 128, 128)) -> nn.Module:
  """The paper's dense network: flatten, ReLU hidden layers, a linear output.

  Args:
    num_classes: number of logits.
    hidden: widths of the hidden layers.

  Returns:
    The flax module.
  """
  return MLP(num_classes, tuple(hidden))


def conv(
  num_classes: int, channels: Sequence[int] = (32, 64, 64), strides: Sequence[int] = (2, 1, 1)
) -> nn.Module:
  """The paper's convolutional network: 3x3 ReLU convolutions, max pool, linear.

  Args:
    num_classes: number of logits.
    channels: output channels of each convolution.
    strides: stride of each convolution, one per entry of `channels`.

  Returns:
    The flax module.
  """
  return ConvNet(num_classes, tuple(channels), tuple(strides))


def resnet20(num_classes: int = 10) -> nn.Module:
  """The CIFAR ResNet-20 (option A shortcuts, 269,722 parameters for 10 classes).

  Args:
    num_classes: number of logits.

  Returns:
    The flax module; its BatchNorm statistics are the `batch_stats` collection.
  """
  return ResNet20(num_classes)
