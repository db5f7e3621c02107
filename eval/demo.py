"""The main job until the benchmark engine exists: RLLC against momentum SGD.

Trains RLLC with the propagator M(0.9)+M(0) (an adaptive interpolation of
SGD, heavy ball and Nesterov, appendix A.2 of the RLLC paper) and momentum
SGD on the same ill-conditioned least-squares task, with no download, through
the learned_optimization adapters, and prints both final losses.

  python -m eval.demo [--steps 300] [--dim 100] [--condition 1000] [--seed 0]
"""

import argparse

import jax

import rllc
from tasks import synthetic

# Momentum SGD at lr 0.1 with beta 0.9 moves like SGD at 1.0 on slow
# directions; RLLC's default law makes c1 that same SGD-equivalent rate.
OPTIMIZERS = (
  ("momentum", {"learning_rate": 0.1, "momentum": 0.9}),
  ("M(0.9)+M(0)", {"learning_rate": 1.0, "law_learning_rate": 0.01}),
)


def train(task, opt, steps: int, seed: int) -> list[float]:
  """Full-batch training through the learned_optimization Optimizer API."""
  key = jax.random.key(seed)
  state = opt.init(task.init(key))
  loss_and_grad = jax.jit(jax.value_and_grad(task.loss))
  losses = []
  for _ in range(steps):
    loss, grad = loss_and_grad(opt.get_params(state), key, None)
    state = opt.update(state, grad, loss=loss)
    losses.append(float(loss))
  losses.append(float(task.loss(opt.get_params(state), key, None)))
  return losses


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=300)
  parser.add_argument("--dim", type=int, default=100)
  parser.add_argument("--condition", type=float, default=1000.0)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)

  task = synthetic.QuadraticTask(dim=args.dim, seed=args.seed, condition_number=args.condition)
  print(f"task {task.name}, {args.steps} full-batch steps, seed {args.seed}")
  for name, hparams in OPTIMIZERS:
    opt = rllc.optimizer(name, **hparams).lopt()
    losses = train(task, opt, args.steps, args.seed)
    print(f"{opt.name:40s} initial loss {losses[0]:.4g}  final loss {losses[-1]:.4g}")


if __name__ == "__main__":
  main()
