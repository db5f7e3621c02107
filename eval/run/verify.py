"""`rllc store verify DIR`: reruns a sample of a store's jobs here and compares the numbers.

  rllc store verify runs/quick                 # 1 job, drawn with seed 0
  rllc store verify runs/quick --jobs 3 --seed 7

A record's key names the computation, and its fingerprint the machine that
made it (eval.store.machine). This command says what that is worth on the
machine at hand: it draws jobs (a task and optimizer under one protocol
configuration: every counted record of them, eval.store.samples), trains
each again as the same program (its members in the order they were trained,
log.jsonl's, the recorded chunk size, and the recorded device count on a
CPU), and prints, per job, how many records came back bit for bit and the
largest difference of each final metric and of the curves. It writes
nothing: the store is only read.

Exit status: 0, or 1 when a record made on this machine class, by this code
and stack, did not come back bit for bit (the promise the README makes).
"""

import dataclasses
import math
import os
import random
from collections import defaultdict
from typing import Any

from eval.store import code as code_lib
from eval.store import machine, samples
from eval.store import records as records_lib
from eval.store import store as store_lib

METRICS = records_lib.FINAL_METRICS


@dataclasses.dataclass(frozen=True)
class Sample:
  """One drawn job: its records, in the order they were trained."""

  task: str
  optimizer: str
  protocol: dict[str, Any]  # the records' protocol fields
  records: tuple[dict, ...]


@dataclasses.dataclass
class Check:
  """How one rerun job compares with its records."""

  sample: Sample
  identical: int  # records whose final metrics and curves came back bit for bit
  largest: dict[str, float]  # metric (and "curves") -> largest |difference|
  made_on: list[str]  # the machine classes of its records
  here: str  # this machine's class
  same_code: bool  # this checkout's code and stack made them

  @property
  def broken_promise(self) -> bool:
    """Bits differ although this machine class, code and stack made the records."""
    same_class = self.made_on == [self.here]
    return same_class and self.same_code and self.identical < len(self.sample.records)


def draw(root: str, jobs: int, seed: int) -> list[Sample]:
  """`jobs` jobs of the store drawn with `seed` (all of them if it has fewer)."""
  store = store_lib.Store(root)
  counted = samples.count(store_lib.valid_records(root), store.read_plan()).counted
  groups = defaultdict(list)
  for record in counted:
    fields = store_lib.canonical_json(record["protocol"])
    groups[record["task"], record["optimizer"], fields].append(record)
  order = {}
  for event in store.read_log():
    for i, key in enumerate(event.get("keys", [])):
      order.setdefault(key, i)
  chosen = random.Random(seed).sample(sorted(groups), min(jobs, len(groups)))
  drawn = []
  for task, optimizer, fields in chosen:
    group = groups[task, optimizer, fields]
    trained = sorted(group, key=lambda r: (order.get(r["key"], math.inf), r["key"]))
    drawn.append(Sample(task, optimizer, group[0]["protocol"], tuple(trained)))
  return drawn


def use_devices(chosen: list[Sample]) -> None:
  """Splits the CPU into as many devices as the drawn records were made with (before JAX starts).

  A member's bits depend on the layout, which depends on the device count; a
  count already in XLA_FLAGS wins, as for rllc bench (eval.run.engine.one_device_per_core).
  """
  from eval.run import engine

  found = {
    (r["environment"].get("backend"), r["environment"].get("devices"))
    for s in chosen
    for r in s.records
  }
  flags = os.environ.get("XLA_FLAGS", "")
  if len(found) == 1 and "--xla_force_host_platform_device_count" not in flags:
    backend, devices = found.pop()
    if backend == "cpu" and isinstance(devices, int):
      os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={devices}".strip()
  engine.one_device_per_core()


def _largest(old: dict, new: dict) -> dict[str, float]:
  """The largest |difference| of each final metric and over every curve point (NaN: one is None)."""
  out = {}
  for name in METRICS:
    a, b = old["final"].get(name), new["final"].get(name)
    out[name] = 0.0 if a == b else (abs(a - b) if None not in (a, b) else math.nan)
  diffs = [0.0]
  for name, values in old["curves"].items():
    for a, b in zip(_flat(values), _flat(new["curves"].get(name, [])), strict=False):
      if a != b:
        diffs.append(abs(a - b) if None not in (a, b) else math.nan)
  out["curves"] = max(diffs, key=lambda d: math.inf if math.isnan(d) else d)
  return out


def _flat(values: list) -> list:
  return [v for value in values for v in (value if isinstance(value, list) else [value])]


def rerun(sample: Sample, env: dict[str, Any], data_dir: str | None = None) -> Check:
  """Trains a drawn job again as the program that made it, and compares."""
  from eval.run import bench
  from eval.run import protocol as protocol_lib
  from rllc import catalog

  first = sample.records[0]
  layout = first["environment"].get("layout") or {}
  protocol = protocol_lib.Protocol(
    name=sample.protocol["protocol"],
    tasks=(sample.task,),
    optimizers=(),
    seeds=(),
    steps=sample.protocol["steps"],
    batch_size=sample.protocol["batch_size"] or 128,  # None: a task that keeps its own
    eval_every=sample.protocol["eval_every"],
    log_every=sample.protocol["log_every"],
    max_members=layout.get("max_members"),
  )
  entry = catalog.lookup(sample.optimizer)
  code = code_lib.job_code(sample.task, entry)
  job = bench.Job(
    sample.task,
    sample.optimizer,
    protocol,
    members=tuple((r["hparams"], r["seed"]) for r in sample.records),
    keys=tuple(r["key"] for r in sample.records),
    identities=tuple(records_lib.identity_of(r) for r in sample.records),
    code=code,
    entry=entry,
    hparams=tuple(entry.resolve(r["hparams"]) for r in sample.records),
  )
  fresh = bench.train_job(job, env, data_dir=data_dir)
  largest = dict.fromkeys((*METRICS, "curves"), 0.0)
  identical = 0
  for old, new in zip(sample.records, fresh, strict=True):
    diff = _largest(old, new)
    identical += old["final"] == new["final"] and old["curves"] == new["curves"]
    for name, value in diff.items():
      if math.isnan(value) or value > largest[name]:
        largest[name] = value
  same_code = all(
    r["environment"].get("code") == code["code"]
    and r["environment"].get("versions") == env["versions"]
    for r in sample.records
  )
  return Check(
    sample,
    identical,
    largest,
    sorted({machine.class_of(r) for r in sample.records}),
    machine.fingerprint()["class"],
    same_code,
  )


def line(check: Check) -> str:
  """One job's result, as `rllc store verify` prints it."""
  s = check.sample
  n = len(s.records)
  diffs = ", ".join(f"{name} {value:.3g}" for name, value in check.largest.items())
  code = "" if check.same_code else "; made by other code or stack versions than this checkout's"
  return (
    f"{s.task} {s.optimizer} (protocol {s.protocol['protocol']}, {n} runs, made on"
    f" {', '.join(check.made_on)}{code}): {check.identical} of {n} bit for bit here;"
    f" largest |difference|: {diffs}"
  )
