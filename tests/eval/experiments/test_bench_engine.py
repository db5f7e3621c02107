"""eval.experiments.bench_engine: its flags, its tables' arithmetic, and the engine API it uses.

A whole run (every row, on this CPU) is tests/eval/experiments/test_gpu_check.py's; here the
parts that need no timing: the command line's checks, and the rows and ratios computed from
given seconds (the expected numbers are worked out by hand from those seconds).
"""

import ast
import types
from pathlib import Path

import pytest

from eval.experiments import bench_engine
from eval.run import engine

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
  "argv,culprit",
  [
    (["--conv-tasks", "mnist-cnn"], "unknown task 'mnist-cnn' in --conv-tasks"),
    (["--settings", "19"], "--settings and --sequential-settings must be in 1..18"),
    (["--steps", "0"], "--steps, --single-steps, --seeds and --repeats must be positive"),
    (["--conv-steps", "0"], "--conv-members, --conv-steps and --conv-repeats must be positive"),
  ],
)
def test_bad_flags_exit_2_naming_the_flag(argv, culprit, capsys):
  with pytest.raises(SystemExit) as exit_:
    bench_engine.main(argv)
  assert exit_.value.code == 2
  assert culprit in capsys.readouterr().err


def test_the_flags_resolve_their_defaults():
  args = bench_engine._arguments(["--steps", "40", "--conv-tasks", ""])
  assert args.single_steps == 200  # 5 x --steps
  assert args.conv_tasks == []
  args = bench_engine._arguments(["--single-steps", "7"])
  assert args.single_steps == 7 and args.conv_tasks == ["mnist-conv", "cifar10-resnet20"]


def rows() -> bench_engine._MlpRows:
  """(a) 4 runs at 8 ms a step, (a') at 16 ms, (b) 2 runs at 10 ms, (c) 3 ms, (d) 2 ms."""
  return bench_engine._MlpRows(
    labels={k: f"({k}) row" for k in ("a", "a'", "b", "c", "d")},
    layouts={"a": "vmap", "a'": "map"},
    runs={"a": 4, "a'": 4, "b": 2, "c": 1, "d": 1},
    steps={"a": 100, "a'": 10, "b": 100, "c": 500, "d": 500},
    samples={"a": [0.009, 0.008, 0.007], "a'": [0.016], "b": [0.010], "c": [0.003], "d": [0.002]},
    checks={"a": (0.010, 1.5)},
    compile={"a": 1.0, "b": 2.0, "c": 3.0},
    evaluation=0.04,
  )


def test_the_mlp_table_reports_medians_per_config_step_and_flops():
  table, per_config = bench_engine._mlp_table(rows(), flop=1e8, peak=1e11)
  # (a): median 8 ms over 4 runs = 2 ms a config-step, 500 config-steps/s, 50 GFLOP/s, 0.5 peak.
  assert per_config == pytest.approx({"a": 0.002, "a'": 0.004, "b": 0.005, "c": 0.003, "d": 0.002})
  assert table[0].split()[-8:] == ["4", "100", "8.000", "2.000", "1.750", "500.0", "50.00", "0.500"]
  check = table[-1]
  assert check.startswith("  check (a): train_grid, 4 runs") and check.endswith("+1.5 s/call")
  assert check.split()[-10:-2] == ["4", "100", "10.000", "2.500", "-", "400.0", "40.00", "0.400"]


def test_the_mlp_summary_gives_ratios_of_throughputs_against_their_aims():
  args = types.SimpleNamespace(peak=1e11, sequential_settings=1)
  r = rows()
  _, per_config = bench_engine._mlp_table(r, flop=1e8, peak=1e11)
  members = [({"learning_rate": 0.001, "law_learning_rate": 0.003}, 0)]
  text = "\n".join(bench_engine._mlp_summary(args, r, per_config, 1e8, members, members))
  assert "(a)/(b) vectorized vs sequential per-step loop:   2.50x   (aim >= 1.6x: met)" in text
  assert "(a)/(d) vectorized vs bare loop of one run:       1.00x   (aim >= 1.2x: not met)" in text
  assert "(a)/(a') vmap vs map layout:                      2.00x" in text
  assert "(per-run overhead +50.0%, aim within 10%: not met)" in text
  assert "(a) FLOP/s / GEMM peak:                          0.500   (aim >= 0.65: not met)" in text
  assert "compile: (a) 1.0 s, (b) 2.0 s for 1 setting(s), (c) 3.0 s" in text
  assert "(a) evaluation of valid + test, 1 members: 0.04 s = 5 training steps" in text


def test_the_conv_ratios_compare_each_layout_with_its_members_one_by_one():
  per_config = {"e": 1.0, "f": 4.0, "f'": 2.0, "g": 1.5, "h": 1.2, "h'": 1.0}
  lines = bench_engine._conv_ratios(per_config, {"f": "vmap", "f'": "host"}, alternatives=True)
  assert lines[0].endswith("1.50x   (aim >= 1.0x: met)")
  assert lines[1] == "(f)/(g) vmap grid vs one by one:               0.38x"
  assert lines[2] == "(f')/(g) host grid vs one by one:              0.75x"
  assert lines[3].endswith("0.800") and lines[4].endswith("1.200")


def test_bench_engine_uses_only_the_engines_public_api():
  """No private name of eval.run (engine._x, or an import of one) in bench_engine."""
  tree = ast.parse((ROOT / "eval/experiments/bench_engine.py").read_text())
  private = [
    ast.unparse(node)
    for node in ast.walk(tree)
    if isinstance(node, ast.Attribute)
    and isinstance(node.value, ast.Name)
    and node.value.id in ("engine", "base")
    and node.attr.startswith("_")
  ]
  private += [
    alias.name
    for node in ast.walk(tree)
    if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("eval.run")
    for alias in node.names
    if alias.name.startswith("_")
  ]
  assert private == []
  used = {
    node.attr
    for node in ast.walk(tree)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
    if node.value.id == "engine"
  }
  assert used <= set(engine.__all__), used - set(engine.__all__)


def test_no_function_of_bench_engine_is_over_60_lines():
  tree = ast.parse((ROOT / "eval/experiments/bench_engine.py").read_text())
  long = {
    node.name: node.end_lineno - node.lineno + 1
    for node in ast.walk(tree)
    if isinstance(node, ast.FunctionDef) and node.end_lineno - node.lineno + 1 > 60
  }
  assert long == {}
