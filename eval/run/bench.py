"""`rllc bench`: run a protocol's jobs into a store, skipping what is done.

A job is one (task, optimizer) pair with its whole grid x seeds, trained as
one vectorized program (eval.run.engine). Its runs are records of the store
(eval.store.store). A job whose records all exist is never trained again, so the
same command resumes after an interrupt or a kill. A job missing some
records (one was corrupt, or the grid grew) trains whole again and writes
only the missing ones: a record's bits depend on the program that made it
(how many runs, which hyperparameters vary), so the job is always that
program.

Executors:
- local (default): the jobs one after another in this process, with their
  progress (eval.run.progress: job i of N, runs done, time left);
- ray: each job to a Ray worker (`ray.remote`, one CPU and, where the
  cluster has them, one GPU per job); the workers return records and this
  process writes them, so workers need the suite installed and the data
  (`rllc data import` on each node, or a shared RLLC_CACHE_DIR), not the store.

Concurrent benches on one store (processes or machines sharing a
filesystem) split the work through per-job locks (Store.claim): a job
locked by another worker is deferred, then waited for and re-checked.
"""

import contextlib
import dataclasses
import functools
import time
from collections.abc import Callable
from typing import Any

import jax
import optax

from eval.run import engine
from eval.run import progress as progress_lib
from eval.run import protocol as protocol_lib
from eval.store import code as code_lib
from eval.store import configs, machine
from eval.store import records as records_lib
from eval.store import store as store_lib
from rllc import catalog
from tasks import data as data_lib
from tasks import interface
from tasks import registry as task_registry


@dataclasses.dataclass(frozen=True)
class Job:
  """One (task, optimizer) of a protocol and its runs, resolved once (by `plan`).

  A job carries what its names resolve to: the optimizer's catalog entry,
  each member's resolved hyperparameters, each run's identity (with the
  batch size the task trains with) and key, and the code hash. train_job,
  the engine and the record builder take these objects; the one name
  train_job still uses is the task's, to build the task (it loads data,
  in the process that trains).
  """

  task: str  # the task's name (built once per job, by train_job: it loads data)
  optimizer: str  # registry name or canonical spec
  protocol: protocol_lib.Protocol
  members: tuple[tuple[dict, int], ...]  # (hyperparameters as given in the grid, seed)
  keys: tuple[str, ...]  # the record key of each member
  identities: tuple[dict, ...]  # what each member is (records.identity_of its record)
  code: dict[str, str]  # the code it runs: eval.store.code.job_code
  entry: catalog.Entry  # the optimizer's catalog entry (catalog.lookup(optimizer))
  hparams: tuple[dict, ...]  # each member's hyperparameters, resolved (entry.resolve)

  @property
  def lock_id(self) -> str:
    return store_lib.digest([self.task, self.optimizer, self.protocol.training_fields()])[:24]

  def __reduce__(self):
    """Pickled (a Ray worker's copy) without its entry, looked up by name again on unpickling.

    An entry holds a sentinel (catalog.REQUIRED, compared by identity) and
    closures that a pickled copy would not keep as themselves, so the worker
    takes its process's own entry, as it did before jobs carried theirs.
    """
    fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "entry"}
    return _unpickled_job, (fields,)


def _unpickled_job(fields: dict[str, Any]) -> Job:
  return Job(**fields, entry=catalog.lookup(fields["optimizer"]))


def plan(protocol: protocol_lib.Protocol, env: dict[str, Any]) -> list[Job]:
  """Every job of a protocol, tasks outermost, and the record key of each run.

  Each name is resolved once here: an optimizer's catalog entry and its
  settings once per protocol, a task's batch size once per task, a job's
  code hash and each run's identity once per job.
  """
  entries = {opt.name: catalog.lookup(opt.name) for opt in protocol.optimizers}
  resolved = {opt.name: _resolve_settings(entries[opt.name], opt) for opt in protocol.optimizers}
  jobs = []
  for task in protocol.tasks:
    batch_size = task_registry.batch_size_of(task, protocol.batch_size)
    for opt in protocol.optimizers:
      entry = entries[opt.name]
      code = code_lib.job_code(task, entry)
      job_env = {**env, "code": code["code"]}
      members, hparams, keys, identities = [], [], [], []
      for setting, resolved_setting in zip(opt.settings(), resolved[opt.name], strict=True):
        for seed in protocol.seeds:
          identity = _identity(task, opt.name, resolved_setting, seed, protocol, batch_size)
          members.append((setting, seed))
          hparams.append(resolved_setting)
          keys.append(record_key(identity, job_env))
          identities.append(identity)
      jobs.append(
        Job(
          task,
          opt.name,
          protocol,
          *map(tuple, (members, keys, identities)),
          code,
          entry,
          tuple(hparams),
        )
      )
  return jobs


def _resolve_settings(entry: catalog.Entry, opt: protocol_lib.OptimizerPlan) -> list[dict]:
  """Each setting of an optimizer's grid, resolved (entry.resolve), in the grid's order."""
  resolved = []
  for setting in opt.settings():
    hparams = entry.resolve(setting)
    entry.transformation(**hparams)  # built once here: a bad value fails before training
    resolved.append(hparams)
  return resolved


def _identity(task, optimizer, hparams, seed, protocol, batch_size) -> dict[str, Any]:
  """What makes a run's numbers; its digest is the run's key. The batch size is the one the
  task trains with (tasks.registry.batch_size_of): a learned_optimization task keeps its own
  (None: its iterators' or none)."""
  fields = protocol.training_fields()
  return {
    "task": task,
    "optimizer": optimizer,
    "hparams": _jsonable(hparams),
    "seed": seed,
    "protocol": {**fields, "batch_size": batch_size},
  }


def record_key(identity: dict[str, Any], env: dict[str, Any]) -> str:
  """A run's record key: its identity, its job's code hash (env["code"]), the stack versions,
  and what decides its layout.

  The engine lays a job's members out (eval.run.engine.choose_layout) by a
  rule of the task, optimizer, members, backend and device count, and a
  member's bits depend on the layout (vmap's batched programs differ from a
  lone run's by ~1e-6 after training). So the backend and device count enter
  the key, and a store never holds two layouts' numbers under one key.
  """
  layout = {"backend": env["backend"], "devices": env["devices"]}
  return store_lib.record_key({**identity, "layout": layout}, env)


@functools.cache
def _param_shapes(task):
  return jax.eval_shape(task.init, jax.random.key(0))


def _nbytes(tree) -> int:
  return sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(tree))


def _memory(task, entry: catalog.Entry, hparams: dict) -> dict[str, int]:
  """Bytes of one run's parameters and of its optimizer's state (its resolved hyperparameters),
  from shapes alone."""
  params = _param_shapes(task)
  tx = optax.with_extra_args_support(entry.transformation(**hparams))
  return {"param_bytes": _nbytes(params), "state_bytes": _nbytes(jax.eval_shape(tx.init, params))}


def _jsonable(value):
  if isinstance(value, dict):
    return {k: _jsonable(v) for k, v in value.items()}
  if isinstance(value, (tuple, list)):
    return [_jsonable(v) for v in value]
  return value


def train_job(
  job: Job,
  env: dict[str, Any],
  *,
  data_dir: str | None = None,
  progress: Callable[[int], None] | None = None,
  on_layout: Callable[[engine.Layout], None] | None = None,
) -> list[records_lib.RunRecord]:
  """Trains a job's runs in one vectorized program; returns their records (unwritten).

  `progress` and `on_layout` are engine.train_grid's; each record's
  environment is `env` with the job's code hashes, the layout the engine
  chose and this machine's fingerprint.
  """
  task = task_registry.get_task(job.task, batch_size=job.protocol.batch_size, data_dir=data_dir)
  if job.protocol.select == "valid_accuracy" and not interface.has_accuracy(task):
    raise protocol_lib.ProtocolError(
      f"task {job.task} reports no accuracy, so protocol {job.protocol.name}, which selects by"
      " valid_accuracy, cannot rank its settings: use a profile that selects by valid_loss"
      ' (quick does; in a TOML profile, select = "valid_loss")'
    )
  schedule = engine.Schedule(job.protocol.steps, job.protocol.eval_every, job.protocol.log_every)
  result = engine.train_grid(
    task,
    job.entry,
    list(job.members),
    schedule,
    max_members=job.protocol.max_members,
    progress=progress,
    on_layout=on_layout,
    resolved=job.hparams,
  )
  environment = {
    **env,
    "code": job.code["code"],
    "code_parts": {part: h for part, h in job.code.items() if part != "code"},
    "layout": dataclasses.asdict(result.layout),
    "machine": machine.fingerprint(),  # this process's: a Ray worker's own
  }
  runs = zip(job.identities, job.keys, job.hparams, result.members, strict=True)
  return [
    records_lib.build(
      identity,
      key=key,
      family=job.entry.family,
      member=member,
      memory=_memory(task, job.entry, hparams),
      environment=environment,
    )
    for identity, key, hparams, member in runs
  ]


@dataclasses.dataclass
class Outcome:
  """What a bench did."""

  trained: int = 0  # runs trained now
  skipped: int = 0  # runs already in the store
  jobs: int = 0
  warnings: list[str] = dataclasses.field(default_factory=list)


def check_data(protocol: protocol_lib.Protocol, data_dir: str | None) -> None:
  """Raises DataError, before any training, if a task's data cannot be found."""
  for task in protocol.tasks:
    dataset = task_registry.dataset_of(task)
    if dataset is None:  # a learned_optimization task with no data, or its own iterators
      continue
    status = data_lib.status(dataset, data_dir=data_dir)
    if status.startswith(("missing", "corrupt")):
      raise data_lib.DataError(f"task {task} needs {dataset}, which is {status}")


def _missing(store: store_lib.Store, job: Job) -> set[str]:
  return {k for k in job.keys if store.get(k) is None}


def run(
  protocol: protocol_lib.Protocol,
  out: str,
  *,
  executor: str = "local",
  address: str | None = None,
  data_dir: str | None = None,
  on_job: Callable[[Job, list[records_lib.RunRecord], float], None] | None = None,
  bars: bool = True,
  progress: str | None = None,
  progress_every: float = progress_lib.EVERY,
) -> Outcome:
  """Runs every job of `protocol` not yet in the store at `out`, then rebuilds its table.

  `progress` is a mode of eval.run.progress ("bar", "lines" or "quiet"; default:
  a bar on a terminal, else lines every `progress_every` seconds, and "quiet"
  when `bars` is False). `on_job(job, records, seconds)` is called after each
  trained job with all of its records (the command line prints a line from
  them: the run side formats nothing).

  Raises, before anything is written: DataError (missing or corrupt data) and
  store_lib.StoreError (a store that cannot be written, a corrupt plan.json, or
  one holding another configuration of this protocol's name: eval.store.configs).
  """
  check_data(protocol, data_dir)
  store_lib.check_usable(out)
  configs.check(out, protocol.training_fields())
  mode = progress or (progress_lib.auto_mode() if bars else "quiet")
  store = store_lib.Store(out)
  store.create()
  env = store_lib.environment()
  jobs = plan(protocol, env)
  store.write_plan(
    [run for job in jobs for run in zip(job.identities, job.keys, strict=True)], protocol.select
  )
  outcome = Outcome(jobs=len(jobs))
  todo = [job for job in jobs if _missing(store, job)]
  meter = progress_lib.Progress(
    len(todo),
    sum(len(job.keys) for job in todo),
    sum(_run_steps(job) for job in todo),
    mode=mode,
    every=progress_every,
  )
  try:
    if executor == "local":
      _run_local(store, jobs, env, data_dir, on_job, meter, outcome)
    elif executor == "ray":
      _run_ray(store, jobs, env, data_dir, on_job, address, outcome, meter)
    else:
      raise ValueError(f"unknown executor {executor!r}; valid: local, ray")
  finally:
    meter.close()
  store.write_table()
  outcome.warnings = store.warnings
  return outcome


def _run_steps(job: Job) -> int:
  """What training a job costs: its runs x steps (a job always trains whole)."""
  return len(job.members) * job.protocol.steps


def _finish(store, job, records, missing, seconds, on_job, outcome) -> None:
  """Writes the records of the missing runs (the others are in the store already)."""
  written = [r for r in records if r["key"] in missing]
  for record in written:
    store.put(record)
  store.log(
    {
      "event": "trained",
      "task": job.task,
      "optimizer": job.optimizer,
      "keys": [r["key"] for r in written],
      "computed": len(records),
      "run_steps": len(records) * job.protocol.steps,
      "seconds": round(seconds, 3),
    }
  )
  outcome.trained += len(written)
  if on_job is not None:
    on_job(job, records, seconds)  # the whole job: every run's record


def _run_local(store, jobs, env, data_dir, on_job, meter, outcome) -> None:
  deferred = []
  for job in jobs:
    if not _run_one(store, job, env, data_dir, on_job, meter, outcome, wait=False):
      deferred.append(job)
  for job in deferred:  # held by another worker: wait for it, then take what it left
    _run_one(store, job, env, data_dir, on_job, meter, outcome, wait=True)


def _run_one(store, job, env, data_dir, on_job, meter, outcome, *, wait: bool) -> bool:
  """Trains what a job is missing; False if another worker holds it (and wait is False)."""
  if not _missing(store, job):
    outcome.skipped += len(job.keys)
    return True
  with store.claim(job.lock_id, wait=wait) as claimed:
    if not claimed:
      return False
    missing = _missing(store, job)
    outcome.skipped += len(job.keys) - len(missing)
    if not missing:  # another worker trained it
      meter.skip(len(job.keys), _run_steps(job))
      return True

    # The whole job trains again, so a redone record is the same program's,
    # bit for bit the record it replaces; only the missing ones are written.
    def begin(layout):  # the job's line names the layout the engine chose
      label = f"{job.task} {job.optimizer} [{layout}]"
      meter.start_job(label, len(job.keys), _run_steps(job))

    start = time.perf_counter()
    try:
      records = train_job(job, env, data_dir=data_dir, progress=meter.update, on_layout=begin)
    except Exception as err:
      err.add_note(f"in job {job.task} {job.optimizer}")  # the command line names it
      raise
    meter.end_job(len(job.keys))
    _finish(store, job, records, missing, time.perf_counter() - start, on_job, outcome)
  return True


def _run_ray(store, jobs, env, data_dir, on_job, address, outcome, meter) -> None:
  try:
    import ray
  except ImportError:
    raise ValueError(
      "--executor ray needs Ray: pip install '.[distributed]' (or pip install ray)"
    ) from None
  if not ray.is_initialized():
    ray.init(address=address) if address else ray.init()
  gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
  # CPU workers split their host into as many devices as this process has,
  # so a job is the same program (and gives the same bits) as run locally,
  # with a thread pool one larger (why: eval.run.engine.one_device_per_core).
  flags = f"--xla_force_host_platform_device_count={env['devices']}"
  pool = str(env["devices"] + 1)
  runtime_env = {} if gpus else {"env_vars": {"XLA_FLAGS": flags, "PJRT_NPROC": pool}}
  remote = ray.remote(num_cpus=1, num_gpus=gpus, runtime_env=runtime_env)(train_job)
  with contextlib.ExitStack() as held:
    pending: dict[Any, tuple[Job, set[str], float]] = {}
    for job in jobs:
      if not _missing(store, job):
        outcome.skipped += len(job.keys)
        continue
      held.enter_context(store.claim(job.lock_id, wait=True))  # blocks while another has it
      missing = _missing(store, job)
      outcome.skipped += len(job.keys) - len(missing)
      if missing:
        ref = remote.remote(job, env, data_dir=data_dir)
        pending[ref] = (job, missing, time.perf_counter())
      else:
        meter.skip(len(job.keys), _run_steps(job))
    try:
      while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        job, missing, start = pending.pop(done[0])
        seconds = time.perf_counter() - start
        records = ray.get(done[0])
        layout = engine.Layout(**records[0]["environment"]["layout"])
        label = f"{job.task} {job.optimizer} (Ray) [{layout}]"
        meter.start_job(label, len(job.keys), _run_steps(job))
        meter.end_job(len(job.keys))  # a remote job reports only its end
        _finish(store, job, records, missing, seconds, on_job, outcome)
    finally:
      for ref in pending:
        ray.cancel(ref, force=True)
