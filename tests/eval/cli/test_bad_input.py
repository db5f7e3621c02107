"""Issue 28: the 17 bad inputs and faults a new user found, one test (or more) per row.

Every refusal is one line on stderr naming the culprit, a non-zero status and nothing
written. One real bench (`BIG`: sgd and adam at lr 1e6 beside momentum, 20 steps, into a
store whose path has a byte that is not UTF-8, under the protocol name "quick") serves
rows 9, 15 and 17; the others need no training.
"""

import contextlib
import errno
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg

from eval.cli import commands as cli
from eval.report import summary
from eval.run import protocol as protocol_lib
from eval.store import configs
from eval.store import store as store_lib
from rllc import catalog
from rllc import propagator as prop_lib
from rllc import spec as spec_lib

PROJECT = Path(__file__).resolve().parents[3]


def _run(argv: list[str]) -> tuple[int, str, str]:
  """cli.main with stdout and stderr captured."""
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
      code = cli.main(argv)
    except SystemExit as exit_info:
      code = exit_info.code
  return code, out.getvalue(), err.getvalue()


def _one_line(err: str) -> None:
  assert err.startswith("rllc: ") and err.count("\n") == 1 and "Traceback" not in err, err


def _subprocess(args: list[str], limits: str = "", **kwargs) -> subprocess.CompletedProcess:
  """`rllc ARGS` in a fresh Python, after `limits` (code run first: resource limits)."""
  code = f"import sys\n{limits}\nfrom eval.cli import commands\nsys.exit(commands.main())\n"
  streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **kwargs}
  return subprocess.run([sys.executable, "-c", code, *args], cwd=PROJECT, **streams)


BIG = """
base = "quick"
name = "quick"
seeds = 1
steps = 20
eval_every = 10
log_every = 10

[optimizers.sgd]
learning_rate = [1e6]

[optimizers.adam]
learning_rate = [1e6]

[optimizers.momentum]
learning_rate = [0.03]
"""


@pytest.fixture(scope="module")
def big(tmp_path_factory):
  """The bench of BIG into a store named with the byte 0xff; (store, status, stdout, stderr)."""
  root = tmp_path_factory.mktemp("big")
  profile = root / "big.toml"
  profile.write_text(BIG)
  store = root / os.fsdecode(b"runs\xff")
  return (store, *_run(["bench", "--profile", str(profile), "--out", str(store), "--quiet"]))


# Row 1: --seeds 1000000 --dry-run grew to 21 GB; 1,000 seeds printed every seed.

# The address space a dry run of one seed reaches on this machine (thread stacks and the
# libraries' reservations vary with the cores), plus 1 GiB: at 44fc8e6 a million seeds
# needed 21 GB.
PEAK = "import atexit, sys\natexit.register(lambda: print(open('/proc/self/status').read(),"
PEAK += " file=sys.stderr))"


@pytest.fixture(scope="module")
def address_limit(tmp_path_factory) -> str:
  """Code that limits a process's address space to a small dry run's peak + 1 GiB."""
  out = str(tmp_path_factory.mktemp("peak") / "s")
  done = _subprocess(["bench", "digits-mlp", "--seeds", "1", "--dry-run", "--out", out], PEAK)
  (line,) = [x for x in done.stderr.decode().splitlines() if x.startswith("VmPeak:")]
  limit = int(line.split()[1]) * 1024 + 2**30
  return f"import resource\nresource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))"


def test_a_million_seeds_is_refused_within_a_bounded_address_space(tmp_path, address_limit):
  """At 44fc8e6 this dry run ends in MemoryError under such a limit (3 GiB here)."""
  done = _subprocess(
    ["bench", "digits-mlp", "--seeds", "1000000", "--dry-run", "--out", str(tmp_path / "s")],
    address_limit,
    text=True,
  )
  assert done.returncode == 2, done.stderr
  assert done.stderr == (
    f"rllc: --seeds: 1,000,000 seeds; a protocol takes at most {protocol_lib.MAX_SEEDS:,}"
    " seeds per setting\n"
  )
  assert not (tmp_path / "s").exists()


def test_a_dry_run_at_the_seed_limit_fits_and_summarizes_the_seeds(tmp_path, address_limit):
  seeds = str(protocol_lib.MAX_SEEDS)
  done = _subprocess(
    ["bench", "digits-mlp", "--seeds", seeds, "--dry-run", "--out", str(tmp_path / "s")],
    address_limit,
    text=True,
  )
  assert done.returncode == 0, done.stderr
  lines = done.stdout.splitlines()
  assert "; seeds 0-999 (1,000); store" in lines[0] and len(lines[0]) < 250
  assert len(lines) == 2 + 8 + 2  # the protocol and its rule, a line per job (not per run), totals
  assert "8 jobs, 92,000 runs" in lines[-2]


# Rows 2-4: a list, a boolean and an out-of-range beta reached training.


@pytest.mark.parametrize(
  "table,culprit",
  [
    ("[optimizers.adam]\nlearning_rate = [[0.1]]\n", "learning_rate = [0.1]: learning_rate"),
    ("[optimizers.adam]\nlearning_rate = true\n", "learning_rate = true: learning_rate takes"),
    ("[optimizers.adam]\nb1 = 1.5\n", "b1 = 1.5: b1 takes a real number in [0, 1)"),
    ("[optimizers.momentum]\nmomentum = 1.5\n", "momentum = 1.5: momentum takes a real number"),
  ],
)
def test_a_value_its_declaration_refuses_exits_2_before_the_store_is_made(tmp_path, table, culprit):
  profile = tmp_path / "p.toml"
  profile.write_text('name = "p"\nsteps = 5\n' + table)
  code, out, err = _run(["bench", "--profile", str(profile), "--out", str(tmp_path / "s")])
  assert code == 2 and culprit in err and out == ""
  _one_line(err)
  assert not (tmp_path / "s").exists()


# Row 5: name = "../../etc" put the store outside runs/.


@pytest.mark.parametrize("name", ["../../etc", "/etc", "a/b", ".hidden", "", "x" * 101])
def test_a_protocol_name_that_is_a_path_is_refused_and_nothing_is_made(tmp_path, monkeypatch, name):
  monkeypatch.chdir(tmp_path)
  (tmp_path / "p.toml").write_text(f'name = "{name}"\nsteps = 5\n')
  code, _, err = _run(["bench", "--profile", "p.toml"])
  assert code == 2 and f"p.toml: name = {name!r}"[:40] in err and "not a path" in err
  _one_line(err)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["p.toml"]


def test_a_file_stem_that_cannot_be_a_name_asks_for_one(tmp_path):
  profile = tmp_path / "my study.toml"
  profile.write_text("steps = 5\n")
  with pytest.raises(protocol_lib.ProtocolError, match="name \\(the file's stem, as none is"):
    protocol_lib.resolve(str(profile))


# Row 6: a task with its own batch size beside one with the protocol's: a TypeError.


def _plan(root: Path, task: str, steps: int, batch_size) -> None:
  """A store whose plan.json holds one run of `task` under "quick"."""
  fields = {"protocol": "quick", "steps": steps, "batch_size": batch_size}
  identity = {"task": task, "protocol": {**fields, "eval_every": steps, "log_every": 10}}
  root.mkdir()
  (root / "plan.json").write_text(
    store_lib.canonical_json({"d": {"identity": identity, "key": "k"}})
  )


def test_a_task_with_its_own_batches_is_no_conflict_and_another_horizon_is_named(tmp_path):
  store = tmp_path / "s"
  _plan(store, "lo:QuadraticTask", 50, None)
  same = {"protocol": "quick", "steps": 50, "batch_size": 128, "eval_every": 50, "log_every": 10}
  configs.check(store, same)  # the same bench again: its records keep the task's None
  code, _, err = _run(
    ["bench", "lo:QuadraticTask", "--optimizers", "sgd", "--steps", "40", "--dry-run"]
    + ["--out", str(store)]
  )
  assert code == 2
  assert "holds protocol 'quick' as quick: 50 steps, the task's own batches" in err
  _one_line(err)


# Row 7: --executor ray without Ray: a traceback, after the store was made.


def test_ray_missing_is_named_before_anything_is_written(tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
  code, _, err = _run(
    ["bench", "--optimizers", "sgd", "--executor", "ray", "--out", str(tmp_path / "s")]
  )
  assert code == 2 and "--executor ray needs ray, which is not installed: pip install" in err
  _one_line(err)
  assert not (tmp_path / "s").exists()


def test_pyarrow_missing_is_named_before_either_file_is_written(
  tmp_path, monkeypatch, fake_record, fake_store
):
  fake_store(
    tmp_path / "s", [fake_record("digits-mlp", "sgd", 0, lr=0.1, test_loss=0.3, test_accuracy=0.9)]
  )
  monkeypatch.setitem(sys.modules, "pyarrow", None)
  out, curves = tmp_path / "runs.csv", tmp_path / "curves.parquet"
  code, _, err = _run(
    ["store", "export", str(tmp_path / "s"), "--out", str(out)] + ["--curves", str(curves)]
  )
  assert code == 2 and f"writing {curves} needs pyarrow" in err
  _one_line(err)
  assert not out.exists() and not curves.exists()


# Row 8: a TOML file with bytes that are not UTF-8.


def test_a_toml_file_that_is_not_utf8_is_named(tmp_path):
  profile = tmp_path / "p.toml"
  profile.write_bytes(b'name = "caf\xe9"\n')
  code, _, err = _run(["bench", "--profile", str(profile), "--out", str(tmp_path / "s")])
  assert code == 2
  assert err == f"rllc: {profile}: not UTF-8 text (byte 0xe9 at offset 11); a TOML file is UTF-8\n"
  assert not (tmp_path / "s").exists()


# Row 9: a store path with a byte that is not UTF-8, then rllc report.


def test_a_store_path_that_is_not_utf8_is_benched_listed_and_reported(big, tmp_path):
  store, code, _, err = big
  assert code == 0, err
  code, out, err = _run(["report", str(store), "--format", "md,html"])
  assert code == 0, err
  assert "runs\ufffd" in (store / "report" / "report.md").read_text(encoding="utf-8")
  assert f"wrote {store}/report/report.md" in out


# Row 10: a spec of 1,000 terms took minutes: parsed 26 times, its matrices rebuilt per term.


def test_a_spec_beyond_the_unit_limit_is_refused_at_once():
  spec = "+".join(["M(0.5)"] * 1000)
  code, _, err = _run(["bench", "--optimizers", spec, "--dry-run"])
  assert code == 2 and "(6,999 characters): a spec has at most 4,096 characters" in err
  _one_line(err)
  assert len(err) < 500  # the spec is shortened (twice 80 characters), not repeated


def test_a_spec_at_the_unit_limit_is_parsed_once_through_a_dry_run(tmp_path):
  spec = "+".join(f"M(0.{i % 9 + 1})" for i in range(spec_lib.MAX_UNITS))
  spec_lib.parse_propagator.cache_clear()
  code, out, err = _run(
    ["bench", "--optimizers", spec, "--steps", "10", "--dry-run", "--out", str(tmp_path / "s")]
  )
  assert code == 0, err
  assert "24 settings x 2 seeds = 48 runs" in out
  assert spec_lib.parse_propagator.cache_info().misses == 1


def test_the_direct_sum_of_many_terms_is_the_block_diagonal_of_numpy():
  terms = [prop_lib.Mk(1 + i % 3, 0.1 * (i % 9)) for i in range(40)] + [prop_lib.CM(0.3 + 0.4j)]
  total = prop_lib.direct_sum(terms)
  assert np.array_equal(total.B, scipy.linalg.block_diag(*(np.asarray(t.B) for t in terms)))
  assert np.array_equal(total.a, np.concatenate([t.a for t in terms]))
  assert str(total) == "+".join(str(t) for t in terms)
  pairwise = terms[0]
  for term in terms[1:]:
    pairwise = pairwise + term
  assert total.labels == pairwise.labels and total.pattern == pairwise.pattern


def test_a_parsed_spec_is_shared_read_only():
  prop = spec_lib.parse_propagator("M(0.9)+M2(0.5)")
  assert spec_lib.parse_propagator("M(0.9)+M2(0.5)") is prop
  with pytest.raises(ValueError, match="read-only"):
    prop.B[0, 0] = 0.5


# Row 11: M99999999999(0.5): numpy's "array is too big", the token not named.


def test_a_huge_block_is_named_with_the_unit_limit():
  code, _, err = _run(["bench", "--optimizers", "M99999999999(0.5)", "--dry-run"])
  assert code == 2
  assert "'M99999999999' at position 0: a spec has at most 256 memory units" in err
  assert "would make 99,999,999,999" in err and "too big" not in err
  _one_line(err)


# Row 12: rllc optimizers | head -1 printed "rllc: Broken pipe" and exited 1.


def test_a_closed_pipe_ends_the_command_quietly_with_141():
  read, write = os.pipe()
  os.close(read)  # the reader is gone before the first line
  try:
    done = _subprocess(["optimizers"], stdout=write, stderr=subprocess.PIPE, text=True)
  finally:
    os.close(write)
  assert done.returncode == cli.BROKEN_PIPE == 141
  assert done.stderr == ""


# Row 13: a full disk: "rllc: No space left on device", naming no path.


def test_a_write_the_kernel_refuses_names_its_file(tmp_path, fake_record, fake_store):
  records = [
    fake_record("digits-mlp", "sgd", s, lr=lr, test_loss=0.3, test_accuracy=0.9)
    for s in range(2)
    for lr in (0.1, 0.3)
  ]
  fake_store(tmp_path / "s", records)
  out = tmp_path / "runs.csv"
  limits = (
    "import resource, signal\nsignal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (500, 500))"
  )
  done = _subprocess(["store", "export", str(tmp_path / "s"), "--out", str(out)], limits, text=True)
  assert done.returncode == 1
  assert done.stderr == f"rllc: {out}: {os.strerror(errno.EFBIG)}\n"
  assert not out.exists()


def test_a_full_disk_while_writing_the_report_names_its_directory(
  tmp_path, monkeypatch, fake_record, fake_store
):
  fake_store(
    tmp_path / "s", [fake_record("digits-mlp", "sgd", 0, lr=0.1, test_loss=0.3, test_accuracy=0.9)]
  )

  def full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

  monkeypatch.setattr(Path, "write_text", full)
  code, _, err = _run(["report", str(tmp_path / "s"), "--out", str(tmp_path / "r")])
  assert code == 1 and err == f"rllc: {tmp_path / 'r'}: {os.strerror(errno.ENOSPC)}\n"


# Row 14: records/ replaced by a file: the report said "no records".


@pytest.mark.parametrize(
  "argv",
  [["report", "{s}"], ["store", "list", "{s}"], ["bench", "--optimizers", "sgd", "--out", "{s}"]],
)
def test_records_that_is_a_file_is_named(tmp_path, argv):
  store = tmp_path / "s"
  store.mkdir()
  (store / "records").write_text("not a directory")
  code, _, err = _run([a.format(s=store) for a in argv])
  assert code == 1
  assert err == (
    f"rllc: {store / 'records'} is not a directory, so {store} is not a store as rllc bench"
    " writes one; move it aside, or give another store\n"
  )
  assert sorted(p.name for p in store.iterdir()) == ["records"]


# Row 15: sgd at lr 1e6 diverged and vanished from the summary; adam at 1e6 was not flagged.


def test_the_summary_shows_every_optimizer_and_how_its_runs_ended(big):
  store, code, out, err = big
  assert code == 0, err
  lines = {line.split()[1]: line for line in (store / "summary.txt").read_text().splitlines()}
  assert set(lines) == {"sgd", "adam", "momentum"}
  assert lines["sgd"].endswith("no setting selected  (of 1 run: 1 diverged)")
  assert lines["adam"].endswith("n = 1  (of 1 run: 1 exploded)")
  assert "(of" not in lines["momentum"]
  assert (store / "summary.txt").read_text() in out


def test_exploded_is_measured_from_the_start_the_runs_share(fake_record):
  """Adam at lr 1e6 is as large at its first logged point as at its last: its start is the
  lowest first point of the runs of the same task, seed and protocol."""
  calm = fake_record("digits-mlp", "momentum", 0, lr=0.03, test_loss=0.2, test_accuracy=0.9)
  wild = fake_record("digits-mlp", "adam", 0, lr=1e6, test_loss=1e29, test_accuracy=0.1)
  wild["curves"]["train_loss"] = [1e29] * len(wild["curves"]["train_loss"])
  first = calm["curves"]["train_loss"][0]
  edge = fake_record("digits-mlp", "sgd", 0, lr=0.1, test_loss=0.2, test_accuracy=0.9)
  edge["final"]["train_loss"] = summary.EXPLODED * first  # not more than 10x: ok
  other_seed = fake_record("digits-mlp", "sgd", 1, lr=0.1, test_loss=0.2, test_accuracy=0.9)
  assert summary.endings_of([calm, wild, edge, other_seed]) == ["ok", "exploded", "ok", "ok"]
  assert summary.endings_of([wild]) == ["ok"]  # alone, it is its own start
  wild["final"]["test_loss"] = None
  assert summary.endings_of([calm, wild]) == ["ok", "not finite"]


def test_a_job_line_counts_each_ending(fake_record):
  records = [
    fake_record(
      "digits-mlp", "sgd", 0, lr=1e6, test_loss=1.0, test_accuracy=0.1, status="diverged"
    ),
    fake_record("digits-mlp", "sgd", 0, lr=0.1, test_loss=0.2, test_accuracy=0.9),
  ]
  line = summary.job_line("digits-mlp", "sgd", records, 1.0, "valid_loss")
  assert line.endswith(", 1 diverged")
  line = summary.job_line("digits-mlp", "sgd", records[:1], 1.0, "valid_loss")
  assert line.endswith("; no setting selected (1 diverged)")


# Row 16: --steps 999999999999 --dry-run: an estimate of 83,636,363 h.


def test_steps_beyond_the_limit_are_refused_and_the_limit_itself_is_taken(tmp_path):
  code, _, err = _run(["bench", "--steps", "999999999999", "--dry-run", "--out", str(tmp_path)])
  assert code == 2
  assert "steps = 999,999,999,999: a run takes at most 1,000,000 steps" in err
  _one_line(err)
  limit = str(protocol_lib.MAX_STEPS)  # and 100,000 training-loss points at log_every 10
  code, out, err = _run(["bench", "--steps", limit, "--dry-run", "--out", str(tmp_path / "s")])
  assert code == 0, err
  assert "8 jobs (184,000,000 run-steps) to train" in out


def test_too_many_curve_points_or_runs_are_refused(tmp_path):
  profile = tmp_path / "p.toml"
  profile.write_text("steps = 200000\nlog_every = 1\n")
  with pytest.raises(protocol_lib.ProtocolError, match="give log_every >= 2"):
    protocol_lib.resolve(str(profile))
  profile.write_text(
    "seeds = 1000\n[optimizers.sgd]\nlearning_rate = "
    + str([0.001 * (i + 1) for i in range(101)])
    + "\n"
  )
  with pytest.raises(protocol_lib.ProtocolError, match="101,000 runs .* at most 100,000"):
    protocol_lib.resolve(str(profile))


# Row 17: store list of a --steps 100 bench showed "quick", like the 1,000-step protocol.


def test_store_list_says_how_a_store_departs_from_the_protocol_it_is_named_after(big):
  store, code, _, err = big
  assert code == 0, err
  code, out, err = _run(["store", "list", str(store)])
  assert code == 0, err
  # momentum's lr 0.03 is a point of quick's grid; sgd's and adam's 1e6 are not
  label = "quick (20 steps, eval every 10, seeds 0, other grid: adam, sgd)"
  assert out.count(label) == 3
  assert " exploded (loss " in out and " diverged " in out


def test_departures_are_none_for_the_protocol_itself_and_for_other_names():
  quick = protocol_lib.resolve("quick")
  fields = quick.training_fields()
  settings = {p.name: p.settings() for p in quick.optimizers}
  resolved = {
    name: [catalog.lookup(name).resolve(s) for s in found] for name, found in settings.items()
  }
  assert protocol_lib.departures("quick", fields, {0, 1}, resolved) == []
  assert protocol_lib.departures("quick", fields, {0}, resolved) == ["seeds 0"]
  assert protocol_lib.departures("mine", {**fields, "steps": 5}, {0}, resolved) == []


# The boundary itself: any other exception is one line, the traceback only when asked.


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(tmp_path, monkeypatch):
  def broken(args):
    raise ArithmeticError("something\nwent wrong")

  monkeypatch.setattr(cli, "_optimizers", broken)
  code, _, err = _run(["optimizers"])
  assert code == 1
  assert err == (
    "rllc: unexpected error, ArithmeticError: something (rllc --debug, or RLLC_DEBUG=1, shows the"
    " traceback)\n"
  )
  with pytest.raises(ArithmeticError):
    cli.main(["--debug", "optimizers"])
  monkeypatch.setenv("RLLC_DEBUG", "1")
  with pytest.raises(ArithmeticError):
    cli.main(["optimizers"])


def test_an_error_inside_a_job_names_the_job(tmp_path, monkeypatch):
  from eval.run import bench as bench_lib

  def broken(job, env, **kwargs):
    raise FloatingPointError("overflow in the step")

  monkeypatch.setattr(bench_lib, "train_job", broken)
  argv = ["bench", "--optimizers", "sgd", "--steps", "5", "--seeds", "1", "--quiet"]
  code, _, err = _run([*argv, "--out", str(tmp_path / "s")])
  assert code == 1
  assert err == (
    "rllc: unexpected error in job digits-mlp sgd, FloatingPointError: overflow in the step"
    " (rllc --debug, or RLLC_DEBUG=1, shows the traceback)\n"
  )


def test_a_message_listing_several_culprits_is_still_one_line(tmp_path, fake_record, fake_store):
  records = [
    fake_record("digits-mlp", "sgd", 0, lr=lr, test_loss=0.3, test_accuracy=0.9)
    for lr in (0.1, 0.3)
  ]
  fake_store(tmp_path / "s", records)
  for path in (tmp_path / "s" / "records").glob("*.json"):
    path.write_text(path.read_text().replace('"seed":0', '"seed":1'))  # fails its checksum
  code, _, err = _run(["store", "list", str(tmp_path / "s")])
  assert code == 1 and err.startswith(f"rllc: 2 corrupt record(s) in {tmp_path / 's'}; rerun")
  _one_line(err)
  assert err.count("checksum mismatch") == 2
