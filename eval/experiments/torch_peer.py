"""The peer a CPU user would pick: the same MLP and conv net step in PyTorch, timed in-process.

bench_engine prints these rows beside its own when PyTorch is importable, and
says so when it is not (it is no dependency of the suite). The networks are
tasks.models' mlp and conv at batch 128 on random MNIST-shaped data (28x28x1,
10 classes): an MLP 784-128-128-128-10, and 3x3 ReLU convolutions of 32, 64,
64 channels (strides 2, 1, 1; padding 1, which gives SAME's output shapes), a
global max pool and a linear layer. One step: forward, cross-entropy,
backward, SGD with momentum 0.9, eager, on as many threads as the CPUs
XLA:CPU uses (os.sched_getaffinity).
"""

import os
import statistics
import time

BATCH = 128


def available() -> str | None:
  """PyTorch's version when it imports, else None."""
  try:
    import torch
  except ImportError:
    return None
  return torch.__version__


def _networks(torch):
  nn = torch.nn
  mlp = nn.Sequential(
    nn.Flatten(),
    *(m for i, o in ((784, 128), (128, 128), (128, 128)) for m in (nn.Linear(i, o), nn.ReLU())),
    nn.Linear(128, 10),
  )
  layers = []
  for i, o, s in ((1, 32, 2), (32, 64, 1), (64, 64, 1)):
    layers += [nn.Conv2d(i, o, 3, stride=s, padding=1), nn.ReLU()]
  conv = nn.Sequential(*layers, nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(64, 10))
  return {"mlp": mlp, "conv": conv}


def step_seconds(steps: int = 5, repeats: int = 3) -> dict[str, float]:
  """Median seconds of one training step of each network ("mlp", "conv")."""
  import torch

  torch.set_num_threads(len(os.sched_getaffinity(0)))
  torch.manual_seed(0)
  images = torch.randn(BATCH, 1, 28, 28)
  labels = torch.randint(0, 10, (BATCH,))
  result = {}
  for name, net in _networks(torch).items():
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

    def step(net=net, opt=opt):
      opt.zero_grad(set_to_none=True)
      torch.nn.functional.cross_entropy(net(images), labels).backward()
      opt.step()

    step()  # warm-up
    times = []
    for _ in range(repeats):
      start = time.perf_counter()
      for _ in range(steps):
        step()
      times.append((time.perf_counter() - start) / steps)
    result[name] = statistics.median(times)
  return result
