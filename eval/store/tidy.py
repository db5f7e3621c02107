"""The tidy per-run table of a store: one row per record, curves apart.

  rllc store export runs/quick --out runs.csv                  # or runs.parquet
  rllc store export runs/quick --out runs.parquet --curves curves.parquet
  rllc store export runs/part-a runs/part-b --out all.csv      # several stores, one table

  pandas:  pd.read_csv("runs.csv")  or  pd.read_parquet("runs.parquet")
  in Python: tidy.frame(Store("runs/quick").records())   # the same table as a DataFrame

A row is one run (AlgoPerf's and benchopt's tidy tables): the record's key,
task, optimizer, family, protocol and its training fields, one column per
hyperparameter (`hp.learning_rate`, ...; a law as its JSON text), seed, name,
status, diverged step, whether it counts (`counted`: a store can hold two
records of one setting and seed, made in two layouts or by two versions,
and one of them counts, eval.store.samples), the final metrics
(`final.test_accuracy`, ...), the state and parameter bytes, and what tells
records of one seed apart: the code hash, git commit, jax and jaxlib
versions, backend, devices and layout strategy, and the machine class and
CPU (eval.store.machine).
Columns are sorted within each group, so two exports of one store are the
same file. The curves (one value per step) would make a row hold thousands
of values; `--curves FILE` writes them in long form instead: key, curve,
step, value (a law or a quantity with several units gets a `unit` column).

Parquet is written by pyarrow; CSV by the standard library.
"""

import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.store import machine, samples
from eval.store import records as records_lib
from eval.store import store as store_lib

FORMATS = {".csv": "csv", ".parquet": "parquet"}
_HEAD = ("key", "task", "optimizer", "family", "protocol")
_PROTOCOL = ("steps", "batch_size", "eval_every", "log_every")
_TAIL = ("seed", "name", "status", "diverged_step")
_PROVENANCE = (
  "code",
  "git_commit",
  "versions.jax",
  "versions.jaxlib",
  "layout.backend",
  "layout.devices",
  "layout.strategy",
  "machine.class",
  "machine.cpu",
)


def _scalar(value: Any) -> Any:
  """Numbers, strings, booleans and None as they are; anything else as its JSON text."""
  if value is None or isinstance(value, (bool, int, float, str)):
    return value
  return json.dumps(value, sort_keys=True)


def rows(records: list[dict], plan: dict | None = None) -> list[dict[str, Any]]:
  """One flat dict per record, sorted by task, optimizer, protocol, name, seed.

  With the stores' `plan`, a `counted` column says whether the record is the
  one sample of its setting and seed (eval.store.samples).
  """
  counted = None if plan is None else {id(r) for r in samples.count(records, plan).counted}
  out = []
  for r in records:
    row = {
      "key": r["key"],
      "task": r["task"],
      "optimizer": r["optimizer"],
      "family": r.get("family"),
      "protocol": r["protocol"].get("protocol"),
    }
    for name in _PROTOCOL:
      row[f"protocol.{name}"] = r["protocol"].get(name)
    for name, value in sorted(r["hparams"].items()):
      row[f"hp.{name}"] = _scalar(value)
    for name in _TAIL:
      row[name] = r.get(name)
    for name, value in sorted((r.get("final") or {}).items()):
      row[f"final.{name}"] = _scalar(value)
    for name, value in sorted((r.get("memory") or {}).items()):
      row[f"memory.{name}"] = value
    if counted is not None:
      row["counted"] = id(r) in counted
    row.update(_provenance(r.get("environment") or {}))
    out.append(row)
  return sorted(
    out,
    key=lambda row: (
      row["task"],
      row["optimizer"],
      str(row["protocol"]),
      row["name"] or "",
      row["seed"],
      row["key"],
      str(row["machine.class"]),
    ),
  )


def _provenance(env: dict) -> dict[str, Any]:
  """The columns that tell two records of one seed apart: code, versions, layout, machine."""
  layout = env.get("layout") or {}
  fingerprint = env.get("machine") or {}
  versions = env.get("versions") or {}
  return {
    "code": env.get("code"),
    "git_commit": env.get("git_commit"),
    "versions.jax": versions.get("jax"),
    "versions.jaxlib": versions.get("jaxlib"),
    "layout.backend": env.get("backend"),
    "layout.devices": env.get("devices"),
    "layout.strategy": layout.get("strategy"),
    "machine.class": fingerprint.get("class", machine.UNRECORDED),
    "machine.cpu": fingerprint.get("cpu"),
  }


def columns(table: list[dict[str, Any]]) -> list[str]:
  """Every column of the rows, in a fixed order: identity, hyperparameters, outcome."""
  seen = {name for row in table for name in row}

  def group(prefix: str) -> list[str]:
    return sorted(n for n in seen if n.startswith(prefix))

  fixed = [*_HEAD, *(f"protocol.{n}" for n in _PROTOCOL)]
  return [
    *fixed,
    *group("hp."),
    *_TAIL,
    *(["counted"] if "counted" in seen else []),
    *group("final."),
    *group("memory."),
    *_PROVENANCE,
  ]


def curve_rows(records: list[dict]) -> list[dict[str, Any]]:
  """The curves in long form: key, curve, step, unit (None for a scalar curve), value."""
  out = []
  for r in sorted(records, key=lambda r: r["key"]):
    curves = r.get("curves") or {}
    steps = {"eval_step": curves.get("eval_step", []), "step": curves.get("step", [])}
    for name, values in sorted(curves.items()):
      if name in steps:
        continue
      axis = steps["eval_step"] if len(values) == len(steps["eval_step"]) else steps["step"]
      if name.startswith(("valid_", "test_")):
        axis = steps["eval_step"]
      for step, value in zip(axis, values, strict=False):
        if isinstance(value, list):
          for unit, v in enumerate(value):
            out.append({"key": r["key"], "curve": name, "step": step, "unit": unit, "value": v})
        else:
          out.append({"key": r["key"], "curve": name, "step": step, "unit": None, "value": value})
  return out


def frame(records: list[dict]):
  """The tidy table as a pandas DataFrame, a row per run: the report side's view of a store.

  Recompute any table of a report from it, e.g. mean test accuracy per setting:
  `frame(rs).groupby(["task", "name"])["final.test_accuracy"].mean()`.
  """
  import pandas as pd  # only this view needs it

  table = rows(records)
  return pd.DataFrame(table, columns=columns(table))


REPORT_METRICS = ("valid_loss", "valid_accuracy", "test_loss", "test_accuracy")


def report_frame(records: list[dict]):
  """The runs as a report reads them: a DataFrame, a row per record in the records' order.

  Columns: key, task, optimizer, family, protocol (its name, or the label
  eval.store.configs gave it), setting (the hyperparameters as canonical
  JSON: one value per point of a grid), seed, status, and the final metrics
  a report selects and reports by (eval.store.records.final_metrics: an EMA
  run's average's), NaN where a run has none. A report groups it, e.g. the
  settings of a grid: `report_frame(rs).groupby(["task", "optimizer", "protocol", "setting"])`.
  """
  import pandas as pd  # only the report side needs it

  table = []
  for r in records:
    final = records_lib.final_metrics(r)
    row = {
      "key": r.get("key"),  # None for a record not yet stored (a bench's own summary)
      "task": r["task"],
      "optimizer": r["optimizer"],
      "family": r.get("family"),
      "protocol": r["protocol"]["protocol"],
      "setting": store_lib.canonical_json(r["hparams"]),
      "seed": r["seed"],
      "status": r["status"],
    }
    row.update({m: float("nan") if final.get(m) is None else final[m] for m in REPORT_METRICS})
    table.append(row)
  names = ["key", "task", "optimizer", "family", "protocol", "setting", "seed", "status"]
  return pd.DataFrame(table, columns=[*names, *REPORT_METRICS])


def format_of(path: str | os.PathLike) -> str:
  """ "csv" or "parquet" from the file's suffix; ValueError naming the valid ones."""
  suffix = Path(path).suffix.lower()
  if suffix not in FORMATS:
    raise ValueError(
      f"{path}: unknown export format {suffix or '(no suffix)'!r}; give a file ending in"
      f" {' or '.join(FORMATS)}, e.g. --out runs.csv"
    )
  return FORMATS[suffix]


def _csv_bytes(table: list[dict], names: list[str]) -> bytes:
  text = io.StringIO()
  writer = csv.DictWriter(text, fieldnames=names, lineterminator="\n")
  writer.writeheader()
  for row in table:
    writer.writerow({n: "" if row.get(n) is None else row.get(n) for n in names})
  return text.getvalue().encode()


def _parquet_bytes(table: list[dict], names: list[str]) -> bytes:
  import pyarrow as pa
  import pyarrow.parquet as pq

  arrays = {}
  for name in names:
    values = [row.get(name) for row in table]
    kinds = {type(v) for v in values if v is not None}
    if kinds == {int, float}:
      values = [None if v is None else float(v) for v in values]
    elif len(kinds) > 1:  # mixed types: their text, so one column has one type
      values = [None if v is None else str(v) for v in values]
    arrays[name] = pa.array(values)
  sink = pa.BufferOutputStream()
  pq.write_table(pa.table(arrays), sink)
  return sink.getvalue().to_pybytes()


def write(table: list[dict], path: str | os.PathLike, names: list[str] | None = None) -> Path:
  """Writes rows as CSV or Parquet (by the suffix), atomically; returns the path."""
  path = Path(path)
  kind = format_of(path)
  names = names if names is not None else sorted({n for row in table for n in row})
  data = _csv_bytes(table, names) if kind == "csv" else _parquet_bytes(table, names)
  path.parent.mkdir(parents=True, exist_ok=True)
  store_lib.atomic_write(path, data)
  return path


def export(
  stores: Sequence[str | os.PathLike],
  out: str | os.PathLike,
  curves: str | os.PathLike | None = None,
) -> tuple[int, int | None]:
  """Writes the per-run table of one or more stores to `out` (and their curves to `curves`).

  Several stores (the parts of one long experiment) give one table of all
  their records; a record in two stores (same key, so same content) is one row.

  Returns:
    The row counts of the table and of the curves (None without `curves`).

  Raises:
    store_lib.StoreError: no store, no records, a corrupt record, or a bad output path
      (before anything is written).
  """
  unique, plan = {}, {}
  for store_dir in stores:
    for record in store_lib.valid_records(store_dir):
      unique.setdefault((record["key"], record["checksum"]), record)
    plan.update(store_lib.read_plan_checked(store_dir))
  records = list(unique.values())
  for target in (out, *([curves] if curves is not None else [])):
    try:
      format_of(target)
    except ValueError as err:
      raise store_lib.StoreError(str(err)) from None
    problem = store_lib.writable_problem(Path(target).parent if str(Path(target).parent) else ".")
    if problem:
      raise store_lib.StoreError(f"cannot write {target}: {problem}")
  table = rows(records, plan)
  write(table, out, columns(table))
  if curves is None:
    return len(table), None
  long = curve_rows(records)
  write(long, curves, ["key", "curve", "step", "unit", "value"])
  return len(table), len(long)
