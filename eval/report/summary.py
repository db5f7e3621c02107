"""The console summary of a bench: one line per (task, optimizer).

  digits-mlp  adam         acc 98.33 ± 0.00 %  loss 0.0332 ± 0.0068  n = 2  lr 0.001
  digits-mlp  M(0.9)+M(0)  acc 97.83 ± 0.71 %  loss 0.0591 ± 0.0031  n = 2  lr 0.3, law lr 0.003

Test accuracy and loss of the selected setting (mean ± sample std over its
seeds; with one seed, the value alone: there is no spread to show), n, and
the selected values of the hyperparameters its grid varies (a task that
reports no accuracy shows "acc n/a") (the others are
fixed, and `rllc store show` or the report has them). The optimizer is named
once, however long its spec. A store with several protocols (or several
configurations of one) gets a heading per protocol.
"""

import math
from collections import defaultdict

from eval.report import selection
from eval.store import configs
from eval.store import records as records_lib
from eval.store import store as store_lib

_SHORT = {"learning_rate": "lr", "law_learning_rate": "law lr", "weight_decay": "wd"}


def _value(value) -> str:
  if isinstance(value, float):
    return f"{value:g}"
  if isinstance(value, list):
    return "[" + ", ".join(_value(v) for v in value) + "]"
  return str(value)


def _mean_std(pair: tuple[float, float], n: int, scale: float, digits: int) -> str:
  mean, std = pair
  return f"{scale * mean:.{digits}f}" + (f" ± {scale * std:.{digits}f}" if n > 1 else "")


def _accuracy(pair: tuple[float, float], n: int) -> str:
  """A test accuracy in percent, or n/a for a task that reports none."""
  return "n/a" if math.isnan(pair[0]) else f"{_mean_std(pair, n, 100, 2)} %"


def varying(records: list[dict]) -> dict[tuple[str, str, str], list[str]]:
  """(task, optimizer, protocol label) -> the hyperparameters whose values differ in its grid."""
  values: dict[tuple, dict[str, set]] = defaultdict(lambda: defaultdict(set))
  for r in configs.relabel(records):
    group = records_lib.group(r)
    for name, value in r["hparams"].items():
      values[group][name].add(store_lib.canonical_json(value))
  return {g: [n for n, seen in axes.items() if len(seen) > 1] for g, axes in values.items()}


def text(selected: list, records: list[dict]) -> str:
  """The summary of `selected` (eval.report.selection.Selected), the grids read from `records`."""
  if not selected:
    return "no selected results: every setting diverged, or there are no records\n"
  axes = varying(records)
  protocols = list(dict.fromkeys(s.protocol for s in selected))
  task_width = max(len(s.task) for s in selected)
  opt_width = max(len(s.optimizer) for s in selected)
  lines = []
  for protocol in protocols:
    if len(protocols) > 1:
      lines.append(f"{'' if not lines else chr(10)}protocol {protocol}:")
    for s in (s for s in selected if s.protocol == protocol):
      names = axes.get((s.task, s.optimizer, s.protocol), [])
      setting = ", ".join(f"{_SHORT.get(n, n)} {_value(s.hparams[n])}" for n in names)
      diverged = f"  ({s.diverged} of {s.runs} runs diverged)" if s.diverged else ""
      lines.append(
        f"{s.task:{task_width}s}  {s.optimizer:{opt_width}s}"
        f"  acc {_accuracy(s.test_accuracy, s.seeds)}"
        f"  loss {_mean_std(s.test_loss, s.seeds, 1, 4)}"
        f"  n = {s.seeds}" + (f"  {setting}" if setting else "") + diverged
      )
  return "\n".join(line.rstrip() for line in lines) + "\n"


def job_line(task: str, optimizer: str, records: list[dict], seconds: float, rule: str) -> str:
  """The line `rllc bench` prints as a job ends: its runs, time and best setting by `rule`."""
  chosen = selection.select(records, rule)
  diverged = sum(r["status"] == "diverged" for r in records)
  head = f"{task} {optimizer}: {len(records)} runs in {seconds:.1f} s"
  if not chosen:
    return f"{head}; every setting diverged"
  best = chosen[0]
  if math.isnan(best.test_accuracy[0]):
    result = f"test loss {_mean_std(best.test_loss, best.seeds, 1, 4)}"
  else:
    result = f"test acc {_mean_std(best.test_accuracy, best.seeds, 100, 2)} %"
  return (
    f"{head}; best {best.name}: {result}"
    f" ({best.seeds} seed{'s' if best.seeds > 1 else ''})"
    + (f", {diverged} diverged" if diverged else "")
  )
