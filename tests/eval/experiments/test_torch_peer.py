"""bench_engine's PyTorch peer: the same networks as tasks.models, or a line saying it is absent."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eval.experiments import bench_engine, torch_peer
from tasks import models


def test_without_pytorch_bench_engine_says_so(monkeypatch):
  monkeypatch.setattr(torch_peer, "available", lambda: None)
  assert bench_engine._torch_rows(1e-3, None)[-1] == (
    "PyTorch: not importable here (no dependency of the suite): no peer rows"
  )


def _flax_sizes(model) -> list[int]:
  images = jax.ShapeDtypeStruct((2, 28, 28, 1), jnp.float32)
  params = jax.eval_shape(model.init, jax.random.key(0), images)["params"]
  return sorted(int(np.prod(x.shape)) for x in jax.tree.leaves(params))


def test_the_peer_trains_the_models_networks_and_times_both():
  torch = pytest.importorskip("torch")
  nets = torch_peer._networks(torch)
  for name, model in (("mlp", models.mlp(10)), ("conv", models.conv(10))):
    sizes = sorted(p.numel() for p in nets[name].parameters())
    assert sizes == _flax_sizes(model), name
  out = nets["conv"](torch.zeros(torch_peer.BATCH, 1, 28, 28))
  assert tuple(out.shape) == (torch_peer.BATCH, 10)
  seconds = torch_peer.step_seconds(steps=1, repeats=1)
  assert set(seconds) == {"mlp", "conv"} and all(s > 0 for s in seconds.values())
