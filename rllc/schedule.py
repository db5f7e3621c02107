"""Learning-rate schedules: the suite's named ones, and learning rates that may be optax schedules.

Every catalog optimizer takes a schedule of its learning rate (c1 for RLLC
and fixed-law memory, eta for adaptive memory, the baselines' lr), named
after the optimizer with "+":

  momentum                    constant (no schedule: the optimizer as it always was)
  momentum+cosine(0.05)       linear warmup over 5% of the steps, then cosine decay to zero
  momentum+cosine             cosine decay to zero from the first step (no warmup)
  momentum+linear(0.05)       linear warmup, then linear decay to zero
  M(0.9)+M(0)+cosine(0.05)    RLLC's c1, the same way (a propagator's units are upper case)
  momentum+ema(0.999)         constant lr, and the EMA of the parameters evaluated too
  adam+cosine(0.05)+ema(0.999)

With peak learning rate eta, T the run's steps, W = floor(w T) warmup steps
of the warmup fraction w, and t = 0, 1, ... the update's count:

  warmup     eta t / W                                         for t < W
  cosine     eta (1 + cos(pi min(t - W, D) / D)) / 2           for t >= W, D = max(T - W, 1)
  linear     eta (1 - min(t - W, D) / D)                       for t >= W

which is optax.warmup_cosine_decay_schedule(0, eta, W, T, 0) and
optax.join_schedules of two linear_schedules (as AlgoPerf's baselines build
theirs, lr 0 at t = 0 when there is warmup), written here with array
operations so that eta and w may be traced values of a vmapped grid.

The options are hyperparameters (OPTIONS), recorded in each run's resolved
hyperparameters only when they differ from the plain optimizer's, so that a
constant learning rate leaves its hyperparameters, results name and record
key as they were: `schedule` ("cosine" or "linear"), `warmup` (w), `total_steps`
(T: a protocol sets it to its steps; in Python, give it) and `ema` (the decay
of the parameters' exponential moving average, which the benchmark engine
evaluates beside the raw iterate; it does not change training).

This module parses and names without importing JAX (the catalog reads it);
`learning_rate` builds the traceable schedule and `learning_rate_np` its
float64 value, for records and tests.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
  import optax

CONSTANT = "constant"
SCHEDULES = (CONSTANT, "cosine", "linear")
SEPARATOR = "+"
# Hyperparameters every catalog optimizer takes beside its own, in record order.
OPTIONS = ("schedule", "warmup", "total_steps", "ema")
_SUFFIX_WORDS = (*SCHEDULES, "ema")
_TERM = re.compile(r"([a-z][a-z_0-9]*)(?:\((.*)\))?$")


class ScheduleError(ValueError):
  """A bad schedule, warmup fraction, EMA decay or step count; the message says what is valid."""


def value_at(learning_rate: optax.ScalarOrSchedule, count):
  """A constant learning rate, or an optax schedule evaluated at the step count."""
  return learning_rate(count) if callable(learning_rate) else learning_rate


def _number(text: str, word: str, name: str) -> float:
  try:
    return float(text)
  except ValueError:
    raise ScheduleError(
      f"{word}({text}) in {name!r} takes a number: e.g. {_example(word)}"
    ) from None


def _example(word: str) -> str:
  return "ema(0.999)" if word == "ema" else f"{word}(0.05), a warmup of 5% of the steps"


def split_options(name: str) -> tuple[str, dict[str, Any]]:
  """ "momentum+cosine(0.05)+ema(0.999)" -> ("momentum", {schedule, warmup, ema}), checked.

  Trailing "+term"s whose word starts in lower case are options (a
  propagator's units, M, Mk, CM, CMk, are upper case).

  Raises:
    ScheduleError: an unknown word (with what is valid), a malformed or
      out-of-range number, or an option given twice.
  """
  base, options = name, {}
  while True:
    head, sep, tail = _split_last(base)
    match = _TERM.match(tail.strip()) if sep else None
    if match is None:
      break
    word, arg = match.groups()
    if word not in _SUFFIX_WORDS:
      raise ScheduleError(
        f"unknown schedule {word!r} in {name!r}; valid: {', '.join(SCHEDULES)} (e.g."
        " 'momentum+cosine(0.05)', the number a warmup fraction) and ema(DECAY)"
      )
    key = "ema" if word == "ema" else "schedule"
    if key in options:
      raise ScheduleError(f"{name!r} names two {'EMAs' if word == 'ema' else 'schedules'}")
    if word == "ema":
      if arg is None:
        raise ScheduleError(f"ema in {name!r} needs its decay: e.g. ema(0.999)")
      options["ema"] = _number(arg, word, name)
    else:
      options["schedule"] = word
      if word != CONSTANT:
        options["warmup"] = 0.0 if arg is None else _number(arg, word, name)
      elif arg is not None:
        raise ScheduleError(f"constant in {name!r} takes no number")
    base = head
  check(options, where=name)
  if options.get("schedule") == CONSTANT:
    del options["schedule"]
  return base, options


def _split_last(text: str) -> tuple[str, str, str]:
  """text split at its last "+" outside brackets: (head, "+", tail), or (text, "", "")."""
  depth = 0
  for i in range(len(text) - 1, -1, -1):
    depth += {")": 1, "(": -1}.get(text[i], 0)
    if text[i] == SEPARATOR and depth == 0:
      return text[:i], SEPARATOR, text[i + 1 :]
  return text, "", ""


def check(options: Mapping[str, Any], *, where: str = "") -> None:
  """Raises ScheduleError for a bad schedule, warmup fraction, total_steps or EMA decay."""
  at = f" in {where!r}" if where else ""
  schedule = options.get("schedule", CONSTANT)
  if not isinstance(schedule, str) or schedule not in SCHEDULES:
    raise ScheduleError(f"schedule {schedule!r}{at}; valid: {', '.join(SCHEDULES)}")
  warmup = options.get("warmup", 0.0)
  if _bad_fraction(warmup, 0.0, closed=True):
    raise ScheduleError(
      f"warmup fraction {warmup!r}{at}: give a fraction of the steps in [0, 1), e.g. cosine(0.05)"
    )
  steps = options.get("total_steps")
  if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps < 1):
    raise ScheduleError(f"total_steps {steps!r}{at}: a positive number of steps")
  if "ema" in options and _bad_fraction(options["ema"], 0.0, closed=False):
    raise ScheduleError(
      f"EMA decay {options['ema']!r}{at}: give a decay in (0, 1), e.g. ema(0.999)"
    )


def _bad_fraction(value, low: float, *, closed: bool) -> bool:
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
    return not hasattr(value, "dtype")  # a traced value of a grid is checked where it is made
  return not (low <= value < 1 if closed else low < value < 1)


def suffix(options: Mapping[str, Any]) -> str:
  """The canonical "+cosine(0.05)+ema(0.999)" of options ("" for the plain optimizer)."""
  text = ""
  schedule = options.get("schedule", CONSTANT)
  if schedule != CONSTANT:
    warmup = options.get("warmup", 0.0)
    text += f"{SEPARATOR}{schedule}" + (f"({_real(warmup)})" if warmup else "")
  if options.get("ema") is not None:
    text += f"{SEPARATOR}ema({_real(options['ema'])})"
  return text


def _real(x) -> str:
  text = repr(float(x))
  return text[:-2] if text.endswith(".0") else text


def is_scheduled(hparams: Mapping[str, Any]) -> bool:
  """Whether resolved hyperparameters name a schedule other than constant."""
  return hparams.get("schedule", CONSTANT) != CONSTANT


def learning_rate(peak, schedule: str, warmup, total_steps: int) -> optax.Schedule:
  """The schedule eta(t) of the module docstring; peak and warmup may be traced values.

  Example:
    >>> lr = learning_rate(0.1, "cosine", 0.1, 100)
    >>> [round(float(lr(t)), 4) for t in (0, 5, 10, 55, 100)]
    [0.0, 0.05, 0.1, 0.05, 0.0]
  """
  import jax.numpy as jnp

  check({"schedule": schedule, "warmup": warmup, "total_steps": total_steps})

  def eta(count):
    return peak * _factor(jnp, jnp.float32, count, schedule, warmup, total_steps)

  return eta


def learning_rate_np(hparams: Mapping[str, Any], count) -> Any:
  """The learning rate at update count(s) `count` of resolved hyperparameters, float64 NumPy."""
  import numpy as np

  peak = np.float64(hparams["learning_rate"])
  if not is_scheduled(hparams):
    return peak * np.ones_like(np.asarray(count, np.float64))
  schedule, warmup, steps = hparams["schedule"], hparams["warmup"], hparams["total_steps"]
  return peak * _factor(np, np.float64, count, schedule, warmup, steps)


def _factor(xp, dtype, count, schedule: str, warmup, total_steps: int):
  """eta(t) / eta in array module xp (jax.numpy or NumPy) and float dtype."""
  t = xp.asarray(count).astype(dtype)
  w = xp.floor(xp.asarray(warmup, dtype) * total_steps)
  span = xp.maximum(total_steps - w, 1)
  progress = xp.clip(t - w, 0, span) / span
  decay = 0.5 * (1 + xp.cos(math.pi * progress)) if schedule == "cosine" else 1 - progress
  rising = t / xp.maximum(w, 1)
  return xp.where(t < w, rising, decay)
