"""The device check runs on a CPU: every part writes its file, small sizes (about a minute)."""

import re

import jax

from eval.experiments import gpu_check
from eval.run import engine

TINY_BENCH = (
  "--steps 2 --settings 3 --seeds 1 --sequential-settings 1 --single-steps 2 --repeats 1"
  " --no-train-grid --synthetic --conv-tasks ''"
)


def test_the_check_writes_each_part_with_this_cpus_numbers(tmp_path, monkeypatch):
  monkeypatch.setattr(gpu_check, "slice_task", lambda: ("digits-mlp", "digits-mlp: the test's"))
  args = ["--out", str(tmp_path), "--tests", "tests/test_layers.py", "--bench-args", TINY_BENCH]
  args += ["--slice-steps", "10", "--slice-optimizers", "sgd", "--slice-seeds", "1"]
  assert gpu_check.main(args) == 0

  summary = (tmp_path / "summary.md").read_text()
  for part in ("device", "tests", "bench_engine", "slice", "table1_estimate"):
    assert f"- {part}: ok" in summary
  device = (tmp_path / "device.txt").read_text()
  assert "backend: cpu" in device
  memory = engine.device_memory_bytes(jax.devices()[0]) / 2**30
  assert f"{memory:.1f} GiB for the engine" in device
  assert re.search(r"^\d+ passed", (tmp_path / "tests.txt").read_text(), re.M)
  bench = (tmp_path / "bench_engine.txt").read_text()
  assert "(a) engine, vmap layout, 3 runs" in bench
  for layout in ("(a') engine, map layout, 3 runs", "(a'') engine, host layout, 3 runs"):
    assert layout in bench
  assert re.search(r"^\(a'''\) engine, vmap, chunks of 1 +1 ", bench, re.M)  # chunked vmap
  assert "task of the slice: digits-mlp" in (tmp_path / "slice.txt").read_text()
  estimate = (tmp_path / "table1_estimate.txt").read_text()
  # 1,530 runs of 10,000 steps: reports/table1 (765 a task).
  assert "765 runs a task of 10,000 steps: 15,300,000 run-steps" in estimate
  assert re.search(r"us a run-step on digits-mlp .* about [\d.]+ h for the whole", estimate)
