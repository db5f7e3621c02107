"""`rllc bench --dry-run`: the plan of a bench, its run count and an estimated time.

Nothing trains and nothing is written. It makes the same checks as the bench
(the protocol, the data, the store: writable, its plan readable, no other
configuration of the protocol's name), so a dry run that passes is a bench
that starts, and lists every job with its settings x seeds, what the store
already holds, and the run-steps left to train. Its time and memory grow with
the jobs, not the runs: the seeds are summarized, and the runs' keys are made
(one job at a time) only when the store already holds records to compare.

The time is an estimate from measured rates, per task:
1. this store's log.jsonl, when it has trained jobs of the task (seconds per
   run-step, compilation included, on this machine);
2. else the suite's own measurement on a 2-core CPU (REFERENCE, from the
   README's benches: `rllc bench` on digits-mlp, 88 runs of 1,000 steps in
   2 min 24 s; on mnist-mlp and fmnist-mlp, 176 runs in 7 min 11 s);
3. else none: the dry run says which tasks have no rate yet.
"""

import collections
import dataclasses
import math
import os
from pathlib import Path

from eval.run import bench, progress
from eval.run import protocol as protocol_lib
from eval.store import configs, rules
from eval.store import store as store_lib
from rllc import schedule as schedule_lib

# Seconds per run-step measured by the README's benches on a 2-core CPU (see above).
REFERENCE = {
  "digits-mlp": 144 / 88_000,
  "mnist-mlp": 431 / 176_000,
  "fmnist-mlp": 431 / 176_000,
}


def measured_rates(root: str | os.PathLike) -> dict[str, float]:
  """Seconds per run-step of each task's trained jobs in a store's log (none: {})."""
  store = store_lib.Store(root)
  try:
    log = store.read_log()
  except (OSError, ValueError):
    return {}
  seconds, steps = collections.Counter(), collections.Counter()
  for event in log:
    if event.get("event") != "trained" or not event.get("seconds"):
      continue
    run_steps = event.get("run_steps")
    if run_steps is None and event.get("keys"):  # logs written before run_steps was kept
      record = store.get(event["keys"][0]) if Path(store.records_dir).is_dir() else None
      if record is not None:
        run_steps = event.get("computed", len(event["keys"])) * record["protocol"]["steps"]
    if run_steps:
      seconds[event["task"]] += event["seconds"]
      steps[event["task"]] += run_steps
  return {task: seconds[task] / steps[task] for task in steps}


def text(protocol: protocol_lib.Protocol, out: str, *, data_dir: str | None = None) -> str:
  """The dry run's report; raises what the bench would raise before training."""
  bench.check_data(protocol, data_dir)
  store_lib.check_usable(out)
  fields = protocol.training_fields()
  if Path(out).is_dir():
    configs.check(out, fields)
  records = Path(out) / "records"
  present = {p.stem for p in records.glob("*.json")} if records.is_dir() else set()
  env = store_lib.environment() if present else None
  rates = measured_rates(out) if Path(out).is_dir() else {}
  averaged = any(schedule_lib.split_options(p.name)[1].get("ema") for p in protocol.optimizers)
  seeds = len(protocol.seeds)
  lines = [
    f"dry run (nothing trains, nothing is written): protocol {configs.describe(fields)};"
    f" {protocol_lib.seeds_text(protocol.seeds)}; store {out}",
    f"selection rule, fixed before any run: per task and optimizer, {_rule(protocol.select)}"
    + ("; an optimizer named NAME+ema(DECAY) is scored by its average" if averaged else ""),
  ]
  pairs = [(task, opt) for task in protocol.tasks for opt in protocol.optimizers]
  task_width = max(len(task) for task, _ in pairs)
  opt_width = max(len(opt.name) for _, opt in pairs)
  to_train = collections.Counter()  # task -> run-steps
  total_runs = done_runs = jobs_to_train = 0
  for i, (task, opt) in enumerate(pairs, 1):
    settings = math.prod(len(values) for values in opt.grid.values())
    runs = settings * seeds
    done = _done(protocol, task, opt, env, present) if present else 0
    total_runs += runs
    done_runs += done
    if done < runs:
      jobs_to_train += 1
      to_train[task] += runs * protocol.steps  # a job trains whole
    state = "done" if done == runs else (f"{done} in the store" if done else "to train")
    lines.append(
      f"  job {i}/{len(pairs)}  {task:{task_width}s}  {opt.name:{opt_width}s}"
      f"  {_n(settings, 'setting')} x {_n(seeds, 'seed')} = {_n(runs, 'run')}  ({state})"
    )
  run_steps = sum(to_train.values())
  lines.append(
    f"{_n(len(pairs), 'job')}, {_n(total_runs, 'run')}: {done_runs:,} already in the store,"
    f" {_n(jobs_to_train, 'job')} ({run_steps:,} run-steps) to train"
  )
  lines.append(_estimate(to_train, rates, jobs_to_train))
  return "\n".join(lines) + "\n"


def _rule(name: str) -> str:
  """A selection rule in words (eval.store.rules), as the plan records it."""
  return (
    f"the setting with {rules.RULES[name].says} over seeds ({name}); a setting with a diverged"
    " seed is never selected"
  )


def _done(protocol, task: str, opt, env: dict, present: set[str]) -> int:
  """How many of one job's runs the store holds: its keys, made for this job alone."""
  (job,) = bench.plan(dataclasses.replace(protocol, tasks=(task,), optimizers=(opt,)), env)
  return sum(key in present for key in job.keys)


def _n(count: int, noun: str) -> str:
  return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _estimate(to_train: collections.Counter, rates: dict[str, float], jobs: int) -> str:
  if not to_train:
    return "estimated time: none, everything is in the store"
  seconds, sources, unknown = 0.0, set(), []
  for task, steps in sorted(to_train.items()):
    if task in rates:
      seconds += steps * rates[task]
      sources.add("this store's log")
    elif task in REFERENCE:
      seconds += steps * REFERENCE[task]
      sources.add("the suite's measurement on a 2-core CPU (README)")
    else:
      unknown.append(task)
  if len(unknown) == len(to_train):
    return (
      f"estimated time: unknown, no rate measured yet for {', '.join(unknown)} (a bench into"
      " this store measures it: run one job, then --dry-run again)"
    )
  head = "at least " if unknown else ""
  note = f"; no rate yet for {', '.join(unknown)}" if unknown else ""
  return (
    f"estimated time: {head}~{progress.duration(seconds)} (from {' and '.join(sorted(sources))};"
    f" rough: optimizers differ in cost per step, and each of the {_n(jobs, 'job')} also"
    f" compiles, which a short job does not amortize){note}"
  )
