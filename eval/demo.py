"""The main job until the benchmark engine exists: RLLC against momentum SGD on real data.

Trains RLLC with the propagator M(0.9)+M(0) (an adaptive interpolation of
SGD, heavy ball and Nesterov, appendix A.2 of the RLLC paper) and momentum
SGD on `digits-mlp` (scikit-learn's 8x8 digits, which ship with it: no
download), each as one compiled program, and prints both final test losses
and accuracies.

  python -m eval.demo [--task digits-mlp] [--steps 500] [--seed 0]
"""

import argparse
import sys

import jax

import rllc
from eval import train as train_lib
from tasks import data as data_lib
from tasks import registry

# Momentum SGD at lr 0.01 with beta 0.9 moves like SGD at 0.1 on slow
# directions; RLLC's default law makes c1 that same SGD-equivalent rate.
OPTIMIZERS = (
  ("momentum", {"learning_rate": 0.01, "momentum": 0.9}),
  ("M(0.9)+M(0)", {"learning_rate": 0.1, "law_learning_rate": 0.01}),
)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--task", default="digits-mlp", choices=list(registry.TASKS))
  parser.add_argument("--steps", type=int, default=500)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  try:
    task = registry.get_task(args.task)
  except data_lib.DataError as err:
    print(f"eval.demo: {err}", file=sys.stderr)
    return 1
  print(f"task {args.task}, {args.steps} steps of batch {task.splits.batch_size}, seed {args.seed}")
  for name, hparams in OPTIMIZERS:
    built = rllc.optimizer(name, **hparams)
    params, state, _ = train_lib.train(task, built.tx, args.steps, args.seed)
    loss, accuracy = jax.jit(task.evaluate, static_argnums=2)(params, state, "test")
    print(f"{built.name:40s} test loss {float(loss):.4f}  test accuracy {float(accuracy):.4f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
