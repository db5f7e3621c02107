"""Start-up time of the light commands, as ratios to bare Python measured in the same run.

Each command runs as a fresh process, as a user runs it: `rllc --help`,
`rllc optimizers` and `rllc report --help`, against `python -c pass` (the
floor: the interpreter alone) and `python -c "import jax"` (what a command
pays as soon as it imports JAX). The runs are interleaved over repeats and
the best of each is kept, so the noise of a shared machine falls on all
alike. The target (README, issue 15) is `rllc --help` in at most 0.5 s.

A second run of each command under `python -X importtime` lists which of the
heavy libraries (TensorFlow, learned_optimization, JAX, optax) it imported:
the light commands should import none of them.

  python -m eval.experiments.bench_startup [--repeats 7] [--out reports/bench_startup.txt]
"""

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from eval.store import store

HEAVY = ("tensorflow", "learned_optimization", "jax", "optax")
COMMANDS = (("--help",), ("optimizers",), ("report", "--help"))


def _rllc() -> str:
  """The `rllc` console script of this interpreter's environment."""
  script = Path(sys.executable).with_name("rllc")
  found = str(script) if script.exists() else shutil.which("rllc")
  if found is None:
    raise SystemExit("bench_startup: no `rllc` script beside Python or on PATH; pip install -e .")
  return found


def _seconds(argv: list[str]) -> float:
  start = time.perf_counter()
  subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
  return time.perf_counter() - start


def _heavy_imports(argv: list[str]) -> list[str]:
  """The HEAVY top-level packages that a Python command imports, from -X importtime."""
  err = subprocess.run(
    [argv[0], "-X", "importtime", *argv[1:]],
    stdout=subprocess.DEVNULL,
    stderr=subprocess.PIPE,
    text=True,
    check=True,
  ).stderr
  names = {line.rpartition("|")[2].strip().partition(".")[0] for line in err.splitlines()}
  return [name for name in HEAVY if name in names]


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--repeats", type=int, default=7, help="runs of each command (best kept)")
  parser.add_argument("--out", help="also write the table here, e.g. reports/bench_startup.txt")
  args = parser.parse_args(argv)
  if args.repeats < 1:
    parser.error(f"--repeats {args.repeats}: give a positive count, e.g. --repeats 7")

  python, rllc = sys.executable, _rllc()
  rows = {
    "python -c pass": [python, "-c", "pass"],
    'python -c "import jax"': [python, "-c", "import jax"],
    **{"rllc " + " ".join(command): [python, rllc, *command] for command in COMMANDS},
  }
  best = dict.fromkeys(rows, float("inf"))
  for _ in range(args.repeats):
    for name, command in rows.items():
      best[name] = min(best[name], _seconds(command))
  floor, jax_import = best["python -c pass"], best['python -c "import jax"']

  lines = [
    "$ python -m eval.experiments.bench_startup "
    + " ".join(sys.argv[1:] if argv is None else argv),
    f"Python {platform.python_version()}, {os.cpu_count()} cores, best of {args.repeats} runs"
    " each, interleaved",
    f"{'command':26s} {'seconds':>8s} {'/ python':>9s} {'/ import jax':>13s}  heavy imports",
  ]
  for name, command in rows.items():
    heavy = ", ".join(_heavy_imports(command)) or "none"
    lines.append(
      f"{name:26s} {best[name]:8.3f} {best[name] / floor:9.2f} {best[name] / jax_import:13.2f}"
      f"  {heavy}"
    )
  text = "\n".join(lines) + "\n"
  sys.stdout.write(text)
  if args.out:
    store.atomic_write(args.out, text)  # whole or not at all


if __name__ == "__main__":
  main()
