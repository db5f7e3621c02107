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

A report (eval.report.build) reads its stores into two pandas frames, once
(`store_frames`): the runs, a row per run that counts, with the columns
`report_frame` documents (the metrics a report selects by, the setting as
canonical JSON, sizes, machine and versions), and the curves it draws in
long form, a row per run x step x unit (`curve_frame`: key, curve, step,
unit, value), as AlgoPerf's scoring/performance_profile.py reads its logs.
Every report operation takes these frames; only this module reads records.
"""

import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from eval.store import configs, machine, samples
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
_RUN_COLUMNS = (
  "key",
  "task",
  "optimizer",
  "family",
  "protocol",
  "steps",
  "batch_size",
  "eval_every",
  "setting",
  "hparams",
  "name",
  "seed",
  "status",
  *REPORT_METRICS,
  "state_bytes",
  "param_bytes",
  "machine",
  "git_commit",
  "code",
  "backend",
  "devices",
  "versions",
)
# The curves a report draws, and the step axis each is recorded on (eval.store.records).
REPORT_CURVES = {
  "test_accuracy": "eval_step",
  "effective_step": "eval_step",
  "law": "step",
  "beta": "step",
}
CURVE_COLUMNS = ("key", "curve", "step", "unit", "value")


class Frames(NamedTuple):
  """The two tables a report is computed from (see `report_frames`)."""

  runs: Any  # pandas DataFrame, one row per run: report_frame's columns
  curves: Any  # pandas DataFrame, long form, one row per run x step x unit: CURVE_COLUMNS


class StoreFrames(NamedTuple):
  """What a report reads from its stores, once: the frames of the records that count, the plan
  with the same protocol labels, and how many records were left out."""

  frames: Frames  # the records that count (eval.store.samples), protocols labelled
  plan: dict  # plan.json entries, their protocols labelled as the frames' (eval.store.configs)
  superseded: int  # records of runs that the latest plan keys otherwise
  duplicates: int  # records repeating a run (setting and seed) another record counts for
  recorded: frozenset  # the key of every record read, counted or not
  mixed_machines: tuple[str, ...]  # cells counted from several machine classes (samples')


def report_frame(records: list[dict]):
  """The runs as a report reads them: a DataFrame, a row per record in the records' order.

  Columns:
    key, task, optimizer, family: the record's (key None for a record not yet
      stored, a bench's own summary);
    protocol: its name, or the label eval.store.configs gave it;
    steps, batch_size, eval_every: the protocol's training fields (batch_size
      None: a learned_optimization task's own batches);
    setting: the hyperparameters as canonical JSON, one value per point of a grid;
    hparams: the same as a dict (object column), for a selected setting and its axes;
    name, seed, status: the results name, the seed, "ok" or "diverged";
    valid_loss, valid_accuracy, test_loss, test_accuracy: the final metrics a
      report selects and reports by (eval.store.records.final_metrics: an EMA
      run's average's), float, NaN where a run has none;
    state_bytes, param_bytes: the optimizer state's and the parameters' sizes,
      None for a record made before sizes were recorded;
    machine: its machine class (eval.store.machine.class_of);
    git_commit, code, backend, devices: its environment's;
    versions: package -> version (object column), the stack that trained it.
  Every column but seed and the metrics has object dtype, so an integer stays
  an integer and None stays None. A report groups it, e.g. the settings of a
  grid: `report_frame(rs).groupby(["task", "optimizer", "protocol", "setting"])`.
  """
  import pandas as pd  # only the report side needs it

  table = [_report_row(r) for r in records]
  frame = pd.DataFrame(table, columns=list(_RUN_COLUMNS), dtype=object)
  return frame.astype({"seed": "int64", **dict.fromkeys(REPORT_METRICS, "float64")})


def _report_row(r: dict) -> dict[str, Any]:
  """One record as a row of report_frame."""
  final = records_lib.final_metrics(r)
  env = r.get("environment") or {}
  sizes = r.get("memory") or {}
  return {
    "key": r.get("key"),
    "task": r["task"],
    "optimizer": r["optimizer"],
    "family": r.get("family"),
    **{name: r["protocol"].get(name) for name in ("protocol", "steps", "batch_size", "eval_every")},
    "setting": store_lib.canonical_json(r["hparams"]),
    "hparams": r["hparams"],
    "name": r.get("name"),
    "seed": r["seed"],
    "status": r["status"],
    **{m: float("nan") if final.get(m) is None else final[m] for m in REPORT_METRICS},
    "state_bytes": sizes.get("state_bytes"),
    "param_bytes": sizes.get("param_bytes"),
    "machine": machine.class_of(r),
    **{name: env.get(name) for name in ("git_commit", "code", "backend", "devices")},
    "versions": env.get("versions") or {},
  }


def curve_frame(records: list[dict]):
  """The curves a report draws (REPORT_CURVES) in long form, a DataFrame of CURVE_COLUMNS.

  One row per run x recorded step x unit: key, curve (its name), step (on the
  curve's axis, REPORT_CURVES), unit (the memory unit or parameter leaf of a
  curve with several values per step, NaN for a scalar curve) and value
  (float64; NaN where the record has None, after a divergence). A run's rows
  keep its steps' order, units fastest, so `value.reshape(steps, units)` gives
  its curve back.
  """
  import numpy as np
  import pandas as pd

  parts = [_curve_part(r, name) for r in records for name in REPORT_CURVES if r["curves"].get(name)]
  columns = {c: [p[c] for p in parts] for c in CURVE_COLUMNS}
  return pd.DataFrame(
    {c: np.concatenate(v) if v else np.array([], float) for c, v in columns.items()},
    columns=list(CURVE_COLUMNS),
  )


def _curve_part(r: dict, name: str) -> dict[str, Any]:
  """One curve of one record as columns of curve_frame."""
  import numpy as np

  curve = r["curves"][name]
  shape = next((np.shape(v) for v in curve if v is not None), ())
  blank = np.full(shape, np.nan)  # an entry after a divergence, None
  values = np.array([blank if v is None else v for v in curve], np.float64).reshape(len(curve), -1)
  steps, units = values.shape
  scalar = shape == ()
  return {
    "key": np.full(values.size, r["key"], object),
    "curve": np.full(values.size, name, object),
    "step": np.repeat(np.asarray(r["curves"][REPORT_CURVES[name]][:steps], np.int64), units),
    "unit": np.full(values.size, np.nan)
    if scalar
    else np.tile(np.arange(units, dtype=float), steps),
    "value": values.reshape(-1),
  }


def labelled_frame(records: list[dict]):
  """report_frame of the records with each protocol named by its configuration's label
  (eval.store.configs: "quick (300 steps)" where one name has two configurations)."""
  return report_frame(configs.relabel(records))


def report_frames(records: list[dict]) -> Frames:
  """The runs and the curves of `records`: the frames every report operation takes."""
  return Frames(report_frame(records), curve_frame(records))


def store_frames(records: list[dict], plan: dict) -> StoreFrames:
  """The frames of a store's records that count (eval.store.samples.count), read once.

  A protocol name with two configurations (other steps, batch size, intervals)
  becomes two labels, over the records and the plan alike (eval.store.configs).
  """
  count = samples.count(records, plan)
  names = configs.labels(
    [r["protocol"] for r in count.counted] + [e["identity"]["protocol"] for e in plan.values()]
  )
  counted = configs.relabel(count.counted, names)
  return StoreFrames(
    report_frames(counted),
    configs.relabel_plan(plan, names),
    len(count.superseded),
    len(count.duplicates),
    frozenset(r["key"] for r in records),
    tuple(samples.mixed_machines(count.counted)),
  )


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
