"""A run record: the typed form of what the store keeps for one trained run.

  record = records.build(identity, key=..., family=..., member=..., memory=..., environment=...)
  records.protocol_name(record)        # "quick", "paper" or a TOML protocol's name
  records.group(record)                # (task, optimizer, protocol name): one report cell

A record is JSON on disk (eval.store.store) and a `RunRecord` in memory: a
TypedDict, so it reads as the dict it is stored as, with its fields named and
typed in one place. It is built in one place, `build` (the run side calls it
once per trained member), and checked in one place, `check` (the store calls
it on every read). Its fields:

  identity     task, optimizer, hparams, seed, protocol: what the run is
               (`IDENTITY`; with the code hash and stack versions, its key)
  outcome      name (the optimizer's results name), status ("ok" or
               "diverged"), diverged_step, final metrics, curves (with the
               effective step at each evaluation, and for an EMA run the
               average's metrics beside the raw iterate's, prefixed "ema_")
  cost         memory: parameter and optimizer-state bytes
  provenance   environment: code hash (and its parts), versions, backend,
               devices, layout, the machine's fingerprint (eval.store.machine),
               git commit; family (the catalog's, at training time)

`schema` is the record format's version. Records written before the field
existed have version 1's fields and read as version 1; a record of a newer
version than this code knows is refused rather than misread.
"""

from typing import Any, TypedDict

SCHEMA_VERSION = 1

# What a run is; a record's key adds the code and stack versions that ran it.
IDENTITY = ("task", "optimizer", "hparams", "seed", "protocol")
STATUSES = ("ok", "diverged")
FINAL_METRICS = (
  "train_loss",
  "valid_loss",
  "valid_accuracy",
  "test_loss",
  "test_accuracy",
)


class Memory(TypedDict):
  param_bytes: int  # the model's parameters, one run
  state_bytes: int  # the optimizer's state for them


class RunRecord(TypedDict):
  schema: int  # SCHEMA_VERSION of the writer
  key: str  # content hash of the identity, layout, code and versions (eval.run.bench.record_key)
  task: str  # a task name of tasks.registry
  optimizer: str  # a catalog name or canonical propagator spec
  hparams: dict[str, Any]  # every hyperparameter, defaults resolved
  seed: int
  protocol: dict[str, Any]  # {"protocol": name, "steps", "batch_size", "eval_every", ...}
  family: str  # the optimizer's declared family (rllc.catalog)
  name: str  # the optimizer's results name, e.g. "RLLC[M(0.9)+M(0)]_lr0.1_law0.01"
  status: str  # one of STATUSES
  diverged_step: int | None  # first step with a non-finite loss, None if it never diverged
  final: dict[str, float | None]  # FINAL_METRICS at the last evaluation before any divergence
  curves: dict[str, list]  # per-log-window and per-evaluation series (eval.run.engine)
  memory: Memory
  environment: dict[str, Any]  # eval.store.store.environment() of the writer, and its "layout"


# An EMA run (hyperparameter `ema`) records the average's evaluations under this
# prefix beside the raw iterate's: final["ema_valid_loss"], curves["ema_test_accuracy"], ...
EMA_PREFIX = "ema_"


def final_metrics(record: RunRecord | dict[str, Any]) -> dict[str, float | None]:
  """The final metrics a report reads: the raw iterate's, or an EMA run's average's.

  A run with the `ema` hyperparameter (an optimizer named NAME+ema(DECAY))
  is selected and reported by its parameters' average; its raw iterate's
  metrics stay in `final` for whoever wants them.
  """
  final = record["final"]
  if record["hparams"].get("ema") is None:
    return final
  averaged = {k.removeprefix(EMA_PREFIX): v for k, v in final.items() if k.startswith(EMA_PREFIX)}
  return {**final, **averaged}


def identity_of(record: RunRecord | dict[str, Any]) -> dict[str, Any]:
  """What a run is, without the code and versions that ran it (a record's key adds those)."""
  return {field: record[field] for field in IDENTITY}


def protocol_name(record: RunRecord | dict[str, Any]) -> str:
  """The name of the protocol a record (or a plan's identity) was trained under."""
  return record["protocol"]["protocol"]


def group(record: RunRecord | dict[str, Any]) -> tuple[str, str, str]:
  """(task, optimizer, protocol name): the runs that make one cell of a report."""
  return record["task"], record["optimizer"], protocol_name(record)


def build(
  identity: dict[str, Any],
  *,
  key: str,
  family: str,
  member: dict[str, Any],
  memory: Memory,
  environment: dict[str, Any],
) -> RunRecord:
  """The record of one trained member: its identity, the engine's outcome, cost, provenance.

  Args:
    identity: the IDENTITY fields, as the plan made them.
    key: the record key the plan gave the run.
    family: the optimizer's declared family.
    member: the engine's result for the member (name, status, diverged_step,
      final, curves).
    memory: parameter and optimizer-state bytes.
    environment: what made the record (eval.store.store.environment).
  """
  return check(
    {
      "schema": SCHEMA_VERSION,
      "key": key,
      **identity_of(identity),
      "family": family,
      "name": member["name"],
      "status": member["status"],
      "diverged_step": member["diverged_step"],
      "final": member["final"],
      "curves": member["curves"],
      "memory": memory,
      "environment": environment,
    }
  )


_TYPES: dict[str, type | tuple[type, ...]] = {
  "key": str,
  "task": str,
  "optimizer": str,
  "hparams": dict,
  "seed": int,
  "protocol": dict,
  "family": str,
  "name": str,
  "status": str,
  "diverged_step": (int, type(None)),
  "final": dict,
  "curves": dict,
  "memory": dict,
  "environment": dict,
}


def check(obj: Any) -> RunRecord:
  """`obj` as a RunRecord, or ValueError naming the first field that is missing or wrong.

  A record without `schema` is of version 1 (written before the field was).
  """
  if not isinstance(obj, dict):
    raise ValueError(f"a record is a JSON object, not {type(obj).__name__}")
  version = obj.get("schema", 1)
  if not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
    raise ValueError(
      f"record schema {version!r}: this code reads versions 1 to {SCHEMA_VERSION}"
      " (a newer suite wrote it?)"
    )
  for field, kind in _TYPES.items():
    if field not in obj:
      raise ValueError(f"record has no field {field!r}")
    if not isinstance(obj[field], kind) or isinstance(obj[field], bool):
      raise ValueError(f"record field {field!r} is {type(obj[field]).__name__}")
  if obj["status"] not in STATUSES:
    raise ValueError(f"record status {obj['status']!r}; valid: {', '.join(STATUSES)}")
  if "protocol" not in obj["protocol"]:
    raise ValueError("record field 'protocol' has no protocol name")
  return obj  # type: ignore[return-value]
