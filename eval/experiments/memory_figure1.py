"""Figure 1 of the memory paper: how far the memoryless iterations drift from the true trajectory.

The memory paper (../shared/papers/memory_implicitly_modifies_the_loss.md, section 5 and
appendix L) trains an MLP with GELU on the first 10,000 MNIST training images, full batch, with
(a) AdamW and (b) Lion-K with bias correction and the soft sign x / sqrt(x^2 + eps), and plots
the l-infinity distance, at every iteration n, between the true trajectory theta^{(n)} of (1)

  theta^{(n+1)} = theta^{(n)} - h F^{(n)}(theta^{(n)}, ..., theta^{(0)})

and two memoryless iterations started at theta^{(0)}:

  (i)  first order:  theta^{(n+1)} = theta^{(n)} - h F^{(n)}(theta^{(n)}),
  (ii) second order: theta^{(n+1)} = theta^{(n)} - h [F^{(n)}(theta^{(n)}) + M^{(n)}(theta^{(n)})],

M^{(n)} the correction from memory of Theorem 3.2 (eq. (9)). Theorem 3.2 puts (ii) O(h^2) and
(i) O(h) from the truth over floor(T/h) steps: (ii) should stay closer. For AdamW (i) is soft
sign descent with decoupled decay, F^{(n)}(theta) = grad L / sqrt(grad L^2 + eps) + lambda theta.

Settings: h in {1e-4, 3e-4}, "weight decay 1e-3 / h" i.e. lambda = 1e-3 / h in F (the decay
step h lambda theta = 1e-3 theta, as PyTorch's AdamW with weight_decay = 1e-3 / h), eps = 1e-6,
and the optimizers' default decays, which the paper does not restate: AdamW beta1 = 0.9,
beta2 = 0.999, Lion rho1 = 0.9, rho2 = 0.99. The loss is the mean softmax cross-entropy;
the images are normalized like the suite's MNIST task, (pixel / 255 - 0.1307) / 0.3081.

`trajectory` and `memoryless_trajectory` of rllc.analysis.corrections return every iterate, so
the distances are read off their outputs. A rounding floor tells which distances are above
floating-point noise: the true trajectory once more on the same examples in another order
(mathematically the same loss, differently rounded sums), its distance to the first run.

  python -m eval.experiments.memory_figure1 [--steps N] [--hidden W] [--out-dir reports] [--x64]

writes memory_figure1.svg and memory_figure1.md in the output directory.
"""

import argparse
import dataclasses
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from jax.flatten_util import ravel_pytree
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from eval.report import draw
from rllc.analysis import corrections

Array = jax.Array

IMAGES = 10_000  # the paper's "MNIST-10K": the first 10,000 training images
STEP_SIZES = (1e-4, 3e-4)
DECAY_STEP = 1e-3  # h lambda: "weight decay 1e-3 / h"
EPS = 1e-6
FORMS: dict[str, Callable[..., corrections.MomentumForm]] = {
  "adamw": partial(corrections.adamw_form, beta1=0.9, beta2=0.999),
  "lion_k": partial(corrections.lion_k_form, rho1=0.9, rho2=0.99, bias_correction=True),
}
TITLES = {"adamw": "(a) AdamW", "lion_k": "(b) Lion-K (soft sign, bias correction)"}
STEM = "memory_figure1"
TABLE_HEADER = (
  "| optimizer | h | n | (i) first order | (ii) second order | (ii) / (i) | rounding floor |"
)
STYLE = {**draw.STYLE, "legend.fontsize": 7, "svg.hashsalt": STEM}  # the report's, small legend


@dataclasses.dataclass(frozen=True)
class Curves:
  """l-infinity distances to the true trajectory at iterations 0..steps, one configuration.

  Attributes:
    optimizer: a key of FORMS.
    h: the step size.
    first_order: ||theta^{(n)} - theta_(i)^{(n)}||_inf, the memoryless iteration without M.
    second_order: ||theta^{(n)} - theta_(ii)^{(n)}||_inf, with the correction M^{(n)}.
    rounding: ||theta^{(n)} - theta_perm^{(n)}||_inf, the true iteration on permuted examples.
  """

  optimizer: str
  h: float
  first_order: np.ndarray
  second_order: np.ndarray
  rounding: np.ndarray


def mnist_subset(count: int = IMAGES) -> tuple[np.ndarray, np.ndarray]:
  """The first `count` MNIST training images, flattened (count, 784), and their labels."""
  from tasks import data as data_lib

  try:
    mnist = data_lib.load("mnist")
  except data_lib.DataError as err:
    raise SystemExit(
      f"MNIST is not available ({err}).\nImport it once with:\n"
      "  rllc data import mnist --from ../shared/datasets/mnist"
    ) from err
  images, labels = mnist.train  # the train split starts with the original training images
  return images[:count].reshape(count, -1), labels[:count]


def mlp(sizes: Sequence[int], key: Array, dtype=jnp.float32) -> tuple[Array, Callable]:
  """A flat initial parameter vector of an MLP with layer sizes `sizes`, and its unravel.

  PyTorch's nn.Linear initialization: weights and biases ~ U(-1 / sqrt(fan_in), 1 / sqrt(fan_in)).
  """
  params = []
  for fan_in, fan_out, layer_key in zip(
    sizes[:-1], sizes[1:], jax.random.split(key, len(sizes) - 1), strict=True
  ):
    w_key, b_key = jax.random.split(layer_key)
    bound = 1 / np.sqrt(fan_in)
    params.append(
      (
        jax.random.uniform(w_key, (fan_in, fan_out), dtype, -bound, bound),
        jax.random.uniform(b_key, (fan_out,), dtype, -bound, bound),
      )
    )
  return ravel_pytree(params)


def cross_entropy(unravel: Callable, images: Array, labels: Array) -> corrections.Loss:
  """L(theta) = mean_i -log softmax(f_theta(x_i))_{y_i}, f_theta the GELU MLP of `unravel`."""

  def loss(theta: Array) -> Array:
    x = images
    *hidden, (w, b) = unravel(theta)
    for w_hidden, b_hidden in hidden:
      x = jax.nn.gelu(x @ w_hidden + b_hidden, approximate=False)  # PyTorch's nn.GELU
    logits = jax.nn.log_softmax(x @ w + b)
    return -jnp.mean(jnp.take_along_axis(logits, labels[:, None], axis=1))

  return loss


def compare(
  optimizer: str,
  unravel: Callable,
  images: Array,
  labels: Array,
  theta0: Array,
  h: float,
  steps: int,
  seed: int = 0,
  eps: float = EPS,
) -> Curves:
  """The distances of (i), (ii) and the rounding floor to the true trajectory, one (optimizer, h).

  lambda = DECAY_STEP / h, eps the soft sign's; the rounding floor permutes the examples with
  numpy's default_rng(seed).
  """
  form = FORMS[optimizer](eps=eps, lam=DECAY_STEP / h)
  order = np.random.default_rng(seed).permutation(len(labels))

  @jax.jit
  def distances(images, labels, theta0):
    loss = cross_entropy(unravel, images, labels)
    shuffled = cross_entropy(unravel, images[order], labels[order])
    true = corrections.trajectory(form, loss, theta0, h, steps)

    def distance(thetas):
      return jnp.max(jnp.abs(thetas - true), axis=1)

    return (
      distance(corrections.memoryless_trajectory(form, loss, theta0, h, steps, corrected=False)),
      distance(corrections.memoryless_trajectory(form, loss, theta0, h, steps, corrected=True)),
      distance(corrections.trajectory(form, shuffled, theta0, h, steps)),
    )

  first, second, rounding = jax.device_get(distances(images, labels, theta0))
  return Curves(optimizer, h, first, second, rounding)


def run(
  images: np.ndarray,
  labels: np.ndarray,
  hidden: Sequence[int],
  steps: int,
  seed: int = 0,
  eps: float = EPS,
) -> list[Curves]:
  """Curves for every optimizer of FORMS and h of STEP_SIZES, one seeded MLP."""
  dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
  theta0, unravel = mlp(
    [images.shape[1], *hidden, int(labels.max()) + 1], jax.random.key(seed), dtype
  )
  images, labels = jnp.asarray(images, dtype), jnp.asarray(labels, jnp.int32)
  return [
    compare(optimizer, unravel, images, labels, theta0, h, steps, seed, eps)
    for optimizer in FORMS
    for h in STEP_SIZES
  ]


def checkpoints(steps: int) -> list[int]:
  """The iterations of the table: 2 (iteration 1 is the same for all three), about a tenth, a
  quarter, a half, and the last."""
  return sorted({*(min(steps, max(2, steps * k // 20)) for k in (0, 2, 5, 10)), steps})


def summary(curves: Sequence[Curves]) -> str:
  """One paragraph: does (ii) stay closer than (i), and are the distances above rounding?"""
  sentences = []
  for c in curves:
    closer = np.mean(c.second_order[1:] < c.first_order[1:])
    above = np.mean(c.second_order[1:] > 10 * c.rounding[1:])
    sentences.append(
      f"{c.optimizer} h = {c.h:g}: (ii) is closer than (i) at {closer:.0%} of the iterations, "
      f"ending at {c.second_order[-1]:.3g} against {c.first_order[-1]:.3g} "
      f"(ratio {c.second_order[-1] / c.first_order[-1]:.3g}); (ii) is more than 10x the "
      f"rounding floor at {above:.0%} of them"
    )
  always = all(np.all(c.second_order[1:] < c.first_order[1:]) for c in curves)
  verdict = (
    "The second-order memoryless iteration (ii) stays closer to the true trajectory than the "
    "first-order one (i) at every iteration of every configuration, as in the paper's figure 1."
    if always
    else "The second-order memoryless iteration (ii) does NOT stay closer than the first-order "
    "one (i) at every iteration of every configuration."
  )
  return f"{verdict} Per configuration: {'; '.join(sentences)}."


def plot(curves: Sequence[Curves], out_dir: Path) -> Path:
  """memory_figure1.svg: one panel per optimizer, distances against the iteration."""
  path = Path(out_dir) / f"{STEM}.svg"
  with matplotlib.rc_context(STYLE):
    fig = Figure(figsize=(9.6, 3.6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(FORMS), sharey=True)
    for ax, optimizer in zip(np.atleast_1d(axes), FORMS, strict=True):
      for index, c in enumerate(c for c in curves if c.optimizer == optimizer):
        n = np.arange(1, len(c.first_order))
        color = f"C{index}"
        ax.semilogy(n, c.first_order[1:], color=color, ls="--", label=f"(i) first order, h={c.h:g}")
        ax.semilogy(n, c.second_order[1:], color=color, label=f"(ii) second order, h={c.h:g}")
        floor = np.maximum(c.rounding[1:], np.finfo(np.float64).tiny)  # log scale: no zeros
        ax.semilogy(n, floor, color=color, ls=":", lw=0.8, label=f"rounding floor, h={c.h:g}")
      ax.set_title(TITLES[optimizer])
      ax.set_xlabel("iteration n")
      ax.legend()
    np.atleast_1d(axes)[0].set_ylabel("l-inf distance to the true trajectory")
    fig.tight_layout()
    fig.savefig(path, metadata={"Date": None, "Creator": None})
  return path


def write_markdown(curves: Sequence[Curves], command: str, setup: str, out_dir: Path) -> Path:
  """memory_figure1.md: the command, the table of distances, the verdict and the setup."""
  steps = len(curves[0].first_order) - 1
  lines = [
    f"`{command}`",
    "",
    "# Memory paper, figure 1: distance of the memoryless iterations to the true trajectory",
    "",
    f"![figure 1]({STEM}.svg)",
    "",
    "l-infinity distance between the true trajectory and (i) the first-order memoryless "
    "iteration, (ii) the second-order one (with the correction M of Theorem 3.2); the rounding "
    "floor is the true trajectory rerun on the same examples in another order.",
    "",
    TABLE_HEADER,
    "|---|---|---|---|---|---|---|",
  ]
  for c in curves:
    for n in checkpoints(steps):
      lines.append(
        f"| {c.optimizer} | {c.h:g} | {n} | {c.first_order[n]:.3e} | {c.second_order[n]:.3e} "
        f"| {c.second_order[n] / c.first_order[n]:.3g} | {c.rounding[n]:.1e} |"
      )
  lines += ["", summary(curves), "", setup, ""]
  path = Path(out_dir) / f"{STEM}.md"
  path.write_text("\n".join(lines))
  return path


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=1000, help="iterations per trajectory")
  parser.add_argument("--hidden", type=int, default=16, help="width of the one hidden layer")
  parser.add_argument("--out-dir", type=Path, default=Path("reports"))
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--eps", type=float, default=EPS, help="soft sign's eps (paper: 1e-6)")
  parser.add_argument("--x64", action="store_true", help="compute in float64, not float32")
  argv = sys.argv[1:] if argv is None else list(argv)
  args = parser.parse_args(argv)
  command = shlex.join(["python", "-m", "eval.experiments.memory_figure1", *argv])
  images, labels = mnist_subset()
  start = time.perf_counter()
  with jax.enable_x64(args.x64):
    curves = run(images, labels, [args.hidden], args.steps, args.seed, args.eps)
  print(f"computed in {time.perf_counter() - start:.0f} s")
  precision = "float64" if args.x64 else "float32"
  setup = (
    f"Setup and differences from the paper: a 784-{args.hidden}-10 MLP with exact GELU "
    f"(the paper does not give its width or depth), PyTorch's default initialization with seed "
    f"{args.seed}, mean cross-entropy on the first {IMAGES:,} MNIST training images, full batch; "
    f"{args.steps} iterations (the paper's horizon is not stated); {precision}; "
    f"h in {{{', '.join(f'{h:g}' for h in STEP_SIZES)}}}, lambda = {DECAY_STEP:g} / h, "
    f"eps = {args.eps:g} inside the square root; AdamW beta1 = 0.9, beta2 = 0.999 with bias "
    f"correction, Lion-K rho1 = 0.9, rho2 = 0.99 with bias correction (default decays; the paper "
    f"does not restate them for figure 1). Both memoryless iterations use the finite-n "
    f"F^(n) and M^(n), so bias correction enters them as in the true iteration. Theorem 3.2's "
    f"O(h^2) needs h times the Lipschitz constant of F small; the soft sign's slope is "
    f"1 / sqrt(eps) = {args.eps**-0.5:g} at coordinates whose gradient is far below sqrt(eps)."
  )
  args.out_dir.mkdir(parents=True, exist_ok=True)
  markdown = write_markdown(curves, command, setup, args.out_dir)
  for path in (plot(curves, args.out_dir), markdown):
    print(path)


if __name__ == "__main__":
  main()
