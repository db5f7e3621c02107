"""Issue 17, a researcher's first hour: each numbered case of the issue, and the new commands.

One real bench (`MINI`: 2 jobs, 3 runs of 40 steps on digits-mlp, one seed)
runs once through the command line, its output captured as a pipe would
(not a terminal: progress lines); the other tests read copies of its store
or hand-made stores (tests/eval/conftest.py).
"""

import contextlib
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from eval.cli import commands as cli
from eval.report import selection, summary
from eval.store import configs, tidy
from eval.store import store as store_lib

MINI = """
base = "quick"
name = "mini"
tasks = ["digits-mlp"]
seeds = 1
steps = 40
eval_every = 20
log_every = 10

[optimizers.sgd]
learning_rate = [0.1, 0.3]

[optimizers.momentum]
learning_rate = [0.03]
"""


def _run(argv: list[str]) -> tuple[int, str, str]:
  """cli.main with stdout and stderr captured (neither is a terminal)."""
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
      code = cli.main(argv)
    except SystemExit as exit_info:
      code = exit_info.code
  return code, out.getvalue(), err.getvalue()


def _tree(root: Path) -> dict[str, bytes]:
  """Every file under root (relative path -> bytes): to show nothing was written."""
  return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


class Mini:
  def __init__(self, root: Path, profile: Path, out: Path, result: tuple[int, str, str]):
    self.root, self.profile, self.out = root, profile, out
    self.code, self.stdout, self.stderr = result


@pytest.fixture(scope="module")
def mini(tmp_path_factory) -> Mini:
  root = tmp_path_factory.mktemp("mini")
  profile = root / "mini.toml"
  profile.write_text(MINI)
  out = root / "store"
  argv = ["bench", "--profile", str(profile), "--out", str(out), "--progress-every", "0.1"]
  return Mini(root, profile, out, _run(argv))


def _copy(mini: Mini, tmp_path: Path) -> Path:
  copy = tmp_path / "store"
  shutil.copytree(mini.out, copy)
  return copy


@contextlib.contextmanager
def _read_only(path: Path):
  """`path` and everything under it made unwritable, even for root (chattr +i), or skip."""
  subprocess.run(["chmod", "-R", "a-w", str(path)], check=True)
  try:
    probe = path / ".probe"
    try:
      probe.touch()
    except OSError:
      yield  # the permission bits suffice (not root)
      return
    probe.unlink()
    made = subprocess.run(["chattr", "-R", "+i", str(path)], capture_output=True)
    if made.returncode != 0:
      pytest.skip(f"cannot make {path} read-only here (root, and no chattr: {made.stderr!r})")
    try:
      yield
    finally:
      subprocess.run(["chattr", "-R", "-i", str(path)], check=True)
  finally:
    subprocess.run(["chmod", "-R", "u+w", str(path)], check=True)


# Item 1: two configurations of one protocol name never pool.


def test_a_bench_with_other_steps_into_the_same_store_is_refused_naming_both(mini, tmp_path):
  store = _copy(mini, tmp_path)
  before = _tree(store)
  code, _, err = _run(
    ["bench", "--profile", str(mini.profile), "--out", str(store), "--steps", "30"]
  )
  assert code == 2
  assert err.startswith("rllc: ")
  assert "already holds protocol 'mini' as mini: 40 steps" in err
  assert "this bench is mini: 30 steps" in err
  assert "another --out" in err and "Traceback" not in err
  assert _tree(store) == before


def test_configurations_of_one_name_get_labels_that_tell_them_apart():
  a = {"protocol": "quick", "steps": 300, "batch_size": 128, "eval_every": 250, "log_every": 10}
  b = {**a, "steps": 100, "eval_every": 100}
  c = {**a, "protocol": "paper"}
  names = configs.labels([a, b, c])
  assert names[store_lib.canonical_json(a)] == "quick (300 steps, eval every 250)"
  assert names[store_lib.canonical_json(b)] == "quick (100 steps, eval every 100)"
  assert names[store_lib.canonical_json(c)] == "paper"
  assert configs.conflicts(a, [("digits-mlp", x) for x in (a, b, c)]) == [b]
  # a learned_optimization task keeps its own batch size (None: its iterators'): no conflict
  own = {**a, "batch_size": None}
  assert configs.conflicts(a, [("lo:QuadraticTask", own)]) == []
  assert configs.conflicts(a, [("digits-mlp", own)]) == [own]


# Item 2: tracebacks become messages; nothing is half-written.


def test_out_naming_a_file_is_refused_and_the_file_is_untouched(tmp_path):
  target = tmp_path / "afile"
  target.write_text("mine")
  code, out, err = _run(["bench", "--optimizers", "sgd", "--steps", "40", "--out", str(target)])
  assert code == 2
  assert (
    err == f"rllc: --out {target} is a file, not a store directory; give a directory (a new"
    " one, or a store that rllc bench wrote)\n"
  )
  assert out == "" and target.read_text() == "mine"


def test_a_read_only_out_is_refused_and_nothing_is_made(tmp_path):
  parent = tmp_path / "ro"
  parent.mkdir()
  with _read_only(parent):
    code, _, err = _run(["bench", "--optimizers", "sgd", "--out", str(parent / "store")])
  assert code == 2
  assert f"cannot write the store {parent / 'store'}: {parent} is not writable" in err
  assert "give --out a directory you can write" in err and "Traceback" not in err
  assert list(parent.iterdir()) == []


def test_a_read_only_existing_store_is_refused_before_any_lock(mini, tmp_path):
  store = _copy(mini, tmp_path)
  before = _tree(store)
  with _read_only(store):
    code, _, err = _run(["bench", "--profile", str(mini.profile), "--out", str(store)])
  assert code == 2
  assert f"cannot write the store {store}" in err and "not writable" in err
  assert "Traceback" not in err and "plan.lock" not in err.split(":")[0]
  assert _tree(store) == before


def test_report_of_a_read_only_store_into_its_default_output_is_a_message(mini, tmp_path):
  store = _copy(mini, tmp_path)
  with _read_only(store):
    code, _, err = _run(["report", str(store), "--format", "md"])
  assert code == 1
  assert f"cannot write the report into {store}/report: {store} is not writable" in err
  assert "give --out a directory you can write" in err and "Traceback" not in err
  assert not (store / "report").exists()


def test_a_corrupt_plan_json_is_named_by_bench_and_nothing_is_written(mini, tmp_path):
  store = _copy(mini, tmp_path)
  (store / "plan.json").write_text('{"abc": {"identity": ')
  before = _tree(store)
  code, out, err = _run(["bench", "--profile", str(mini.profile), "--out", str(store)])
  assert code == 1
  assert err.startswith(f"rllc: {store / 'plan.json'} is corrupt (")
  assert "delete it (the records stay" in err and "Traceback" not in err
  assert out == "" and _tree(store) == before


# Item 3: bad input refused with the right hint.


def test_an_empty_optimizers_list_is_refused_not_read_as_the_defaults(tmp_path):
  code, out, err = _run(["bench", "--optimizers", "", "--out", str(tmp_path / "s")])
  assert code == 2
  assert "--optimizers '' names no optimizer" in err and "e.g. --optimizers" in err
  assert out == "" and not (tmp_path / "s").exists()


@pytest.mark.parametrize("flag", ["--seeds", "--steps"])
def test_seeds_and_steps_messages_give_what_the_cli_accepts(flag, tmp_path):
  code, _, err = _run(["bench", flag, "0", "--out", str(tmp_path / "s")])
  assert code == 2
  assert err.startswith(f"rllc: {flag} 0: give a positive")
  assert "list of distinct" not in err  # the CLI takes a count, not a list
  if flag == "--seeds":
    assert "seeds = [0, 5, 7]" in err  # where a list goes
  assert not (tmp_path / "s").exists()


# Item 4: the console summary and the per-job line.


def test_the_console_summary_is_one_line_per_task_and_optimizer_without_a_spread_for_n_1(mini):
  assert mini.code == 0, mini.stderr
  text = (mini.out / "summary.txt").read_text()
  assert text in mini.stdout
  lines = text.splitlines()
  assert len(lines) == 2
  assert [line.split()[:2] for line in lines] == [["digits-mlp", "momentum"], ["digits-mlp", "sgd"]]
  for line in lines:
    assert "n = 1" in line and "±" not in line
    assert line.count("sgd") + line.count("momentum") == 1  # the optimizer named once
  assert lines[1].endswith(("lr 0.1", "lr 0.3"))  # the axis the grid varies, by its value
  assert "lr" not in lines[0]  # momentum's grid varies nothing
  assert "(1 seed)" in mini.stdout and "(1 seeds)" not in mini.stdout


def test_a_long_spec_is_named_once_and_the_line_stays_short(fake_record):
  spec = "M(0.9)+M(-0.9)+CM(0.9i)+M2(0.6)"
  records = [
    fake_record("digits-mlp", spec, seed, lr=lr, test_loss=loss, test_accuracy=0.98)
    for seed in (0, 1)
    for lr, loss in ((0.1, 0.05 + seed / 100), (0.3, 0.2))
  ]
  [line] = summary.text(selection.select(records), records).splitlines()
  assert line.count(spec) == 1 and "RLLC" not in line
  assert line.endswith("acc 98.00 ± 0.00 %  loss 0.0550 ± 0.0071  n = 2  lr 0.1")
  assert len(line) - len(spec) < 75  # the rest of the line is short and fixed


# Item 5: data status verifies the checksum.


def test_data_status_says_corrupt_for_a_cache_failing_its_checksum(tmp_path, monkeypatch):
  import hashlib

  monkeypatch.setenv("RLLC_CACHE_DIR", str(tmp_path))
  monkeypatch.delenv("RLLC_DATA_DIR", raising=False)
  npz = tmp_path / "mnist.npz"
  npz.write_bytes(b"pretend npz content")
  digest = hashlib.sha256(npz.read_bytes()).hexdigest()
  (tmp_path / "mnist.npz.sha256").write_text(f"{digest}  mnist.npz\n")
  code, out, _ = _run(["data", "status"])
  assert code == 0 and f"mnist          cached ({npz})" in out
  npz.write_bytes(b"pretend npz CONTENT")
  code, out, err = _run(["data", "status"])
  assert code == 1
  assert f"mnist          corrupt: the cache {npz} does not match its checksum" in out
  assert "rllc data import mnist --from DIR" in err


# Item 6: progress.


def test_piped_progress_shows_job_i_of_n_the_runs_done_and_the_time_left(mini):
  assert mini.code == 0, mini.stderr
  lines = [line for line in mini.stderr.splitlines() if line.startswith("job ")]
  # "job 1/2 digits-mlp sgd [vmap over 1 device(s), <= 64 members a call]: 0% | ...":
  # the layout the engine chose is in brackets.
  layout = r" \[(vmap|map|host) over \d+ device\(s\), <= \d+ members a call\]"
  assert re.match(rf"job 1/2 digits-mlp sgd{layout}: 0% \| runs 0/3 done", lines[0]), lines[0]
  assert any(re.match(rf"job 2/2 digits-mlp momentum{layout}:", line) for line in lines)
  assert any("~" in line and " left" in line for line in lines)  # a measured estimate
  assert re.match(rf"job 2/2 digits-mlp momentum{layout}: 100% \| runs 3/3 done", lines[-1])
  assert lines[-1].endswith("nothing left")
  assert "runs 2/3 done" in "\n".join(lines)  # after the sgd job


def test_quiet_prints_nothing_but_the_summary(mini, tmp_path):
  store = _copy(mini, tmp_path)
  momentum = [r["key"] for r in store_lib.Store(store).records() if r["optimizer"] == "momentum"]
  store_lib.Store(store).path(momentum[0]).unlink()  # one job to train again
  code, out, err = _run(["bench", "--profile", str(mini.profile), "--out", str(store), "--quiet"])
  assert code == 0
  assert err == ""
  assert out.startswith("trained 1 runs, 2 already in the store")
  assert (store / "summary.txt").read_text() in out
  assert "job " not in out


# Item 7: the missing commands.


def test_dry_run_prints_the_plan_runs_and_a_time_and_writes_nothing(tmp_path):
  out = tmp_path / "s"
  code, text, err = _run(["bench", "--optimizers", "sgd,adam", "--seeds", "1", "--dry-run",
                          "--out", str(out)])  # fmt: skip
  assert code == 0, err
  assert "dry run (nothing trains, nothing is written): protocol quick: 1,000 steps" in text
  assert "job 1/2  digits-mlp  sgd   4 settings x 1 seed = 4 runs  (to train)" in text
  assert "job 2/2  digits-mlp  adam  4 settings x 1 seed = 4 runs  (to train)" in text
  assert "2 jobs, 8 runs: 0 already in the store, 2 jobs (8,000 run-steps) to train" in text
  assert "estimated time: ~" in text and "2-core CPU" in text
  assert not out.exists()


def test_dry_run_of_a_finished_store_says_so_from_its_log(mini):
  before = _tree(mini.out)
  code, text, err = _run(["bench", "--profile", str(mini.profile), "--out", str(mini.out),
                          "--dry-run"])  # fmt: skip
  assert code == 0, err
  assert "3 runs: 3 already in the store, 0 jobs (0 run-steps) to train" in text
  assert "(done)" in text and "estimated time: none, everything is in the store" in text
  assert _tree(mini.out) == before


def test_store_list_shows_every_record_and_show_prints_one(mini):
  code, text, _ = _run(["store", "list", str(mini.out)])
  assert code == 0
  records = store_lib.Store(mini.out).records()
  assert text.splitlines()[0] == f"{mini.out}: 3 records (rllc store show {mini.out} KEY shows one)"
  for record in records:
    assert record["key"][:12] in text
  code, shown, _ = _run(["store", "show", str(mini.out), records[0]["key"][:10]])
  assert code == 0
  parsed = json.loads(shown)
  assert parsed["key"] == records[0]["key"] and parsed["final"] == records[0]["final"]
  assert parsed["curves"]["test_accuracy"] == "2 points (--curves shows them)"
  code, _, err = _run(["store", "show", str(mini.out), "zz"])
  assert code == 2 and "no record in" in err and "rllc store list" in err


def test_export_writes_a_tidy_csv_and_parquet_that_pandas_reads_in_one_line(mini, tmp_path):
  import pandas as pd

  csv, parquet, curves = tmp_path / "runs.csv", tmp_path / "runs.parquet", tmp_path / "c.parquet"
  assert _run(["store", "export", str(mini.out), "--out", str(csv)])[0] == 0
  code, text, err = _run(
    ["store", "export", str(mini.out), "--out", str(parquet), "--curves", str(curves)]
  )
  assert code == 0, err
  assert f"wrote {parquet}: 3 runs" in text
  records = {r["key"]: r for r in store_lib.Store(mini.out).records()}
  for frame in (pd.read_csv(csv), pd.read_parquet(parquet)):
    assert len(frame) == 3 and set(frame["key"]) == set(records)
    assert {"hp.learning_rate", "seed", "final.test_accuracy", "protocol.steps"} <= set(frame)
    assert not any(c.startswith("curves") for c in frame.columns)
    assert not any(isinstance(v, (dict, list)) for v in frame.to_numpy().ravel())  # flat
    by_key = frame.set_index("key")
    for key, record in records.items():
      assert by_key.loc[key, "final.test_accuracy"] == pytest.approx(
        record["final"]["test_accuracy"]
      )
  long = pd.read_parquet(curves)
  key = next(iter(records))
  accuracy = long[(long["key"] == key) & (long["curve"] == "test_accuracy")]
  assert list(accuracy["step"]) == [20, 40]
  assert list(accuracy["value"]) == pytest.approx(records[key]["curves"]["test_accuracy"])


def test_export_of_several_stores_is_one_table_of_all_their_runs(mini, tmp_path):
  import pandas as pd

  # Two parts of one experiment: the mini store's records split between two stores,
  # and one record in both (the same key, so one row).
  keys = sorted(r["key"] for r in store_lib.Store(mini.out).records())
  part_a, part_b = tmp_path / "a", tmp_path / "b"
  for part, dropped in ((part_a, keys[:1]), (part_b, keys[2:])):
    shutil.copytree(mini.out, part)
    for key in dropped:
      (part / "records" / f"{key}.json").unlink()
  csv = tmp_path / "all.csv"
  code, text, err = _run(["store", "export", str(part_a), str(part_b), "--out", str(csv)])
  assert code == 0, err
  assert f"wrote {csv}: 3 runs" in text
  whole = tmp_path / "whole.csv"
  assert _run(["store", "export", str(mini.out), "--out", str(whole)])[0] == 0
  assert csv.read_bytes() == whole.read_bytes()  # sorted by key either way
  assert sorted(pd.read_csv(csv)["key"]) == keys


def test_export_to_an_unknown_format_is_refused_writing_nothing(mini, tmp_path):
  code, _, err = _run(["store", "export", str(mini.out), "--out", str(tmp_path / "runs.xlsx")])
  assert code == 2
  assert "unknown export format '.xlsx'" in err and ".csv or .parquet" in err
  assert list(tmp_path.iterdir()) == []


def test_version_prints_the_package_version(capsys):
  with pytest.raises(SystemExit) as exit_info:
    cli.main(["--version"])
  assert exit_info.value.code == 0
  assert capsys.readouterr().out.startswith("rllc 0.1.0")


def test_tidy_rows_flatten_hyperparameters_and_finals(fake_record):
  record = fake_record("digits-mlp", "M(0.9)", 1, lr=0.1, test_loss=0.2, test_accuracy=0.9)
  [row] = tidy.rows([record])
  assert row["hp.learning_rate"] == 0.1 and row["hp.law_learning_rate"] == 0.01
  assert row["final.test_accuracy"] == 0.9 and row["seed"] == 1
  assert row["protocol"] == "quick" and row["protocol.steps"] == 100
  assert list(tidy.columns([row]))[:5] == ["key", "task", "optimizer", "family", "protocol"]
