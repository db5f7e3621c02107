"""Train one optimizer on one task, in one compiled program, and evaluate it.

  python -m eval.train TASK OPTIMIZER [--hp NAME=VALUE ...] [--steps N] [--seed S]
  python -m eval.train mnist-mlp adam --hp learning_rate=1e-3 --steps 1000

The steps run as `lax.scan` over a jitted step that draws its batch by index
gather (tasks.image_tasks.DeviceSplits.batch), so there is no Python loop per
step. The loss is passed to the optimizer as optax's `value=`. Prints the
final test loss and accuracy. Bad input (an unknown task or optimizer, a
malformed --hp, missing data) exits with status 2 and a message naming it; a
run whose loss stops being finite exits with status 3, naming the step.
"""

import argparse
import ast
import sys

import jax
import jax.numpy as jnp
import optax

import rllc
from tasks import data as data_lib
from tasks import registry


def train(task, tx, steps: int, seed: int):
  """Trains from the task's initialization; returns (params, model state, train losses)."""
  tx = optax.with_extra_args_support(tx)
  init_key, data_key, step_key = jax.random.split(jax.random.key(seed), 3)
  params, state = task.init_with_state(init_key)

  def step(carry, t):
    params, state, opt_state = carry
    batch = task.splits.batch("train", data_key, t)

    def loss_fn(p):
      loss, new_state = task.loss_with_state(p, state, jax.random.fold_in(step_key, t), batch)
      return loss, new_state

    (loss, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params, value=loss)
    return (optax.apply_updates(params, updates), state, opt_state), loss

  run = jax.jit(lambda carry: jax.lax.scan(step, carry, jax.numpy.arange(steps)))
  (params, state, _), losses = run((params, state, tx.init(params)))
  return params, state, losses


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
    built = rllc.optimizer(args.optimizer, **dict(args.hp))
    task = registry.get_task(args.task, data_dir=args.data_dir)
  except (ValueError, data_lib.DataError) as err:
    print(f"eval.train: {err}", file=sys.stderr)
    return 2
  params, state, losses = train(task, built.tx, args.steps, args.seed)
  bad = ~jnp.isfinite(losses)
  if bool(bad.any()):
    print(
      f"eval.train: {built.name} diverged on {args.task}: the training loss is"
      f" {float(losses[int(jnp.argmax(bad))])} at step {int(jnp.argmax(bad))}; try a smaller"
      " learning rate",
      file=sys.stderr,
    )
    return 3
  loss, accuracy = jax.jit(task.evaluate, static_argnums=2)(params, state, "test")
  print(
    f"{args.task} {built.name} seed {args.seed} steps {args.steps}: final train loss"
    f" {float(losses[-1]):.4f}, test loss {float(loss):.4f}, test accuracy {float(accuracy):.4f}"
  )
  return 0


if __name__ == "__main__":
  sys.exit(main())
