"""`rllc bench` and its store (eval.run.bench and .protocol, eval.store, eval.report.selection).

Every bench here trains the embedded digits-mlp task for 40 steps. The runs
in this process share one small store (`tiny`, 2 jobs, 6 runs); the
subprocess tests (kill -9, two workers, Ctrl-C) share a persistent JAX
compilation cache so that only the first of them pays for compiling.
"""

import collections
import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eval.cli import commands as cli
from eval.report import selection
from eval.run import bench
from eval.run import protocol as protocol_lib
from eval.store import machine
from eval.store import store as store_lib
from rllc import registry as opt_registry

ROOT = Path(__file__).resolve().parents[3]
ENVIRONMENT = store_lib.environment  # unpatched: what a bench process records


def subprocess_environment(devices: int | None = None) -> dict:
  """What an `rllc bench` subprocess records: one device per core unless told (its keys use it)."""
  return {**ENVIRONMENT(), "devices": devices or len(os.sched_getaffinity(0))}


# 2 jobs, 6 runs; learning rate 1e6 diverges within the first steps.
TINY = """
base = "quick"
name = "tiny"
tasks = ["digits-mlp"]
seeds = 2
steps = 40
eval_every = 20
log_every = 10

[optimizers.sgd]
learning_rate = [0.1, 1e6]

[optimizers.momentum]
learning_rate = [0.03]
"""

# 3 jobs of one run each: for the subprocess tests.
THREE = """
base = "quick"
name = "three"
tasks = ["digits-mlp"]
seeds = 1
steps = 40
eval_every = 20
log_every = 10

[optimizers.sgd]
learning_rate = [0.1]

[optimizers.momentum]
learning_rate = [0.03]

[optimizers.adam]
learning_rate = [0.001]
"""

# 2 jobs of one run each, in 3 intervals of 1,500 steps: one interval is a
# compiled call of a few seconds, long enough for a Ctrl-C to arrive inside it.
TWO_LONG = """
base = "quick"
name = "two-long"
tasks = ["digits-mlp"]
seeds = 1
steps = 4500
eval_every = 1500
log_every = 500

[optimizers.sgd]
learning_rate = [0.1]

[optimizers.momentum]
learning_rate = [0.03]
"""

# RLLC with k = 32 units (one M32 term), 8 runs: 4 per device on 2 devices. Each
# step's eigh of the 4 runs' 32 x 32 Gram matrices is split by jaxlib into
# chunks queued on XLA's thread pool; with one pool thread per device both
# threads waited for chunks that no thread was left to run, and the bench hung.
WIDE = """
base = "quick"
name = "wide"
tasks = ["digits-mlp"]
seeds = 1
steps = 10
eval_every = 10
log_every = 5

[optimizers."M32(0.9)"]
learning_rate = [0.001, 0.003, 0.01, 0.03]
law_learning_rate = [0.01, 0.03]
"""

# `python -m eval.cli.commands` with Python's Ctrl-C handler installed: a test run as a
# background job of a non-interactive shell has SIGINT ignored, and exec passes
# that on, so the child would otherwise never see the signal.
CLI_WITH_SIGINT = (
  "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler);"
  " runpy.run_module('eval.cli.commands', run_name='__main__', alter_sys=True)"
)
TIMEOUT = 300  # seconds for one bench subprocess; a hang fails instead of blocking the suite


def _write(directory: Path, name: str, text: str) -> Path:
  path = directory / name
  path.write_text(text)
  return path


def _record_files(out: Path) -> dict[str, bytes]:
  return {p.name: p.read_bytes() for p in sorted((out / "records").glob("*.json"))}


def _planned(protocol: protocol_lib.Protocol, env: dict | None = None) -> list[str]:
  env = env if env is not None else store_lib.environment()
  return [k for job in bench.plan(protocol, env) for k in job.keys]


def _trained_events(out: Path) -> list[dict]:
  return [e for e in store_lib.Store(out).read_log() if e["event"] == "trained"]


def _assert_complete_and_valid(out: Path, keys: list[str]) -> None:
  """Exactly the planned records, each passing its checks, nothing quarantined now."""
  store = store_lib.Store(out)
  records = store.records()
  assert store.warnings == []
  assert sorted(r["key"] for r in records) == sorted(keys)
  assert sorted(p.stem for p in (out / "records").glob("*.json")) == sorted(keys)


@dataclasses.dataclass
class Bench:
  profile: Path
  protocol: protocol_lib.Protocol
  out: Path
  outcome: bench.Outcome


@pytest.fixture(scope="module")
def frozen_environment():
  """The environment of this module's in-process benches, taken once.

  Others commit to this tree while the tests run, and a record holds the git
  commit: benches compared byte for byte must share one environment.
  """
  env = store_lib.environment()
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(store_lib, "environment", lambda: env)
    yield env


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, frozen_environment) -> Bench:
  """The TINY protocol run once, in this process, into a fresh store (do not modify it)."""
  root = tmp_path_factory.mktemp("tiny")
  profile = _write(root, "tiny.toml", TINY)
  protocol = protocol_lib.resolve(str(profile))
  out = root / "store"
  outcome = bench.run(protocol, str(out), bars=False)
  return Bench(profile, protocol, out, outcome)


# 1. Records and the table.


def test_bench_writes_one_valid_record_per_run_and_a_table_pandas_reads(tiny, frozen_environment):
  import pandas as pd

  assert (tiny.outcome.trained, tiny.outcome.skipped, tiny.outcome.jobs) == (6, 0, 2)
  assert tiny.outcome.warnings == []
  env = frozen_environment
  assert "code" not in env and env["backend"] == "cpu" and "git_commit" in env
  assert env["versions"]["jax"] and env["versions"]["optax"] and env["python"]
  planned = _planned(tiny.protocol)
  assert len(planned) == len(set(planned)) == 6
  _assert_complete_and_valid(tiny.out, planned)

  records = store_lib.Store(tiny.out).records()
  runs = {
    (r["task"], r["optimizer"], store_lib.canonical_json(r["hparams"]), r["seed"]) for r in records
  }
  sgd = [{"learning_rate": lr} for lr in (0.1, 1e6)]
  momentum = [{"learning_rate": 0.03, "momentum": 0.9}]  # resolved: the default momentum too
  expected = {
    ("digits-mlp", name, store_lib.canonical_json(hp), seed)
    for name, grid in (("sgd", sgd), ("momentum", momentum))
    for hp in grid
    for seed in (0, 1)
  }
  assert runs == expected

  jobs = {job.optimizer: job for job in bench.plan(tiny.protocol, env)}
  for record in records:
    identity = {k: record[k] for k in ("task", "optimizer", "hparams", "seed", "protocol")}
    code = jobs[record["optimizer"]].code
    assert record["key"] == bench.record_key(identity, {**env, "code": code["code"]})
    layout = record["environment"]["layout"]
    assert (layout["strategy"], layout["devices"]) == ("vmap", env["devices"])
    assert record["protocol"] == {
      "protocol": "tiny",
      "steps": 40,
      "batch_size": 128,
      "eval_every": 20,
      "log_every": 10,
    }
    assert record["environment"] == {
      **env,
      "code": code["code"],
      "code_parts": {part: code[part] for part in ("runner", "optimizer", "task")},
      "layout": layout,
      "machine": machine.fingerprint(),
    }
    assert record["curves"]["step"] == [10, 20, 30, 40]
    assert record["curves"]["eval_step"] == [20, 40]
    for column in ("train_loss", "valid_loss", "test_loss", "valid_accuracy", "test_accuracy"):
      assert len(record["curves"][column]) == (4 if column == "train_loss" else 2)
      assert column in record["final"]
    assert record["status"] in ("ok", "diverged")
    if record["status"] == "ok":
      assert 0.5 < record["final"]["test_accuracy"] <= 1.0
    assert isinstance(record["checksum"], str)

  table = tiny.out / "results.jsonl"
  lines = table.read_text().splitlines()
  assert len(lines) == 6
  by_key = {r["key"]: r for r in records}
  assert {json.loads(line)["key"]: json.loads(line) for line in lines} == by_key
  frame = pd.read_json(table, lines=True)
  assert len(frame) == 6
  assert set(frame["key"]) == set(planned)
  assert {"hparams", "seed", "final", "curves", "environment", "status"} <= set(frame.columns)


# 2. Resume and determinism.


def test_rerun_trains_nothing_and_leaves_the_records_untouched(tiny):
  before = _record_files(tiny.out)
  stamps = {p.name: p.stat().st_mtime_ns for p in (tiny.out / "records").glob("*.json")}
  log = (tiny.out / "log.jsonl").read_bytes()
  outcome = bench.run(tiny.protocol, str(tiny.out), bars=False)
  assert (outcome.trained, outcome.skipped, outcome.jobs, outcome.warnings) == (0, 6, 2, [])
  assert _record_files(tiny.out) == before
  assert {p.name: p.stat().st_mtime_ns for p in (tiny.out / "records").glob("*.json")} == stamps
  assert (tiny.out / "log.jsonl").read_bytes() == log


def test_same_protocol_into_two_stores_gives_identical_record_files(tiny, tmp_path):
  outcome = bench.run(tiny.protocol, str(tmp_path / "again"), bars=False)
  assert outcome.trained == 6
  again = _record_files(tmp_path / "again")
  first = _record_files(tiny.out)
  assert sorted(again) == sorted(first)
  for name in first:
    assert again[name] == first[name], name


# 3. Corrupt records.


@dataclasses.dataclass
class Repair:
  out: Path
  truncated: str  # key of the truncated record
  edited: str  # key of the record with an edited number
  originals: dict[str, bytes]  # record files before the damage
  outcome: bench.Outcome
  new_events: list[dict]  # trained events of the repairing run


@pytest.fixture(scope="module")
def repair(tiny, tmp_path_factory) -> Repair:
  """A copy of the tiny store with two sgd records damaged, then benched again."""
  out = tmp_path_factory.mktemp("repair") / "store"
  shutil.copytree(tiny.out, out)
  originals = _record_files(out)
  store = store_lib.Store(out)
  sgd = {(r["hparams"]["learning_rate"], r["seed"]): r["key"] for r in store.records()}
  truncated, edited = sgd[0.1, 0], sgd[0.1, 1]

  path = store.path(truncated)
  path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
  path = store.path(edited)
  record = json.loads(path.read_text())
  record["final"]["test_accuracy"] = 0.999  # checksum kept: valid JSON, wrong content
  path.write_text(store_lib.canonical_json(record) + "\n")
  json.loads(path.read_text())

  events = len(store.read_log())
  outcome = bench.run(tiny.protocol, str(out), bars=False)
  new_events = [e for e in store.read_log()[events:] if e["event"] == "trained"]
  return Repair(out, truncated, edited, originals, outcome, new_events)


def test_corrupt_records_are_reported_quarantined_and_only_they_retrained(tiny, repair):
  warnings = "\n".join(repair.outcome.warnings)
  assert len(repair.outcome.warnings) == 2
  for key in (repair.truncated, repair.edited):
    assert f"{key}.json" in warnings
  assert "unreadable" in warnings and "checksum mismatch" in warnings

  quarantined = sorted(p.name for p in (repair.out / "corrupt").iterdir())
  assert len(quarantined) == 2
  assert {name.split(".")[0] for name in quarantined} == {repair.truncated, repair.edited}

  assert (repair.outcome.trained, repair.outcome.skipped) == (2, 4)
  assert len(repair.new_events) == 1  # the momentum job is not touched
  assert repair.new_events[0]["optimizer"] == "sgd"
  assert sorted(repair.new_events[0]["keys"]) == sorted([repair.truncated, repair.edited])

  _assert_complete_and_valid(repair.out, _planned(tiny.protocol))
  untouched = set(repair.originals) - {f"{repair.truncated}.json", f"{repair.edited}.json"}
  repaired = _record_files(repair.out)
  assert {name: repaired[name] for name in untouched} == {
    name: repair.originals[name] for name in untouched
  }
  assert len((repair.out / "results.jsonl").read_text().splitlines()) == 6


def test_a_redone_record_is_byte_identical_to_the_one_it_replaces(repair):
  # The store promises that two writers of one key write the same bytes
  # (eval/store/store.py); a record redone alone must equal the one trained with
  # its whole grid.
  repaired = _record_files(repair.out)
  for key in (repair.truncated, repair.edited):
    old = json.loads(repair.originals[f"{key}.json"])
    new = json.loads(repaired[f"{key}.json"])
    differing = {
      f"{part}.{name}": (old[part][name], new[part][name])
      for part in ("curves", "final")
      for name in old[part]
      if old[part][name] != new[part][name]
    }
    assert not differing, f"record {key[:12]}, (original, redone): {differing}"


# 4-6. Subprocesses: kill -9, two workers, Ctrl-C.


@pytest.fixture(scope="module")
def sub_env(tmp_path_factory) -> dict[str, str]:
  """The environment of bench subprocesses: one shared JAX compilation cache."""
  root = tmp_path_factory.mktemp("subprocess")
  return {
    **os.environ,
    "RLLC_CACHE_DIR": str(root / "data-cache"),
    "JAX_COMPILATION_CACHE_DIR": str(root / "jax-cache"),
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    "PYTHONUNBUFFERED": "1",
  }


def _start(argv: list[str], env: dict, log_to: Path) -> subprocess.Popen:
  with open(log_to.with_suffix(".out"), "w") as out, open(log_to.with_suffix(".err"), "w") as err:
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=err)


def _finish(proc: subprocess.Popen, log_to: Path) -> tuple[int, str, str]:
  try:
    code = proc.wait(timeout=TIMEOUT)
  except subprocess.TimeoutExpired:
    proc.kill()
    proc.wait()
    pytest.fail(f"{proc.args} still running after {TIMEOUT} s")
  return code, log_to.with_suffix(".out").read_text(), log_to.with_suffix(".err").read_text()


def _bench_argv(profile: Path, out: Path) -> list[str]:
  return [
    sys.executable,
    "-m",
    "eval.cli.commands",
    "bench",
    "--profile",
    str(profile),
    "--out",
    str(out),
  ]


def _wait_for_first_trained(proc: subprocess.Popen, out: Path, log_to: Path) -> None:
  log = out / "log.jsonl"
  deadline = time.monotonic() + TIMEOUT
  while time.monotonic() < deadline:
    if log.exists():
      complete = log.read_text().split("\n")[:-1]  # a line being appended is not yet whole
      if any(json.loads(line)["event"] == "trained" for line in complete if line.strip()):
        return
    if proc.poll() is not None:
      err = log_to.with_suffix(".err").read_text()
      pytest.fail(f"bench exited with {proc.returncode} before its first job ended:\n{err}")
    time.sleep(0.02)
  proc.kill()
  proc.wait()
  pytest.fail(f"no job ended within {TIMEOUT} s")


def _valid_keys(out: Path) -> set[str]:
  store = store_lib.Store(out)
  keys = {r["key"] for r in store.records()}
  assert store.warnings == []
  return keys


def test_two_concurrent_benches_split_the_work_without_duplicates(tmp_path, sub_env):
  profile = _write(tmp_path, "three.toml", THREE)
  out = tmp_path / "store"
  planned = _planned(protocol_lib.resolve(str(profile)), subprocess_environment())
  rllc = Path(sys.executable).with_name("rllc")  # the console script, as users run it
  argv = [str(rllc), "bench", "--profile", str(profile), "--out", str(out)]
  workers = [_start(argv, sub_env, tmp_path / f"worker{i}") for i in range(2)]
  for i, proc in enumerate(workers):
    code, stdout, err = _finish(proc, tmp_path / f"worker{i}")
    assert code == 0, err
    assert "trained" in stdout
  _assert_complete_and_valid(out, planned)
  counts = collections.Counter(k for e in _trained_events(out) for k in e["keys"])
  assert max(counts.values()) == 1, counts
  assert set(counts) == set(planned)
  assert list((out / "records").glob(".*.tmp")) == []


def test_resume_after_kill_9_trains_only_what_was_not_finished(tmp_path, sub_env):
  profile = _write(tmp_path, "three.toml", THREE)
  out = tmp_path / "store"
  planned = _planned(protocol_lib.resolve(str(profile)), subprocess_environment())
  assert len(planned) == 3

  proc = _start(_bench_argv(profile, out), sub_env, tmp_path / "first")
  _wait_for_first_trained(proc, out, tmp_path / "first")
  os.kill(proc.pid, signal.SIGKILL)
  assert proc.wait(timeout=60) == -signal.SIGKILL
  finished = _valid_keys(out)  # every record present is valid: writes are atomic
  events_before = len(store_lib.Store(out).read_log())
  assert finished, "the first job's records are missing after its trained event"
  assert finished < set(planned), "all jobs ended before the kill: nothing left to resume"
  # What a writer killed before its rename leaves behind.
  stray = out / "records" / f".{planned[-1]}.json.{proc.pid}.tmp"
  stray.write_text('{"partial": ')

  second = tmp_path / "second"
  code, _, err = _finish(_start(_bench_argv(profile, out), sub_env, second), second)
  assert code == 0, err
  _assert_complete_and_valid(out, planned)
  log = store_lib.Store(out).read_log()
  resumed = {k for e in log[events_before:] if e["event"] == "trained" for k in e["keys"]}
  assert resumed == set(planned) - finished
  assert not resumed & finished
  counts = collections.Counter(k for e in log if e["event"] == "trained" for k in e["keys"])
  assert max(counts.values()) == 1, counts
  assert set(counts) == set(planned)
  assert list((out / "records").glob(".*.tmp")) == []


def _wait_for_line(proc: subprocess.Popen, log_to: Path, pattern: str) -> None:
  """Until a line of the bench's progress (its stderr) matches `pattern`."""
  err = log_to.with_suffix(".err")
  deadline = time.monotonic() + TIMEOUT
  while time.monotonic() < deadline:
    if re.search(pattern, err.read_text(), re.MULTILINE):
      return
    if proc.poll() is not None:
      pytest.fail(f"bench exited with {proc.returncode} before {pattern!r}:\n{err.read_text()}")
    time.sleep(0.02)
  proc.kill()
  proc.wait()
  pytest.fail(f"no progress line matched {pattern!r} within {TIMEOUT} s")


def test_ctrl_c_during_a_compiled_call_exits_130_with_a_consistent_store(tmp_path, sub_env):
  profile = _write(tmp_path, "two_long.toml", TWO_LONG)
  out = tmp_path / "store"
  planned = _planned(protocol_lib.resolve(str(profile)), subprocess_environment())
  assert len(planned) == 2
  argv = [sys.executable, "-c", CLI_WITH_SIGINT, *_bench_argv(profile, out)[3:]]
  argv += ["--progress-every", "0.1"]  # a line at every interval's end

  proc = _start(argv, sub_env, tmp_path / "first")
  # The second job's first interval is done: its second one, a compiled call
  # of a few seconds, has just been dispatched and runs while the signal comes.
  _wait_for_line(proc, tmp_path / "first", r"^job 2/2 .*: 33% ")
  proc.send_signal(signal.SIGINT)
  code, _, err = _finish(proc, tmp_path / "first")
  assert code == 130, err
  assert "Traceback" not in err
  messages = [line for line in err.splitlines() if line.startswith("rllc:")]
  assert messages == [
    "rllc: interrupted; every finished run is in the store, the unfinished job is not."
    " Run the same command again to finish."
  ]
  # It stopped at the latest when the running call returned: no later interval ran.
  assert not re.search(r"^job 2/2 .*: (67|100)% ", err, re.MULTILINE), err[-2000:]
  finished = _valid_keys(out)
  assert finished == {planned[0]}  # the first job's run; nothing of the interrupted one
  assert sorted(p.stem for p in (out / "records").glob("*.json")) == sorted(finished)
  assert list((out / "records").glob(".*.tmp")) == []
  rllc = Path(sys.executable).with_name("rllc")
  listing = subprocess.run(
    [str(rllc), "store", "list", str(out)],
    cwd=ROOT,
    env=sub_env,
    capture_output=True,
    text=True,
    timeout=TIMEOUT,
  )
  assert listing.returncode == 0, listing.stderr
  assert f"{out}: 1 records" in listing.stdout
  assert planned[0][:12] in listing.stdout

  second = tmp_path / "second"
  code, _, err = _finish(_start(_bench_argv(profile, out), sub_env, second), second)
  assert code == 0, err
  _assert_complete_and_valid(out, planned)
  counts = collections.Counter(k for e in _trained_events(out) for k in e["keys"])
  assert counts == {key: 1 for key in planned}


def test_a_k32_spec_sharded_over_two_devices_finishes(tmp_path, sub_env):
  profile = _write(tmp_path, "wide.toml", WIDE)
  out = tmp_path / "store"
  planned = _planned(protocol_lib.resolve(str(profile)), subprocess_environment(2))
  assert len(planned) == 8
  # Two host devices, as `rllc bench` makes on a 2-core machine; the thread
  # pool is the one the bench sets up itself (PJRT_NPROC not inherited).
  env = {k: v for k, v in sub_env.items() if k != "PJRT_NPROC"}
  env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
  log_to = tmp_path / "wide"
  code, _, err = _finish(_start(_bench_argv(profile, out), env, log_to), log_to)
  assert code == 0, err
  _assert_complete_and_valid(out, planned)
  records = store_lib.Store(out).records()
  assert {r["environment"]["devices"] for r in records} == {2}


def test_the_backend_and_device_count_enter_the_record_key():
  # They decide the engine's layout, on which a member's bits depend: a store
  # shared between machines never mixes two layouts' numbers under one key.
  identity = {"task": "digits-mlp", "optimizer": "sgd", "hparams": {}, "seed": 0, "protocol": {}}
  env = {"code": "0" * 16, "versions": {"jax": "0.10.2"}}
  keys = {
    bench.record_key(identity, {**env, "backend": backend, "devices": devices})
    for backend, devices in (("cpu", 1), ("cpu", 2), ("gpu", 1))
  }
  assert len(keys) == 3


# 7. Bad input.

BAD_INPUT = [
  pytest.param(
    ["bench", "nosuch-task"],
    None,
    ["unknown task 'nosuch-task'", "valid tasks: ", "digits-mlp", "mnist-mlp"],
    id="unknown-task",
  ),
  pytest.param(
    ["bench", "--optimizers", "sgd,sgdd"],
    None,
    ["unknown optimizer 'sgdd'", "valid names are ", "sgd, momentum", "am-sgd"],
    id="unknown-optimizer",
  ),
  pytest.param(
    ["bench", "--optimizers", "M(0.9"],
    None,
    ["unknown optimizer 'M(0.9': bad propagator spec", "A propagator spec reads like"],
    id="malformed-spec",
  ),
  pytest.param(
    ["bench"], "steps = 40\ntasks = [", ["bad.toml", "not valid TOML"], id="toml-syntax"
  ),
  pytest.param(
    ["bench"],
    "steps = 40\nstepz = 10\n",
    ["bad.toml", "unknown key(s) stepz", "valid: base, name, tasks, seeds, optimizers, steps"],
    id="toml-unknown-key",
  ),
  pytest.param(
    ["bench"], 'steps = "ten"\n', ["steps must be a positive integer", "'ten'"], id="toml-type"
  ),
  pytest.param(
    ["bench"], "seeds = 0\n", ["bad.toml", "seeds must be a positive count", "got 0"], id="seeds-0"
  ),
  pytest.param(
    ["bench", "--optimizers", "lm:M(0.9)"],
    None,
    ["'lm:M(0.9)'", "missing hyperparameter(s) law", "law = [...]"],
    id="fixed-law-without-law",
  ),
  pytest.param(
    ["bench", "--optimizers", "M(0.9)+M(0)@unit"],
    None,
    ["unknown initial law 'unit'", "valid: ones, normalized"],
    id="unknown-initial-law-suffix",
  ),
  pytest.param(
    ["bench"],
    '[optimizers."M(0.9)+M(0)"]\ninitial_law = "unit"\n',
    ["initial_law = 'unit': initial_law takes one of 'ones', 'normalized' or a list"],
    id="unknown-initial-law-toml",
  ),
  pytest.param(
    ["bench", "--profile", "{tmp}/nowhere.toml"],
    None,
    ["nowhere.toml", "cannot read it", "valid profiles are quick, paper"],
    id="missing-profile",
  ),
]


@pytest.mark.parametrize("argv,toml,culprits", BAD_INPUT)
def test_bad_input_exits_2_naming_the_culprit_and_writes_nothing(
  argv, toml, culprits, tmp_path, capsys
):
  argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
  if toml is not None:
    argv += ["--profile", str(_write(tmp_path, "bad.toml", toml))]
  out = tmp_path / "store"
  assert cli.main([*argv, "--out", str(out)]) == 2
  captured = capsys.readouterr()
  for culprit in culprits:
    assert culprit in captured.err
  assert captured.err.startswith("rllc: ")
  assert not out.exists()


# 8. Report and selection.


def test_report_shows_the_selected_setting_of_each_task_and_optimizer(tiny, capsys, tmp_path):
  assert cli.main(["report", str(tiny.out), "--format", "md", "--out", str(tmp_path / "r")]) == 0
  assert capsys.readouterr().err == ""
  text = (tmp_path / "r" / "report.md").read_text()
  assert "| momentum | lr 0.03 |" in text and "| sgd | lr 0.1 (edge) |" in text
  assert "|  | Diverged | 0/2 |" in text and "|  | Diverged | 2/4 |" in text  # momentum, sgd


def test_a_diverged_setting_is_never_selected_in_a_real_store(tiny):
  records = store_lib.Store(tiny.out).records()
  huge = [r for r in records if r["hparams"] == {"learning_rate": 1e6}]
  assert len(huge) == 2 and all(r["status"] == "diverged" for r in huge)
  assert all(isinstance(r["diverged_step"], int) for r in huge)
  chosen = {s.optimizer: s for s in selection.select(records)}
  assert chosen["sgd"].hparams == {"learning_rate": 0.1}
  assert (chosen["sgd"].settings, chosen["sgd"].eligible, chosen["sgd"].diverged) == (2, 1, 2)
  # Every setting diverged: the optimizer is left out, not reported with a diverged setting.
  assert [s.optimizer for s in selection.select(huge)] == []


def _synthetic(lr: float, seed: int, valid_loss: float, status: str = "ok") -> dict:
  identity = {
    "task": "digits-mlp",
    "optimizer": "sgd",
    "hparams": {"learning_rate": lr},
    "seed": seed,
    "protocol": {"protocol": "made-up", "steps": 40},
  }
  return {
    "key": store_lib.digest(identity),
    **identity,
    "family": "baseline",
    "name": f"SGD_lr{lr:g}",
    "status": status,
    "diverged_step": 7 if status == "diverged" else None,
    "final": {"valid_loss": valid_loss, "test_loss": valid_loss, "test_accuracy": 0.9},
    "curves": {},
    "memory": {"param_bytes": 0, "state_bytes": 0},
    "environment": {},
  }


def test_a_setting_with_one_diverged_seed_is_never_selected(tmp_path):
  # lr 0.3 has the lowest validation losses, but one of its seeds diverged (its
  # numbers are those of its last evaluation before the divergence).
  store = store_lib.Store(tmp_path / "store")
  store.create()
  for record in (
    _synthetic(0.1, 0, 0.5),
    _synthetic(0.1, 1, 0.6),
    _synthetic(0.3, 0, 0.1),
    _synthetic(0.3, 1, 0.05, status="diverged"),
    _synthetic(1.0, 0, 0.2),
    _synthetic(1.0, 1, 0.9),
  ):
    store.put(record)
  [chosen] = selection.select(store.records())
  assert chosen.hparams == {"learning_rate": 0.1}
  assert chosen.score == pytest.approx(0.55)
  assert (chosen.settings, chosen.eligible, chosen.diverged) == (3, 2, 1)


# 9. Help and listings.


@pytest.mark.parametrize(
  "argv",
  [[], ["bench"], ["report"], ["optimizers"], ["tasks"], ["data"], ["data", "import"]],
  ids=lambda argv: " ".join(argv) or "rllc",
)
def test_help_exits_0(argv, capsys):
  with pytest.raises(SystemExit) as exit_info:
    cli.main([*argv, "--help"])
  assert exit_info.value.code == 0
  out = capsys.readouterr().out
  assert out.startswith(f"usage: rllc {' '.join(argv)}".rstrip())


def test_optimizers_lists_every_name_and_the_paper_grid_of_sgd(capsys):
  assert cli.main(["optimizers"]) == 0
  lines = capsys.readouterr().out.splitlines()
  names = {line.split()[0] for line in lines if line and not line.startswith(" ")}
  assert set(opt_registry.REGISTRY) <= names
  sgd = next(i for i, line in enumerate(lines) if line.split()[:1] == ["sgd"])
  paper = lines[sgd + 1].strip()
  assert paper == (
    "paper: learning_rate {1e-07, 3e-07, 1e-06, 3e-06, 1e-05, 3e-05, 0.0001, 0.0003, 0.001,"
    " 0.003, 0.01, 0.03, 0.1, 0.3, 1} (15)"
  )


# 10. Ray.


@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")
def test_ray_executor_writes_the_same_records_as_the_local_one(tiny, tmp_path, monkeypatch):
  try:
    import ray
  except ImportError as err:
    pytest.skip(f"Ray is not importable here ({err}): the ray executor cannot be tested")
  # The sgd job of the tiny protocol (its runs keep their keys: same name and training fields).
  protocol = dataclasses.replace(tiny.protocol, optimizers=tiny.protocol.optimizers[:1])
  assert protocol.optimizers[0].name == "sgd"
  monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # a throwaway local cluster: no token file
  ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
  try:
    outcome = bench.run(protocol, str(tmp_path / "ray"), executor="ray", bars=False)
  finally:
    with contextlib.suppress(Exception):
      ray.shutdown()
  assert (outcome.trained, outcome.skipped, outcome.warnings) == (4, 0, [])
  remote = _record_files(tmp_path / "ray")
  local = {
    name: data for name, data in _record_files(tiny.out).items() if b'"optimizer":"sgd"' in data
  }
  assert len(local) == 4
  assert sorted(remote) == sorted(local)
  for name in local:
    assert remote[name] == local[name], name
