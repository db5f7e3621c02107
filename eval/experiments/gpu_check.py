"""The accelerator check: one command that says what this suite does on this machine's device.

  python -m eval.experiments.gpu_check [--out reports/gpu] [--slice-steps 1000] ...
  (make gpu-check)

It writes into --out, each file as soon as its part is done:

- device.txt: the JAX and jaxlib versions, the backend, every device with
  its kind and the memory the engine budgets from (engine.device_memory_bytes),
  the CPU model and `nvidia-smi` where there is one;
- tests.txt: pytest over the tests that touch the engine (--tests);
- bench_engine.txt: eval.experiments.bench_engine on mnist-mlp and mnist-conv,
  every layout (--bench-args);
- slice.txt: a --slice-steps slice of the paper protocol (rllc bench --profile
  paper --steps N) on the first Table 1 task whose data is here, else
  digits-mlp, for --slice-optimizers;
- table1_estimate.txt: the dry run of the whole of Table 1 (the paper
  protocol on mnist-mlp and fmnist-mlp, every optimizer) and its time on this
  device: its run-steps times the seconds per run-step that the slice took
  (compilation included, so an upper bound for 10,000-step runs);
- summary.md: one line per part, with its status and time.

It runs on a CPU too (with the CPU's numbers), which is how it is tested. A
part that fails is reported (its output kept) and the others still run; the
exit status is 1 if any failed.
"""

import argparse
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TABLE1_TASKS = ("mnist-mlp", "fmnist-mlp")
ENGINE_TESTS = (
  "tests/eval/run/test_engine.py",
  "tests/eval/run/test_strategies.py",
  "tests/eval/run/test_bench.py",
  "tests/tasks/test_interface.py",
  "tests/tasks/test_models.py",
)
BENCH_ARGS = "--conv-tasks mnist-conv --conv-alternatives mnist-conv"
SLICE_OPTIMIZERS = "M(0.9)+M(0),adam"
FALLBACK_TASK = "digits-mlp"  # ships with scikit-learn: no download


def _cpu_model() -> str:
  try:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name"):
        return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or "unknown"


def device_text() -> str:
  """The stack, the devices and their memory, the CPU, and nvidia-smi's view."""
  import jax
  import jaxlib

  from eval.run import engine

  lines = [
    f"python {platform.python_version()}, jax {jax.__version__}, jaxlib {jaxlib.__version__}",
    f"backend: {jax.default_backend()}",
  ]
  for device in jax.devices():
    memory = engine.device_memory_bytes(device)
    lines.append(f"  {device}: {device.device_kind}, {memory / 2**30:.1f} GiB for the engine")
  lines.append(f"CPU: {_cpu_model()}, {os.cpu_count()} cores")
  if shutil.which("nvidia-smi"):
    smi = subprocess.run(["nvidia-smi"], capture_output=True, text=True, check=False)
    lines += ["", smi.stdout.rstrip() or smi.stderr.rstrip()]
  return "\n".join(lines) + "\n"


def _run(command: list[str], path: Path) -> tuple[bool, str]:
  """Runs a command, writes '$ command' and its output to path; (succeeded, last line)."""
  result = subprocess.run(command, capture_output=True, text=True, check=False)
  output = result.stdout + (result.stderr if result.returncode else "")
  path.write_text(f"$ {shlex.join(command)}\n{output}")
  last = next((line for line in reversed(output.splitlines()) if line.strip()), "")
  return result.returncode == 0, last.strip()


def slice_task() -> tuple[str, str]:
  """The task of the slice: the first of Table 1's with its data here, else digits-mlp."""
  from tasks import data as data_lib
  from tasks import registry

  for task in TABLE1_TASKS:
    status = data_lib.status(registry.dataset_of(task))
    if not status.startswith(("missing", "corrupt")):
      return task, f"{task}: its data is here"
  return FALLBACK_TASK, f"{FALLBACK_TASK}: no data here for {', '.join(TABLE1_TASKS)}"


def table1_estimate(slice_store: Path, slice_name: str) -> str:
  """Table 1's run-steps (dry run) times the slice's seconds per run-step on this device."""
  from eval.run import dryrun
  from eval.run import protocol as protocol_lib

  protocol = protocol_lib.resolve("paper", tasks=list(TABLE1_TASKS))
  runs = sum(len(o.settings()) for o in protocol.optimizers) * len(protocol.seeds)
  run_steps = runs * protocol.steps * len(protocol.tasks)
  lines = [
    f"Table 1: the paper protocol on {', '.join(TABLE1_TASKS)}, {len(protocol.optimizers)}"
    f" optimizers, {runs} runs a task of {protocol.steps:,} steps: {run_steps:,} run-steps",
  ]
  rate = dryrun.measured_rates(slice_store).get(slice_name)
  if rate is None:
    lines.append("no rate: the slice trained nothing")
  else:
    hours = run_steps * rate / 3600
    lines.append(
      f"this device: {rate * 1e6:.1f} us a run-step on {slice_name} in the slice"
      f" (compilation included) -> about {hours:.1f} h for the whole of Table 1"
    )
  return "\n".join(lines) + "\n"


def _parts(args, out: Path, scratch: Path) -> dict:
  """Each part's name -> a function that does it and gives (succeeded, one line)."""
  python = sys.executable
  rllc = [python, "-c", "import sys; from eval.cli import main; sys.exit(main())"]
  slice_store = scratch / "slice"
  slice_name, why = slice_task()

  def device():
    text = device_text()
    (out / "device.txt").write_text(text)
    return True, text.splitlines()[1]

  def tests():
    command = [python, "-m", "pytest", "-q", "-p", "no:randomly", *args.tests.split(",")]
    return _run(command, out / "tests.txt")

  def bench():
    command = [python, "-m", "eval.experiments.bench_engine", *shlex.split(args.bench_args)]
    return _run(command, out / "bench_engine.txt")

  def slice_():
    command = [*rllc, "bench", slice_name, "--profile", "paper", "--steps", str(args.slice_steps)]
    command += ["--optimizers", args.slice_optimizers, "--out", str(slice_store), "--quiet"]
    command += ["--seeds", str(args.slice_seeds)] if args.slice_seeds else []
    ok, last = _run(command, out / "slice.txt")
    with open(out / "slice.txt", "a") as f:
      f.write(f"\ntask of the slice: {why}\n")
    return ok, last

  def estimate():
    dry = [*rllc, "bench", "--profile", "paper", *TABLE1_TASKS, "--dry-run"]
    ok, _ = _run(dry + ["--out", str(scratch / "table1")], scratch / "dry_run.txt")
    text = table1_estimate(slice_store, slice_name)
    dry_text = (scratch / "dry_run.txt").read_text()
    note = "" if ok else "(the dry run stopped: its data is not all here)\n"
    (out / "table1_estimate.txt").write_text(text + "\n" + note + dry_text)
    return True, text.splitlines()[-1]

  return {
    "device": device,
    "tests": tests,
    "bench_engine": bench,
    "slice": slice_,
    "table1_estimate": estimate,
  }


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="reports/gpu", help="the folder written (reports/gpu)")
  parser.add_argument("--tests", default=",".join(ENGINE_TESTS), help="test files, comma-separated")
  parser.add_argument("--bench-args", default=BENCH_ARGS, help="bench_engine's arguments")
  parser.add_argument("--slice-steps", type=int, default=1000, help="steps of the slice (1000)")
  parser.add_argument("--slice-optimizers", default=SLICE_OPTIMIZERS, help="the slice's optimizers")
  parser.add_argument("--slice-seeds", type=int, help="seeds of the slice (the protocol's: 3)")
  args = parser.parse_args(argv)
  if args.slice_steps < 1:
    parser.error("--slice-steps must be positive")
  out = Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  summary = [f"# Device check ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", ""]
  failed = False
  with tempfile.TemporaryDirectory() as scratch:
    for name, part in _parts(args, out, Path(scratch)).items():
      print(f"{name} ...", file=sys.stderr, flush=True)
      start = time.perf_counter()
      ok, line = part()
      failed |= not ok
      seconds = time.perf_counter() - start
      summary.append(f"- {name}: {'ok' if ok else 'FAILED'} ({seconds:.0f} s): {line}")
      (out / "summary.md").write_text("\n".join(summary) + "\n")
  print("\n".join(summary))
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
