"""Train one optimizer on one task, in one compiled program, and evaluate it.

  python -m eval.run.train TASK OPTIMIZER [--hp NAME=VALUE ...] [--steps N] [--seed S]
  python -m eval.run.train mnist-mlp adam --hp learning_rate=1e-3 --steps 1000

One run through the benchmark engine (eval.run.engine: the steps as `lax.scan`,
batches drawn by index gather, the loss passed to the optimizer as optax's
`value=`), without a store: for trying a setting by hand. Prints the final
training loss and test loss and accuracy. Bad input (an unknown task or
optimizer, a malformed --hp, missing data) exits with status 2 and a message
naming it; a run whose loss stops being finite exits with status 3, naming
the step.
"""

import argparse
import ast
import sys

from eval.run import engine
from rllc import catalog
from tasks import data as data_lib
from tasks import registry


def _hparam(text: str) -> tuple[str, object]:
  name, sep, value = text.partition("=")
  if not sep or not name:
    raise argparse.ArgumentTypeError(f"--hp takes NAME=VALUE, got {text!r}")
  try:
    return name, ast.literal_eval(value)
  except (ValueError, SyntaxError):
    raise argparse.ArgumentTypeError(f"--hp {name}: {value!r} is not a number or tuple") from None


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("task", help=f"one of {', '.join(registry.TASKS)}")
  parser.add_argument("optimizer", help="a registry name or a propagator spec")
  parser.add_argument("--hp", type=_hparam, action="append", default=[], metavar="NAME=VALUE")
  parser.add_argument("--steps", type=int, default=1000)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--data-dir", help="where data files not yet imported may be")
  args = parser.parse_args(argv)
  try:
    if args.task not in registry.TASKS:
      raise ValueError(f"unknown task {args.task!r}; valid: {', '.join(registry.TASKS)}")
    task = registry.get_task(args.task, data_dir=args.data_dir)
    schedule = engine.Schedule(args.steps, args.steps, max(1, args.steps // 10))
    entry = catalog.lookup(args.optimizer)
    run = engine.train_grid(task, entry, [(dict(args.hp), args.seed)], schedule)
  except (ValueError, data_lib.DataError) as err:
    print(f"eval.run.train: {err}", file=sys.stderr)
    return 2
  member = run.members[0]
  if member["status"] == "diverged":
    print(
      f"eval.run.train: {member['name']} diverged on {args.task}: the training loss is not finite"
      f" at step {member['diverged_step']}; try a smaller learning rate",
      file=sys.stderr,
    )
    return 3
  final = member["final"]
  print(
    f"{args.task} {member['name']} seed {args.seed} steps {args.steps}: final train loss"
    f" {final['train_loss']:.4f}, test loss {final['test_loss']:.4f},"
    f" test accuracy {final['test_accuracy']:.4f}"
  )
  return 0


if __name__ == "__main__":
  sys.exit(main())
