"""A job carries what it resolved (issue 31 item 9): its names are looked up once, in the plan.

Two checks. (1) A one-job bench of digits-mlp with counters around every
lookup of a name (the catalog's, the task registry's and the code hash's):
each happens once for the job. (2) The plan's identities, hyperparameters
and keys (at a fixed code hash) are the ones the plan gave before the job
carried its resolved objects: golden/plan_identities.json was written by
eval.run.bench.plan at 379c067, before this change.
"""

import collections
import functools
import json
import pickle
from pathlib import Path

import pytest

from eval.run import bench
from eval.run import protocol as protocol_lib
from eval.store import code as code_lib
from eval.store import store as store_lib
from rllc import catalog
from tasks import registry as task_registry

GOLDEN = Path(__file__).with_name("golden") / "plan_identities.json"
LOOKUPS = (
  (catalog, "lookup"),  # the optimizer's catalog entry
  (task_registry, "get_task"),  # the task, built (it loads the data)
  (task_registry, "batch_size_of"),  # the batch size the task trains with (the identity's)
  (code_lib, "job_code"),  # the code hash of the job
)


def test_a_job_resolves_each_name_once(tmp_path, monkeypatch):
  protocol = protocol_lib.resolve(
    "quick", tasks=["digits-mlp"], optimizers=["sgd"], seeds=2, steps=4
  )
  assert len(protocol.optimizers[0].settings()) > 1  # several settings, seeds: one job
  calls = collections.Counter()
  for module, name in LOOKUPS:
    original = getattr(module, name)

    @functools.wraps(original)
    def counted(*args, original=original, name=name, **kwargs):
      calls[name] += 1
      return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
  outcome = bench.run(protocol, str(tmp_path / "store"), bars=False)
  runs = 2 * len(protocol.optimizers[0].settings())
  assert (outcome.jobs, outcome.trained) == (1, runs)
  assert calls == {name: 1 for _, name in LOOKUPS}


def test_a_job_holds_its_entry_and_resolved_hyperparameters():
  protocol = protocol_lib.resolve(
    "quick", tasks=["digits-mlp"], optimizers=["momentum+cosine(0.05)"], seeds=1, steps=10
  )
  (job,) = bench.plan(protocol, {"backend": "cpu", "devices": 1, "versions": {}})
  assert job.entry == catalog.lookup("momentum+cosine(0.05)")
  for (setting, _), hparams, identity in zip(job.members, job.hparams, job.identities, strict=True):
    assert hparams == job.entry.resolve(setting)
    assert hparams["schedule"] == "cosine" and hparams["total_steps"] == 10
    assert identity["hparams"] == hparams


@pytest.fixture(scope="module")
def golden():
  return json.loads(GOLDEN.read_text())


def test_the_plan_keeps_its_identities_hyperparameters_and_keys(golden):
  protocol = protocol_lib.resolve(
    "quick",
    tasks=golden["tasks"],
    optimizers=golden["optimizers"],
    seeds=golden["seeds"],
    steps=golden["steps"],
  )
  env = golden["env"]
  jobs = bench.plan(protocol, env)
  assert [(j.task, j.optimizer) for j in jobs] == [
    (g["task"], g["optimizer"]) for g in golden["jobs"]
  ]
  for job, before in zip(jobs, golden["jobs"], strict=True):
    where = f"{job.task} {job.optimizer}"
    as_json = json.loads(store_lib.canonical_json([list(m) for m in job.members]))
    assert as_json == before["members"], where
    assert json.loads(store_lib.canonical_json(list(job.identities))) == before["identities"], where
    keys = [bench.record_key(identity, env) for identity in job.identities]
    assert keys == before["keys_at_fixed_code"], where
    # The key the plan gives is the same function of the identity, at the job's code hash.
    job_env = {**env, "code": job.code["code"]}
    assert list(job.keys) == [bench.record_key(i, job_env) for i in job.identities], where


def test_a_pickled_job_is_the_same_job_with_its_processs_own_entry():
  """A Ray worker gets a pickled job: its entry is looked up again there, not copied (a copy's
  REQUIRED sentinel would not be catalog.REQUIRED, and its closures would not pickle)."""
  protocol = protocol_lib.resolve(
    "quick", tasks=["digits-mlp"], optimizers=["am-sgd", "momentum+cosine(0.05)"], seeds=1
  )
  jobs = bench.plan(protocol, {"backend": "cpu", "devices": 1, "versions": {}})
  assert [job.entry.factory for job in jobs] == ["rllc.adaptive_memory:am_sgd", "optax:sgd"]
  for job in jobs:
    data = pickle.dumps(job)
    assert job.entry.factory.encode() not in data  # the entry is not in the pickle
    copy = pickle.loads(data)
    assert copy == job and copy.entry == catalog.lookup(job.optimizer)
    assert [h.default for h in copy.entry.hyperparameters].count(catalog.REQUIRED) >= 1
