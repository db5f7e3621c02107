"""eval.experiments.memory_figure1 on a tiny seeded problem: distances, files, MNIST subset."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eval.experiments import memory_figure1 as figure1
from rllc.analysis import corrections

STEPS = 30
H = figure1.STEP_SIZES[-1]  # one step size keeps the compilations, and the test, short
RNG = np.random.default_rng(0)
IMAGES = jnp.asarray(RNG.normal(size=(64, 10)), jnp.float32)  # a 10-8-3 MLP on 64 random points
LABELS = jnp.asarray(RNG.integers(0, 3, size=64), jnp.int32)


@pytest.fixture(scope="module")
def curves():
  theta0, unravel = figure1.mlp([10, 8, 3], jax.random.key(0))
  return (
    theta0,
    unravel,
    [
      figure1.compare(optimizer, unravel, IMAGES, LABELS, theta0, H, STEPS)
      for optimizer in figure1.FORMS
    ],
  )


def test_distances_match_the_trajectories(curves):
  theta0, unravel, results = curves
  loss = figure1.cross_entropy(unravel, IMAGES, LABELS)
  for c in results:
    form = figure1.FORMS[c.optimizer](eps=figure1.EPS, lam=figure1.DECAY_STEP / c.h)

    @jax.jit
    def ends(theta0, form=form, h=c.h):
      return [
        corrections.trajectory(form, loss, theta0, h, STEPS)[-1],
        *(
          corrections.memoryless_trajectory(form, loss, theta0, h, STEPS, corrected=corrected)[-1]
          for corrected in (False, True)
        ),
      ]

    true, first, second = ends(theta0)
    for end, distances in ((first, c.first_order), (second, c.second_order)):
      assert distances.shape == (STEPS + 1,)
      assert distances[0] == 0
      np.testing.assert_allclose(distances[-1], jnp.max(jnp.abs(end - true)), rtol=1e-3)


def test_second_order_stays_closer(curves):
  for c in curves[2]:
    assert np.all(c.second_order[1:] <= c.first_order[1:]), (c.optimizer, c.h)
    assert c.second_order[-1] < 0.5 * c.first_order[-1], (c.optimizer, c.h)
    assert np.all(c.rounding < 1e-2 * c.second_order[-1]), (c.optimizer, c.h)


def test_outputs(curves, tmp_path):
  results = curves[2]
  svg = figure1.plot(results, tmp_path)
  command = "python -m eval.experiments.memory_figure1"
  markdown = figure1.write_markdown(results, command, "setup", tmp_path)
  assert svg == tmp_path / "memory_figure1.svg" and svg.stat().st_size > 0
  assert sorted(p.name for p in tmp_path.iterdir()) == ["memory_figure1.md", "memory_figure1.svg"]
  text = markdown.read_text()
  assert text.splitlines()[0] == f"`{command}`"
  assert "![figure 1](memory_figure1.svg)" in text
  assert figure1.TABLE_HEADER in text
  rows = [line for line in text.splitlines() if line.startswith("| adamw") or "| lion_k" in line]
  assert len(rows) == len(results) * len(figure1.checkpoints(STEPS))
  first = svg.read_bytes()
  figure1.plot(results, tmp_path)
  assert svg.read_bytes() == first  # deterministic SVG


def test_mnist_subset():
  from tasks import data as data_lib

  try:
    data_lib.load("mnist")
  except data_lib.DataError as err:
    pytest.skip(f"MNIST not cached (rllc data import mnist --from ../shared/datasets/mnist): {err}")
  images, labels = figure1.mnist_subset(100)
  assert images.shape == (100, 784) and labels.shape == (100,)
  assert abs(float(images.mean())) < 0.5
