"""Hyperparameter selection over the tidy frame of a store (eval.store.tidy), and the text table.

Within one (task, optimizer, protocol), each setting of the hyperparameters
is scored by the mean over its seeds of a final validation metric, the rule:

  valid_loss      the lowest mean final validation loss wins (the default);
  valid_accuracy  the highest mean final validation accuracy wins.

The RLLC paper states neither its rule nor whether its accuracies are final
(appendix A.5.2), so a protocol names its rule (`select` in TOML) and a
report can show both. A setting is eligible only if every one of its seeds
finished without diverging, so a diverged run can never be selected. The
selected setting's test loss and accuracy are reported as mean and sample
standard deviation (ddof = 1; 0 for one seed) over its seeds, with the
number of seeds. A task that reports no accuracy (tasks.interface) has None
for it in its records: its selected accuracy is NaN, and `valid_accuracy`
selects nothing there. A run that averages its parameters (an optimizer
named NAME+ema(DECAY)) is scored and reported by the average's metrics
(eval.store.records.final_metrics).
"""

import dataclasses
import math

import numpy as np

from eval.store import tidy
from eval.store.rules import DEFAULT_RULE, RULES, Rule
from rllc import catalog


def rule_of(name: str) -> Rule:
  """The Rule of a name; ValueError naming the valid ones."""
  if name not in RULES:
    raise ValueError(f"unknown selection rule {name!r}; valid: {', '.join(RULES)}")
  return RULES[name]


@dataclasses.dataclass(frozen=True)
class Selected:
  """The selected setting of one optimizer on one task."""

  task: str
  optimizer: str  # registry name or canonical spec
  protocol: str
  name: str  # the selected setting's results name, e.g. RLLC[M(0.9)]_lr0.1_law0.01
  hparams: dict
  seeds: int  # seeds of the selected setting
  rule: str  # the selection rule, a key of RULES
  score: float  # its mean final validation metric under the rule (loss, or accuracy in [0, 1])
  test_loss: tuple[float, float]  # mean, std over seeds
  test_accuracy: tuple[float, float]  # NaN for a task without accuracy
  seed_test_loss: tuple[float, ...]  # per seed, in seed order (for significance tests)
  seed_test_accuracy: tuple[float, ...]
  settings: int  # settings in the grid
  eligible: int  # settings whose every seed finished
  diverged: int  # runs of this optimizer on this task that diverged
  runs: int  # runs of this optimizer on this task


def mean_std(values: tuple[float, ...]) -> tuple[float, float]:
  array = np.asarray(values, np.float64)
  return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def without_accuracy(runs) -> frozenset[str]:
  """The tasks that report no accuracy: a run of theirs (a row of the tidy frame,
  eval.store.tidy.report_frame) finished with no final test accuracy."""
  lacking = runs[(runs["status"] == "ok") & runs["test_accuracy"].isna()]
  return frozenset(lacking["task"])


def select(records: list[dict], rule: str = DEFAULT_RULE) -> list[Selected]:
  """`choose` over the records' tidy frame, their protocols labelled (a bench's summary; a
  report builds its frame once and calls `choose`)."""
  return choose(tidy.labelled_frame(records), rule)


def choose(runs, rule: str = DEFAULT_RULE) -> list[Selected]:
  """One Selected per (task, optimizer, protocol) of the tidy frame that has an eligible setting.

  runs: eval.store.tidy.report_frame's rows, protocols labelled: a protocol is a
  whole configuration (name and training fields), so one name with two horizons
  gives two, "quick (300 steps)" (eval.store.configs). The settings are groups
  of the frame, scored in one pass; ties go to the setting seen first.

  Sorted by task, then baselines, adaptive memory, fixed laws, RLLC, then name.
  """
  how = rule_of(rule)
  sign = 1.0 if how.lower_is_better else -1.0
  selected = []
  for (task, optimizer, protocol), grid in runs.groupby(_GRID, sort=False):
    scored = [
      (_score(setting, how.name, sign), setting)
      for _, setting in grid.groupby("setting", sort=False)
    ]
    eligible = [s for s in scored if math.isfinite(s[0])]
    if not eligible:
      continue
    score, chosen = min(eligible, key=lambda s: s[0])
    chosen = chosen.sort_values("seed", kind="stable")
    losses = tuple(float(v) for v in chosen["test_loss"])
    accuracies = tuple(float(v) for v in chosen["test_accuracy"])
    selected.append(
      Selected(
        task=task,
        optimizer=optimizer,
        protocol=protocol,
        name=chosen["name"].iloc[0],
        hparams=chosen["hparams"].iloc[0],
        seeds=len(chosen),
        rule=rule,
        score=float(sign * score),
        test_loss=mean_std(losses),
        test_accuracy=mean_std(accuracies),
        seed_test_loss=losses,
        seed_test_accuracy=accuracies,
        settings=len(scored),
        eligible=len(eligible),
        diverged=int((grid["status"] == "diverged").sum()),
        runs=len(grid),
      )
    )
  rank = catalog.active().family_rank  # the catalog's order of families
  kinds = {
    (t, o): rank(f) for t, o, f in zip(runs["task"], runs["optimizer"], runs["family"], strict=True)
  }
  return sorted(selected, key=lambda s: (s.task, kinds[s.task, s.optimizer], s.optimizer))


_GRID = ["task", "optimizer", "protocol"]


def _score(runs, metric: str, sign: float) -> float:
  """A setting's mean final `metric` over its seeds, signed so lower wins; inf unless every
  seed finished with the metric (a diverged seed, or no value, rules the setting out)."""
  ok = bool((runs["status"] == "ok").all() and runs[metric].notna().all())
  return sign * float(np.mean(runs[metric].to_numpy())) if ok else math.inf


def _percent(mean_std: tuple[float, float]) -> str:
  """An accuracy's mean ± std in percent, or n/a for a task without one."""
  mean, std = mean_std
  return "n/a" if math.isnan(mean) else f"{100 * mean:.2f} ± {100 * std:.2f}"


def table(selected: list[Selected]) -> str:
  """The selected results as a plain-text table, one row per (task, optimizer)."""
  score = "valid acc" if selected and selected[0].rule == "valid_accuracy" else "valid loss"
  header = ("task", "optimizer", "selected setting", score, "test loss", "test acc", "n")
  rows = [header]
  for s in selected:
    rows.append(
      (
        s.task,
        s.optimizer,
        s.name,
        f"{s.score:.4f}",
        f"{s.test_loss[0]:.4f} ± {s.test_loss[1]:.4f}",
        _percent(s.test_accuracy),
        f"{s.seeds}" + (f" ({s.diverged} diverged)" if s.diverged else ""),
      )
    )
  widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
  lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
  lines.insert(1, "  ".join("-" * w for w in widths))
  return "\n".join(line.rstrip() for line in lines) + "\n"
