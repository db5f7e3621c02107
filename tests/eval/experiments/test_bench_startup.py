"""The start-up benchmark's import listing (eval.experiments.bench_startup); no timings."""

import sys

from eval.experiments import bench_startup


def test_heavy_imports_names_the_packages_a_command_imported(monkeypatch):
  monkeypatch.setattr(bench_startup, "HEAVY", ("json", "tomllib"))
  assert bench_startup._heavy_imports([sys.executable, "-c", "import json.decoder"]) == ["json"]
  assert bench_startup._heavy_imports([sys.executable, "-c", "pass"]) == []


def test_the_rllc_script_is_found_beside_python():
  assert bench_startup._rllc().endswith("rllc")
