"""Hand-made stores for the report tests: records of the real schema, no training.

`fake_record(...)` builds one run's record as eval.run.bench writes it, with
curves that follow from its final values; `fake_store(root, records,
seconds=...)` writes them through eval.store.store (checksums, atomic writes) and
logs one "trained" event per (task, optimizer) with the given job seconds.
"""

import pytest

from eval.store import store as store_lib

ENVIRONMENT = {
  "backend": "cpu",
  "code": "0123456789abcdef",
  "devices": 1,
  "git_commit": "f" * 40,
  "python": "3.11.7",
  "versions": {"jax": "0.10.2", "jaxlib": "0.10.2", "optax": "0.2.8", "flax": "0.12.8"},
}
FAMILIES = {
  "sgd": "baseline",
  "momentum": "baseline",
  "adam": "baseline",
  "am-sgd": "adaptive-memory",
}


def make_record(
  task: str,
  optimizer: str,
  seed: int,
  *,
  lr: float,
  test_loss: float,
  test_accuracy: float,
  valid_loss: float | None = None,
  status: str = "ok",
  hparams: dict | None = None,
  steps: int = 100,
  units: int = 0,
  protocol: str = "quick",
  state_bytes: int | None = 800,
) -> dict:
  """One run's record; family from FAMILIES, or "rllc" for a propagator spec."""
  family = FAMILIES.get(optimizer, "rllc")
  law = {"law_learning_rate": 0.01} if family == "rllc" else {}
  hparams = {"learning_rate": lr, **law, **(hparams or {})}
  name = f"{optimizer}_lr{lr}" + "".join(f"_{k}{v}" for k, v in sorted(hparams.items())[1:])
  valid_loss = test_loss if valid_loss is None else valid_loss
  eval_steps = [steps // 2, steps]
  diverged = status == "diverged"
  curves = {
    "step": list(range(10, steps + 1, 10)),
    "train_loss": [test_loss * (1 + steps / s) for s in range(10, steps + 1, 10)],
    "eval_step": eval_steps,
    "valid_loss": [2 * valid_loss, valid_loss],
    "valid_accuracy": [test_accuracy / 2, test_accuracy],
    "test_loss": [2 * test_loss, test_loss],
    "test_accuracy": [test_accuracy / 2, test_accuracy],
  }
  if family == "rllc":
    curves["law"] = [
      [0.1 * (u + 1) + s / (10 * steps) for u in range(units)] for s in curves["step"]
    ]
  if family == "adaptive-memory":
    curves["beta"] = [0.9 - 0.1 * s / steps for s in curves["step"]]
  record = {
    "task": task,
    "optimizer": optimizer,
    "hparams": hparams,
    "seed": seed,
    "protocol": {
      "protocol": protocol,
      "steps": steps,
      "batch_size": 128,
      "eval_every": steps // 2,
      "log_every": 10,
    },
    "family": family,
    "name": name,
    "status": status,
    "diverged_step": steps // 2 if diverged else None,
    "final": {
      "train_loss": None if diverged else test_loss,
      "valid_loss": None if diverged else valid_loss,
      "valid_accuracy": None if diverged else test_accuracy,
      "test_loss": None if diverged else test_loss,
      "test_accuracy": None if diverged else test_accuracy,
    },
    "curves": curves,
    "environment": ENVIRONMENT,
  }
  if state_bytes is not None:
    record["memory"] = {"param_bytes": 400, "state_bytes": state_bytes}
  record["key"] = store_lib.record_key(
    {k: record[k] for k in ("task", "optimizer", "hparams", "seed", "protocol")}, ENVIRONMENT
  )
  return record


def write_store(root, records: list[dict], seconds: dict | None = None) -> store_lib.Store:
  """Writes records into a store at root; seconds: {(task, optimizer): job seconds} to log."""
  store = store_lib.Store(root)
  store.create()
  for record in records:
    store.put(record)
  for (task, optimizer), job_seconds in sorted((seconds or {}).items()):
    keys = [r["key"] for r in records if (r["task"], r["optimizer"]) == (task, optimizer)]
    store.log(
      {
        "event": "trained",
        "task": task,
        "optimizer": optimizer,
        "keys": keys,
        "computed": len(keys),
        "seconds": job_seconds,
      }
    )
  store.write_table()
  return store


@pytest.fixture
def fake_record():
  return make_record


@pytest.fixture
def fake_store():
  return write_store
