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
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

_BN_MOMENTUM = 0.9
_BN_EPSILON = 1e-5


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
      x = nn.relu(nn.Conv(width, (3, 3), strides=(stride, stride), padding="SAME")(x))
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
