"""Two stores' records of the same keys, side by side: what a change of machine does to the bits.

  python -m eval.experiments.cross_machine REFERENCE RERUN [--out FILE.md]

REFERENCE and RERUN hold records of the same computations (the same keys:
the same code, stack, layout and identities), made on two machines; for
example a committed part of Table 1 and the same job rerun elsewhere from
the worktree of the commit that made it. Per optimizer it prints how many
records are bit-identical (final metrics and every curve point), the
largest |difference| of the final test loss and accuracy, and, for scale,
the spread over seeds (sample standard deviation of the final test
accuracy, the largest over the job's settings) in the reference.
"""

import argparse
import collections
import statistics
import sys
from pathlib import Path

from eval.store import machine
from eval.store import store as store_lib


def _largest(pairs: list[tuple[dict, dict]], metric: str) -> float:
  diffs = [
    abs(a["final"][metric] - b["final"][metric])
    for a, b in pairs
    if a["final"][metric] is not None and b["final"][metric] is not None
  ]
  return max(diffs, default=0.0)


def _spread(records: list[dict]) -> float:
  """The largest sample std of the final test accuracy over seeds, across settings."""
  by_setting = collections.defaultdict(list)
  for r in records:
    if r["final"]["test_accuracy"] is not None:
      by_setting[store_lib.canonical_json(r["hparams"])].append(r["final"]["test_accuracy"])
  return max((statistics.stdev(v) for v in by_setting.values() if len(v) > 1), default=0.0)


def compare(reference: str, rerun: str) -> list[str]:
  """The comparison as Markdown lines."""
  ref = {r["key"]: r for r in store_lib.valid_records(reference)}
  new = {r["key"]: r for r in store_lib.valid_records(rerun)}
  shared = sorted(set(ref) & set(new))
  if not shared:
    raise store_lib.StoreError(f"{reference} and {rerun} share no key: nothing to compare")
  by_optimizer = collections.defaultdict(list)
  for key in shared:
    by_optimizer[ref[key]["task"], ref[key]["optimizer"]].append((ref[key], new[key]))
  classes = [sorted({machine.class_of(r) for r in records.values()}) for records in (ref, new)]
  lines = [
    f"Reference: {reference} (machine class {', '.join(classes[0])}); rerun: {rerun}"
    f" (machine class {', '.join(classes[1])}); {len(shared)} shared keys.",
    "",
    "| task | optimizer | runs | bit-identical | max abs diff test loss | max abs diff test"
    " acc (points) | max abs diff valid acc (points) | seed std of test acc (points) |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ]
  for (task, optimizer), pairs in sorted(by_optimizer.items()):
    same = sum(a["final"] == b["final"] and a["curves"] == b["curves"] for a, b in pairs)
    lines.append(
      f"| {task} | {optimizer} | {len(pairs)} | {same} of {len(pairs)} |"
      f" {_largest(pairs, 'test_loss'):.3g} | {100 * _largest(pairs, 'test_accuracy'):.2f} |"
      f" {100 * _largest(pairs, 'valid_accuracy'):.2f} |"
      f" {100 * _spread([a for a, _ in pairs]):.2f} |"
    )
  return lines


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("reference", help="the store the records were first made in")
  parser.add_argument("rerun", help="a store of the same keys made on another machine")
  parser.add_argument("--out", help="also write the table to this Markdown file")
  args = parser.parse_args(argv)
  try:
    text = "\n".join(compare(args.reference, args.rerun)) + "\n"
  except store_lib.StoreError as err:
    print(f"cross_machine: {err}", file=sys.stderr)
    return 2
  print(text, end="")
  if args.out:
    store_lib.atomic_write(Path(args.out), text)
  return 0


if __name__ == "__main__":
  sys.exit(main())
