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

Every way a run can end shows (`endings_of`): a line says how many of its
runs diverged (a non-finite training loss, parameter or validation loss: the
engine's status), finished with a final metric that is not finite, or
exploded: finished with finite losses, but a final training loss more than
EXPLODED (10) times the start's. The start is the lowest first point of the
training-loss curve (the mean over the first logging window) among the runs
of the same task, seed and protocol at hand: they start from the same
parameters and batches (eval.run.engine), and a run that explodes within the
first window (Adam at lr 1e6) has a first point as large as its last, so its
own curve cannot tell. A run alone is compared with itself. A (task,
optimizer) with no setting whose every seed finished gets a line too.
"""

import math
from collections import Counter, defaultdict

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


EXPLODED = 10.0  # a final training loss above this many times the first: the run exploded
ENDINGS = ("ok", "diverged", "not finite", "exploded")


def endings_of(records: list[dict]) -> list[str]:
  """How each run ended, one of ENDINGS, in the order of `records` (see the module docstring)."""
  start: dict[str, float] = {}
  for r in records:
    first = _first_loss(r)
    if first is not None:
      start[_start_key(r)] = min(first, start.get(_start_key(r), math.inf))
  return [_ending(r, start.get(_start_key(r))) for r in records]


def _start_key(record: dict) -> str:
  """The runs that start alike: task, seed and protocol."""
  return store_lib.canonical_json([record["task"], record["seed"], record["protocol"]])


def _first_loss(record: dict) -> float | None:
  return next((v for v in record["curves"].get("train_loss", []) if v is not None), None)


def _ending(record: dict, start: float | None) -> str:
  if record["status"] != "ok":
    return record["status"]
  final = record["final"]
  if any(final.get(m) is None for m in ("train_loss", "valid_loss", "test_loss")):
    return "not finite"
  if start is not None and start > 0 and final["train_loss"] > EXPLODED * start:
    return "exploded"
  return "ok"


def endings(records: list[dict]) -> dict[tuple[str, str, str], Counter]:
  """(task, optimizer, protocol label) -> how many of its runs ended each way."""
  counts: dict[tuple, Counter] = defaultdict(Counter)
  for r, end in zip(configs.relabel(records), endings_of(records), strict=True):
    counts[records_lib.group(r)][end] += 1
  return counts


def _endings_text(counts: Counter) -> str:
  """ "  (of 4 runs: 1 diverged, 2 exploded)", or "" when every run ended well."""
  bad = [f"{counts[e]} {e}" for e in ENDINGS[1:] if counts[e]]
  runs = sum(counts.values())
  return f"  (of {runs} run{'s' * (runs != 1)}: {', '.join(bad)})" if bad else ""


def text(selected: list, records: list[dict]) -> str:
  """The summary of `selected` (eval.report.selection.Selected), the grids read from `records`."""
  counts = endings(records)
  chosen = {(s.task, s.optimizer, s.protocol): s for s in selected}
  groups = list(chosen) + sorted(set(counts) - set(chosen))
  if not groups:
    return "no records\n"
  axes = varying(records)
  protocols = list(dict.fromkeys(p for _, _, p in groups))
  task_width = max(len(t) for t, _, _ in groups)
  opt_width = max(len(o) for _, o, _ in groups)
  lines = []
  for protocol in protocols:
    if len(protocols) > 1:
      lines.append(f"{'' if not lines else chr(10)}protocol {protocol}:")
    for group in (g for g in groups if g[2] == protocol):
      head, s = f"{group[0]:{task_width}s}  {group[1]:{opt_width}s}", chosen.get(group)
      if s is None:
        lines.append(f"{head}  no setting selected{_endings_text(counts[group])}")
        continue
      names = axes.get(group, [])
      setting = ", ".join(f"{_SHORT.get(n, n)} {_value(s.hparams[n])}" for n in names)
      lines.append(
        f"{head}  acc {_accuracy(s.test_accuracy, s.seeds)}"
        f"  loss {_mean_std(s.test_loss, s.seeds, 1, 4)}"
        f"  n = {s.seeds}" + (f"  {setting}" if setting else "") + _endings_text(counts[group])
      )
  return "\n".join(line.rstrip() for line in lines) + "\n"


def job_line(task: str, optimizer: str, records: list[dict], seconds: float, rule: str) -> str:
  """The line `rllc bench` prints as a job ends: its runs, time and best setting by `rule`."""
  chosen = selection.select(records, rule)
  counts = Counter(endings_of(records))
  bad = ", ".join(f"{counts[e]} {e}" for e in ENDINGS[1:] if counts[e])
  head = f"{task} {optimizer}: {len(records)} runs in {seconds:.1f} s"
  if not chosen:
    return f"{head}; no setting selected" + (f" ({bad})" if bad else "")
  best = chosen[0]
  if math.isnan(best.test_accuracy[0]):
    result = f"test loss {_mean_std(best.test_loss, best.seeds, 1, 4)}"
  else:
    result = f"test acc {_mean_std(best.test_accuracy, best.seeds, 100, 2)} %"
  return (
    f"{head}; best {best.name}: {result}"
    f" ({best.seeds} seed{'s' if best.seeds > 1 else ''})" + (f", {bad}" if bad else "")
  )
