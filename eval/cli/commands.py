"""The `rllc` command line.

  rllc bench [TASK ...] [--optimizers NAME_OR_SPEC,...] [--profile quick|paper|fair|FILE.toml]
             [--seeds N] [--steps N] [--out DIR] [--executor local|ray] [--address ADDR]
             [--dry-run] [--quiet] [--progress-every SECONDS]
  rllc store list DIR                     the records of a store, one line each
  rllc store show DIR KEY [--curves]      one record (KEY: the first characters of its key)
  rllc store export DIR [DIR ...] --out FILE.csv|FILE.parquet [--curves FILE]
                                          the tidy per-run table of one or more stores
  rllc report DIR [DIR ...] [--format md,tex,html] [--select RULES] [--out PATH]
                                                  tables, tests and figures of a store
  rllc tasks [--data-dir DIR]             every task and the state of its data
  rllc optimizers                         every optimizer and its default grids
  rllc data import NAME --from DIR        parse, verify and cache a data set
  rllc data import NAME --download        the same through tensorflow-datasets (needs internet)
  rllc data status [--data-dir DIR]       the state of every data set
  rllc analyze SPEC --law L1,L2,... [--lr H]   a fixed law's effective rate and implicit penalty

`rllc bench` with no arguments is the main job: the quick protocol on the
embedded digits-mlp task, into runs/quick. Bad input (an unknown task or
optimizer, a malformed spec, a bad TOML file, a hyperparameter outside its
declared type and range, a size beyond the protocol's limits, a missing
optional package) exits with status 2 before anything trains, naming the
culprit and the valid choices; missing or corrupt data exits with status 1
and says how to provide it; Ctrl-C exits with status 130, the store
consistent (re-run the command to finish). A store that cannot be written
(--out a file, read-only), or that holds the same protocol name with other
training fields (steps, batch size, evaluation or logging interval) is
refused, naming both, with status 2; a corrupt plan.json with status 1.
Nothing is written then. Any other error is one line with status 1
(`rllc --debug ...` or RLLC_DEBUG=1: its traceback); a closed pipe ends a
command silently with status 141.

Progress: job i of N, the runs done and the time left, from the rate measured
so far: a bar on a terminal, else a line at least every 30 s
(--progress-every), nothing with --quiet (only errors and the summary).

TensorFlow's, XLA's and absl's start-up and log lines are silenced unless
`rllc --verbose COMMAND ...` is given (errors always show).
"""

import argparse
import ast
import functools
import importlib
import importlib.util
import json
import math
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from eval.run import progress as progress_lib  # the standard library only

# Each command imports its machinery when it runs: `rllc --help` then imports no NumPy, JAX,
# TensorFlow or learned_optimization, and `rllc report` none of the training side.


def _tasks(args) -> int:
  from tasks import data as data_lib
  from tasks import lo_names, registry

  lo = lo_names.runnable()
  width = max(len(name) for name in [*registry.TASKS, *(t.name for t in lo)])
  for name in registry.TASKS:
    dataset = registry.dataset_of(name)
    print(f"{name:{width}s}  {dataset:13s}  {data_lib.status(dataset, data_dir=args.data_dir)}")
  print(
    "\nlearned_optimization's tasks (rllc bench lo:NAME; a Task of yours: rllc bench"
    " module:Name, see the README's Tasks):"
  )
  for task in lo:
    if task.dataset is not None:
      where, status = task.dataset, data_lib.status(task.dataset, data_dir=args.data_dir)
    else:
      where = "synthetic" if task.sample is None else "family sample"
      seeds = "; any @SEED" if task.sample is not None else ""
      status = f"available ({task.synthetic_data}{seeds})"
    print(f"{task.name:{width}s}  {where:13s}  {status}")
  elsewhere = [t.name for t in lo_names.known().values() if t.needs is not None]
  print(
    f"\nnot runnable here ({len(elsewhere)}: data this suite has no offline copy of, ImageNet or"
    f" resized images): {', '.join(elsewhere)}"
  )
  return 0


def _data_status(args) -> int:
  from tasks import data as data_lib

  corrupt = []
  for name in data_lib.DATASETS:
    status = data_lib.status(name, data_dir=args.data_dir)
    print(f"{name:13s}  {status}")
    if status.startswith("corrupt"):
      corrupt.append(name)
  if corrupt:
    print(
      f"rllc: {', '.join(corrupt)}: the cache fails its checksum; import again:"
      + "".join(f" rllc data import {name} --from DIR;" for name in corrupt)[:-1],
      file=sys.stderr,
    )
    return 1
  return 0


def _data_import(args) -> int:
  from tasks import data as data_lib

  if args.download:
    print(f"{args.name}: {data_lib.load(args.name, download=True).source}")
    return 0
  path = data_lib.import_dataset(args.name, args.source)
  print(f"{args.name}: imported from {args.source} into {path}")
  return 0


def _optimizers(args) -> int:
  from rllc import catalog

  print("Any propagator spec is an RLLC optimizer, e.g. 'M(0.9)+M2(0.6)' (RLLC grid);")
  print("'lm:' and a spec is that memory with a fixed law (give law in a TOML table).")
  print("buffers: parameter-sized buffers in the state at the defaults (a spec: its k units).\n")
  print(f"{'name':17s} {'family':16s} {'buffers':>7s}  default grids")
  entries = catalog.active()
  for entry in [*entries.values(), entries.rllc, entries.fixed_law]:
    units = entry.buffer_count == catalog.UNITS
    buffers = entry.buffer_count if units else entry.buffers(entry.defaults())
    print(
      f"{entry.name:17s} {entry.family:16s} {buffers:>7}"
      f"  quick: {catalog.describe_grid(entry.quick)}"
    )
    print(f"{'':43s}paper: {catalog.describe_grid(entry.paper)}")
    print(f"{'':43s}takes: {catalog.describe_hyperparameters(entry)}")
  return 0


def _counts(args) -> None:
  """--seeds and --steps take a positive count (a list of seeds goes in a TOML file)."""
  from eval.run import protocol as protocol_lib

  if not args.progress_every > 0:
    raise protocol_lib.ProtocolError(
      f"--progress-every {args.progress_every:g}: give a positive number of seconds, e.g."
      " --progress-every 60"
    )
  if args.seeds is not None and args.seeds < 1:
    raise protocol_lib.ProtocolError(
      f"--seeds {args.seeds}: give a positive count N, for seeds 0..N-1 (e.g. --seeds 3); an"
      " explicit list of seeds goes in a TOML profile: seeds = [0, 5, 7]"
    )
  if args.steps is not None and args.steps < 1:
    raise protocol_lib.ProtocolError(
      f"--steps {args.steps}: give a positive number of training steps, e.g. --steps 1000"
    )


def _optimizer_names(text: str | None) -> list[str] | None:
  from eval.run import protocol as protocol_lib

  if text is None:
    return None
  names = protocol_lib.split_names(text)
  if not names:
    raise protocol_lib.ProtocolError(
      f"--optimizers {text!r} names no optimizer; give comma-separated names or propagator"
      " specs, e.g. --optimizers 'sgd,adam,M(0.9)' (rllc optimizers lists them), or leave"
      " --optimizers out for the profile's"
    )
  return names


class MissingExtraError(Exception):
  """An optional package a command needs is not installed (checked before anything is
  written): exit status 2, naming it and how to install it."""


def _needs(module: str, why: str, install: str) -> None:
  try:
    importlib.import_module(module)
  except ImportError:
    raise MissingExtraError(f"{why} needs {module}, which is not installed: {install}") from None


def _bench(args) -> int:
  from eval.report import selection, summary
  from eval.run import bench as bench_lib
  from eval.run import dryrun, engine
  from eval.run import protocol as protocol_lib
  from eval.store import configs, samples
  from eval.store import store as store_lib

  _counts(args)
  if args.executor == "ray":
    _needs("ray", "--executor ray", "pip install '.[distributed]' (or pip install ray)")
  optimizers = _optimizer_names(args.optimizers)
  engine.one_device_per_core()
  protocol = protocol_lib.resolve(
    args.profile,
    tasks=args.tasks or None,
    optimizers=optimizers,
    seeds=args.seeds,
    steps=args.steps,
  )
  out = args.out or f"runs/{protocol.name}"
  store_lib.check_usable(out)  # before anything is printed or written (the bench checks again)
  configs.check(out, protocol.training_fields())
  if args.dry_run:
    print(dryrun.text(protocol, out, data_dir=args.data_dir), end="")
    return 0
  runs = sum(len(o.settings()) for o in protocol.optimizers) * len(protocol.seeds)
  if not args.quiet:
    print(
      f"protocol {protocol.name}: {len(protocol.tasks)} task(s) x {len(protocol.optimizers)}"
      f" optimizer(s), {runs} runs per task of {protocol.steps} steps; store {out}",
      flush=True,
    )
  outcome = bench_lib.run(
    protocol,
    out,
    executor=args.executor,
    address=args.address,
    data_dir=args.data_dir,
    progress="quiet" if args.quiet else None,
    progress_every=args.progress_every,
    on_job=None if args.quiet else functools.partial(_job_line, protocol.select),
  )
  for warning in outcome.warnings:
    print(f"rllc: warning: {warning}", file=sys.stderr)
  print(f"trained {outcome.trained} runs, {outcome.skipped} already in the store\n")
  store = store_lib.Store(out)
  records = samples.count(store.records(), store.read_plan()).counted  # each seed once
  text = summary.text(selection.select(records, protocol.select), records)
  store.write_text("summary.txt", text)
  print(text, end="")
  print(f"\nstore: {out}/records, table: {out}/results.jsonl, summary: {out}/summary.txt")
  return 0


def _job_line(rule: str, job, records: list, seconds: float) -> None:
  from tqdm import tqdm  # beside the progress bar, which tqdm draws

  from eval.report import summary

  tqdm.write(summary.job_line(job.task, job.optimizer, records, seconds, rule))


def _report(args) -> int:
  from eval.report import build as report_lib
  from eval.store import store as store_lib

  if len(args.store) > 1 and not args.out:
    raise store_lib.StoreError(
      f"a report over {len(args.store)} stores has no default place: give --out DIR, e.g."
      " --out reports/combined"
    )
  stores = args.store if len(args.store) > 1 else args.store[0]
  report = report_lib.build(stores, args.select)
  out = args.out or f"{args.store[0]}/report"
  problem = store_lib.writable_problem(Path(out).parent)
  if problem:
    raise report_lib.ReportError(
      f"cannot write the report into {out}: {problem}; give --out a directory you can write,"
      " e.g. --out /tmp/report"
    )
  with store_lib.naming(out):  # a write refused (disk full) names the report's directory
    written = report_lib.write(report, out, args.format or report_lib.FORMATS, args.png)
  for path in written:
    print(f"wrote {path}")
  print(f"figures: {out}/figures ({len(report.figures)} as SVG{' and PNG' * args.png})")
  return 0


def _labels(records: list[dict]) -> dict[str, str]:
  """Each configuration's label (eval.store.configs), saying too how records under a
  built-in protocol's name depart from it (eval.run.protocol.departures): "quick (100 steps)"."""
  from collections import defaultdict

  from eval.run import protocol as protocol_lib
  from eval.store import configs
  from eval.store import store as store_lib

  names = configs.labels(r["protocol"] for r in records)
  seeds, settings = defaultdict(set), defaultdict(lambda: defaultdict(list))
  for r in records:
    text = store_lib.canonical_json(r["protocol"])
    seeds[text].add(r["seed"])
    settings[text][r["optimizer"]].append(r["hparams"])
  fields = {store_lib.canonical_json(r["protocol"]): r["protocol"] for r in records}
  for text, label in names.items():
    name = fields[text]["protocol"]
    extra = protocol_lib.departures(name, fields[text], seeds[text], settings[text])
    extra = [e for e in extra if e not in label]
    if extra:
      head, _, rest = label.partition(" (")
      names[text] = f"{head} ({', '.join([*filter(None, [rest.rstrip(')')]), *extra])})"
  return names


def _store_list(args) -> int:
  from eval.report import summary
  from eval.store import configs, samples, tidy
  from eval.store import store as store_lib

  records = store_lib.valid_records(args.store)
  by_key = dict(zip((r["key"] for r in records), summary.endings_of(records), strict=True))
  plan = store_lib.read_plan_checked(args.store)
  left_out = {r["key"] for r in samples.count(records, plan).left_out}  # one store: keys unique
  rows = tidy.rows(configs.relabel(records, _labels(records)))
  print(f"{args.store}: {len(rows):,} records (rllc store show {args.store} KEY shows one)")
  task_width = max(len(r["task"]) for r in rows)
  opt_width = max(len(r["optimizer"]) for r in rows)
  for row in rows:
    hparams = ", ".join(f"{k[3:]} {row[k]}" for k in sorted(row) if k.startswith("hp."))
    accuracy = row.get("final.test_accuracy")
    if row["status"] != "ok":
      result = row["status"]
    elif by_key[row["key"]] != "ok":  # exploded, or a final metric not finite
      loss = row.get("final.train_loss")
      result = by_key[row["key"]] + (f" (loss {loss:.4g})" if isinstance(loss, float) else "")
    elif isinstance(accuracy, float):
      result = f"acc {100 * accuracy:.2f} %"
    else:  # a task that reports no accuracy (tasks.interface)
      result = f"loss {row['final.test_loss']:.4f}"
    print(
      f"{row['key'][:12]}  {row['task']:{task_width}s}  {row['optimizer']:{opt_width}s}"
      f"  {row['protocol']}  seed {row['seed']}  {result}  {hparams}"
      + ("  (not counted: another record of this seed counts)" if row["key"] in left_out else "")
    )
  for line in samples.mixed_machines(records):
    print(f"note: {line}")
  return 0


def _store_show(args) -> int:
  from eval.store import records as records_lib
  from eval.store import samples
  from eval.store import store as store_lib

  records = store_lib.valid_records(args.store)
  found = [r for r in records if r["key"].startswith(args.key)]
  if len(found) != 1:
    which = "no record" if not found else f"{len(found)} records"
    raise store_lib.StoreError(
      f"{which} in {args.store} with a key starting {args.key!r}; give more of the key (rllc"
      f" store list {args.store} shows the first 12 characters of each)"
    )
  record = dict(found[0])
  count = samples.count(records, store_lib.read_plan_checked(args.store))
  same_cell = [r for r in count.counted if records_lib.group(r) == records_lib.group(record)]
  notes = samples.mixed_machines(same_cell)
  if any(r is found[0] for r in count.left_out):
    notes.append(
      "this record does not count: another record of its setting and seed does, or"
      " the plan keys its run otherwise (other code, versions or layout)"
    )
  if not args.curves:
    record["curves"] = {
      name: f"{len(values)} points (--curves shows them)"
      for name, values in record.get("curves", {}).items()
    }
  print(json.dumps(record, indent=2, sort_keys=True))
  for line in notes:
    print(f"note: {line}")
  return 0


def _store_export(args) -> int:
  from eval.store import tidy

  for target in (args.out, args.curves):
    if target is not None and Path(target).suffix.lower() == ".parquet":
      _needs("pyarrow", f"writing {target}", "pip install pyarrow")
  runs, points = tidy.export(args.stores, args.out, args.curves)
  print(f"wrote {args.out}: {runs:,} runs, one row each")
  if args.curves:
    print(f"wrote {args.curves}: {points:,} curve points (key, curve, step, unit, value)")
  return 0


def _store_verify(args) -> int:
  from eval.run import verify
  from eval.store import machine
  from eval.store import store as store_lib

  if args.jobs < 1:
    raise store_lib.StoreError(f"--jobs {args.jobs}: give a positive number of jobs, e.g. --jobs 1")
  chosen = verify.draw(args.store, args.jobs, args.seed)
  verify.use_devices(chosen)
  env = store_lib.environment()
  here = machine.fingerprint()
  print(
    f"verify {args.store}: {len(chosen)} job(s) drawn with seed {args.seed}, rerun on"
    f" {here['class']} ({here['cpu']}), jax {env['versions']['jax']}, {env['devices']} device(s)"
  )
  checks = []
  for sample in chosen:
    checks.append(verify.rerun(sample, env, data_dir=args.data_dir))
    print(verify.line(checks[-1]), flush=True)
  if any(c.broken_promise for c in checks):
    print(
      "rllc: records made on this machine class by this code and stack did not come back bit"
      " for bit: please report it, with this output",
      file=sys.stderr,
    )
    return 1
  return 0


def _version() -> str:
  from importlib import metadata

  try:
    version = metadata.version("rllc-suite")
  except metadata.PackageNotFoundError:
    version = "unknown (not installed)"
  try:
    commit = subprocess.run(
      ["git", "rev-parse", "--short", "HEAD"],
      cwd=Path(__file__).resolve().parents[2],
      capture_output=True,
      text=True,
      check=True,
    ).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    commit = ""
  return f"rllc {version}" + (f" (git {commit})" if commit else "")


def _parse_law(text: str, prop) -> list[float]:
  law = []
  for i, item in enumerate(text.split(",")):
    try:
      value = float(item)
    except ValueError:
      value = None
    if value is None or not math.isfinite(value):
      raise ValueError(
        f"--law {text!r}: entry {i + 1} {item.strip()!r} is not a finite number; give k = {prop.k}"
        f" numbers, one per memory unit ({', '.join(prop.labels)}), comma-separated, e.g. --law"
        f" {','.join(['1'] * prop.k)} (--law=-0.5,... for a leading minus)"
      )
    law.append(value)
  return law


def _analyze(args) -> int:
  from rllc.analysis import linear

  try:
    prop = linear.propagator(args.spec)
    law = _parse_law(args.law, prop)
    eff = linear.effective(prop, law)
    if args.lr is not None and not args.lr > 0:
      raise ValueError(f"--lr {args.lr:g}: the learning rate h must be positive, e.g. --lr 0.01")
  except ValueError as err:
    print(f"rllc: {err}", file=sys.stderr)
    return 2
  print(f"propagator            {prop}")
  print(f"k                     {prop.k}")
  print(f"units                 {', '.join(prop.labels)}")
  print(f"law L                 {', '.join(f'{x:g}' for x in law)}")
  print(f"spectral radius       {eff.spectral_radius:.6g}")
  print(f"W = a^T (I-B)^-1 L    {eff.W:.6g}")
  print(f"S = a^T B (I-B)^-2 L  {eff.S:.6g}")
  if args.lr is not None:
    print(f"effective lr h*W      {args.lr * eff.W:.6g}")
    print(f"penalty h*S/2         {args.lr * eff.penalty:.6g}")
  print("memoryless: theta <- theta - h W grad[L + (h S/2) |grad L|^2] (memory paper, eq. 9)")
  if eff.S > 0:
    print("S > 0: the memory regularizes (it implicitly penalizes the gradient norm)")
  elif eff.S < 0:
    print("S < 0: the memory anti-regularizes (it implicitly rewards a large gradient norm)")
  else:
    print("S = 0: the memory neither regularizes nor anti-regularizes")
  if eff.W <= 0:
    print("W <= 0: this law does not descend the loss to first order; the reading does not apply")
  return 0


def _rules(text: str) -> tuple[str, ...]:
  from eval.store.rules import RULES

  names = tuple(n.strip() for n in text.split(",") if n.strip())
  unknown = [n for n in names if n not in RULES]
  if unknown or not names:
    raise argparse.ArgumentTypeError(
      f"unknown selection rule(s) {', '.join(unknown) or repr(text)}; valid: {','.join(RULES)}"
    )
  return names


def _formats(text: str) -> tuple[str, ...]:
  from eval.report import build as report_lib

  names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
  unknown = [n for n in names if n not in report_lib.FORMATS]
  if unknown or not names:
    raise argparse.ArgumentTypeError(
      f"unknown format(s) {', '.join(unknown) or repr(text)}; valid: {','.join(report_lib.FORMATS)}"
    )
  return names


def _doc(module: str) -> str:
  """A module's docstring, read from its source: a --help page need not import the module."""
  source = Path(importlib.util.find_spec(module).origin).read_text()
  return ast.get_docstring(ast.parse(source), clean=False)


class _VersionAction(argparse.Action):
  """--version: the version, looked up only when asked (it runs git)."""

  def __init__(self, option_strings, dest, **kwargs):
    super().__init__(option_strings, dest, nargs=0, help="show the version and exit", **kwargs)

  def __call__(self, parser, namespace, values, option_string=None):
    print(_version())
    parser.exit()


class _ImportableDataSets(Sequence):
  """The names `rllc data import` takes, listed when first read (tasks.data imports NumPy)."""

  def _names(self) -> list[str]:
    from tasks import data as data_lib

    return [n for n in data_lib.DATASETS if n != "digits"]

  def __getitem__(self, index):
    return self._names()[index]

  def __len__(self) -> int:
    return len(self._names())


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
    prog="rllc", description="Memory optimizers: benchmarks, tasks and data."
  )
  parser.add_argument("--version", action=_VersionAction)
  parser.add_argument(
    "--verbose",
    action="store_true",
    help="let TensorFlow, XLA and absl print their start-up and log lines (default: silenced)",
  )
  parser.add_argument(
    "--debug",
    action="store_true",
    help=f"an error raises, with its traceback, instead of one line (also: {DEBUG_VARIABLE}=1)",
  )
  commands = parser.add_subparsers(dest="command", required=True)
  _add_bench(commands)
  _add_report(commands)
  _add_store(commands)
  optimizers = commands.add_parser("optimizers", help="list the optimizers and default grids")
  optimizers.set_defaults(run=_optimizers)
  tasks = commands.add_parser("tasks", help="list the tasks and the state of their data")
  tasks.add_argument("--data-dir", help="where data files not yet imported may be")
  tasks.set_defaults(run=_tasks)
  _add_analyze(commands)
  _add_data(commands)
  return parser


def _add_bench(commands) -> None:
  """`rllc bench`."""
  bench = commands.add_parser(
    "bench", help="train a protocol's grids into a store (the main job)", description=__doc__
  )
  bench.formatter_class = argparse.RawDescriptionHelpFormatter
  bench.add_argument("tasks", nargs="*", metavar="TASK", help="tasks (default: the profile's)")
  bench.add_argument("--optimizers", help="comma-separated names or propagator specs")
  bench.add_argument("--profile", default="quick", help="quick (default), paper, fair or FILE.toml")
  bench.add_argument("--seeds", type=int, help="seeds 0..N-1 instead of the profile's")
  bench.add_argument("--steps", type=int, help="training steps instead of the profile's")
  bench.add_argument("--out", help="the store directory (default: runs/PROFILE_NAME)")
  bench.add_argument("--executor", choices=("local", "ray"), default="local")
  bench.add_argument("--address", help="Ray cluster address (default: a local instance)")
  bench.add_argument("--data-dir", help="where data files not yet imported may be")
  bench.add_argument(
    "--dry-run",
    action="store_true",
    help="print the plan (jobs, runs, what the store has) and an estimated time; train nothing",
  )
  bench.add_argument(
    "--quiet", action="store_true", help="print nothing but errors and the final summary"
  )
  bench.add_argument(
    "--progress-every",
    type=float,
    default=progress_lib.EVERY,
    metavar="SECONDS",
    help="when the output is not a terminal, a progress line at least this often (default: 30)",
  )
  bench.set_defaults(run=_bench)


def _add_report(commands) -> None:
  """`rllc report`."""
  report = commands.add_parser(
    "report",
    help="tables, significance tests and figures of a store",
    description=_doc("eval.report.build"),
  )
  report.formatter_class = argparse.RawDescriptionHelpFormatter
  report.add_argument(
    "store",
    nargs="+",
    help="a store directory written by rllc bench; several make one report (give --out)",
  )
  report.add_argument("--format", type=_formats, help="md,tex,html (default: all)")
  report.add_argument(
    "--select",
    type=_rules,
    help="selection rule(s), a table each: valid_loss, valid_accuracy or both comma-separated"
    " (default: the rule the store's protocol names, valid_loss unless its TOML says select)",
  )
  report.add_argument("--out", help="the report directory (default: STORE/report)")
  report.add_argument(
    "--png",
    action="store_true",
    help="PNG files beside the SVG figures (not linked; default: SVG only)",
  )
  report.set_defaults(run=_report)


def _add_store(commands) -> None:
  """`rllc store list|show|export|verify`."""
  store = commands.add_parser(
    "store", help="a store's records: list, show one, export, verify here"
  )
  store_commands = store.add_subparsers(dest="store_command", required=True)
  listing = store_commands.add_parser("list", help="one line per record")
  listing.add_argument("store", help="a store directory written by rllc bench")
  listing.set_defaults(run=_store_list)
  show = store_commands.add_parser("show", help="one record, as JSON")
  show.add_argument("store", help="a store directory written by rllc bench")
  show.add_argument("key", help="the record's key or its first characters (rllc store list)")
  show.add_argument("--curves", action="store_true", help="the curves too, every point")
  show.set_defaults(run=_store_show)
  export = store_commands.add_parser(
    "export", help="the tidy per-run table as CSV or Parquet", description=_doc("eval.store.tidy")
  )
  export.formatter_class = argparse.RawDescriptionHelpFormatter
  export.add_argument(
    "stores", nargs="+", metavar="store", help="store directories written by rllc bench"
  )
  export.add_argument("--out", required=True, help="FILE.csv or FILE.parquet")
  export.add_argument("--curves", help="also the curves, in long form, to FILE.csv|parquet")
  export.set_defaults(run=_store_export)
  verify = store_commands.add_parser(
    "verify",
    help="rerun a sample of jobs here and compare their numbers",
    description=_doc("eval.run.verify"),
  )
  verify.formatter_class = argparse.RawDescriptionHelpFormatter
  verify.add_argument("store", help="a store directory written by rllc bench")
  verify.add_argument("--jobs", type=int, default=1, help="jobs to draw and rerun (default 1)")
  verify.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0)")
  verify.add_argument("--data-dir", help="where data files not yet imported may be")
  verify.set_defaults(run=_store_verify)


def _add_analyze(commands) -> None:
  """`rllc analyze`."""
  analyze = commands.add_parser(
    "analyze",
    help="effective learning rate and implicit penalty of a fixed law",
    description=_doc("rllc.analysis.linear"),
  )
  analyze.formatter_class = argparse.RawDescriptionHelpFormatter
  analyze.add_argument("spec", help="a propagator spec, e.g. 'M(0.9)+M(0)'")
  analyze.add_argument(
    "--law", required=True, help="one number per unit, e.g. 0.9,1 (--law=-0.5,1 if negative)"
  )
  analyze.add_argument("--lr", type=float, help="the learning rate h")
  analyze.set_defaults(run=_analyze)


def _add_data(commands) -> None:
  """`rllc data status|import`."""
  data = commands.add_parser("data", help="data sets: import, status")
  data_commands = data.add_subparsers(dest="data_command", required=True)
  status = data_commands.add_parser("status", help="the state of every data set")
  status.add_argument("--data-dir", help="where data files not yet imported may be")
  status.set_defaults(run=_data_status)
  importer = data_commands.add_parser("import", help="parse, verify and cache a data set")
  importer.add_argument(
    "name", choices=_ImportableDataSets(), metavar="NAME", help="one of %(choices)s"
  )
  source = importer.add_mutually_exclusive_group(required=True)
  source.add_argument("--from", dest="source", help="directory of the files")
  source.add_argument("--download", action="store_true", help="through tensorflow-datasets")
  importer.set_defaults(run=_data_import)


# The domain errors a command may raise: (module, class, exit status; None: the error's own
# exit_code). Named, not imported: a module that was never imported raised none of its errors.
_ERRORS = (
  ("eval.cli.commands", "MissingExtraError", 2),
  ("tasks.data", "DataError", 1),
  ("eval.report.build", "ReportError", 1),
  ("eval.run.protocol", "ProtocolError", 2),
  ("eval.store.store", "StoreError", None),
)


def _exit_status(err: Exception) -> int | None:
  """The exit status of a domain error, or None for any other exception."""
  for module, name, status in _ERRORS:
    error_class = getattr(sys.modules.get(module), name, None)
    if error_class is not None and isinstance(err, error_class):
      return err.exit_code if status is None else status
  return None


# Commands that import TensorFlow or learned_optimization, whose Python side logs through absl.
_ABSL_COMMANDS = ("bench", "data")


def quiet_libraries(command: str) -> None:
  """Silences the start-up lines of TensorFlow, XLA and absl (not their errors).

  TensorFlow and XLA read TF_CPP_MIN_LOG_LEVEL once, when they are imported: level 2 drops
  their INFO and WARNING lines (the oneDNN notice, the CPU-instructions notice, absl's
  "All log messages before absl::InitializeLog()"). A value already in the environment wins.
  absl's Python logging is set to errors only for the commands that import its users.

  Args:
    command: the subcommand about to run.
  """
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  if command in _ABSL_COMMANDS:
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)


def same_tensorflow_everywhere() -> None:
  """Turns TensorFlow's oneDNN custom operations off, as the environment allows.

  TensorFlow turns them on by itself on some CPUs (seen: AMD EPYC) and not on
  others, and they change its float results by round-off. The suite trains
  in JAX; TensorFlow only reads data (tensorflow-datasets, a user task's own
  iterators), and off, what it reads is the same on every machine. Off also
  drops its start-up notice, which ignores TF_CPP_MIN_LOG_LEVEL. A value
  already in the environment wins.
  """
  os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


# The exit status of a command whose reader went away (`rllc optimizers | head -1`): 128 +
# SIGPIPE, what a shell reports for a command killed by the signal, so a script can tell
# that the output was cut short; nothing is printed.
BROKEN_PIPE = 141
DEBUG_VARIABLE = "RLLC_DEBUG"


def _debugging(args) -> bool:
  return args.debug or os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")


def _stdout_gone() -> bool:
  """Whether standard output is a pipe whose reader has gone (poll reports an error on it)."""
  import select

  try:
    poll = select.poll()
    poll.register(sys.stdout.fileno(), select.POLLOUT)
    return any(events & select.POLLERR for _, events in poll.poll(0))
  except (AttributeError, OSError, ValueError):  # not a file (a test's StringIO), or closed
    return False


def _quiet_exit() -> int:
  """After a broken pipe: standard output pointed at /dev/null, so that Python's flush at
  exit raises nothing either."""
  devnull = os.open(os.devnull, os.O_WRONLY)
  os.dup2(devnull, sys.stdout.fileno())
  os.close(devnull)
  return BROKEN_PIPE


def _message(err: Exception) -> tuple[str, int]:
  """The one line an exception becomes, and the exit status."""
  status = _exit_status(err)
  if status is not None:
    return str(err), status
  if isinstance(err, OSError):  # a file system refusal no check foresaw: the path and the reason
    where = f"{err.filename}: " if err.filename else ""
    return f"{where}{err.strerror or err}", 1
  lines = [line for line in str(err).splitlines() if line.strip()]
  what = f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
  where = "".join(f" {note}" for note in getattr(err, "__notes__", ()))  # e.g. the job
  return (
    f"unexpected error{where}, {what} (rllc --debug, or {DEBUG_VARIABLE}=1, shows the traceback)",
    1,
  )


def _printable(stream) -> None:
  """Text with undecodable bytes (a path given as raw bytes) is written back as those bytes."""
  if hasattr(stream, "reconfigure"):
    stream.reconfigure(errors="surrogateescape")


def main(argv: list[str] | None = None) -> int:
  """Runs a command. Every exception that reaches here becomes one line on stderr, naming
  the culprit, and a non-zero status (2: bad input; 1: anything else); --debug or
  RLLC_DEBUG=1 raises it instead, with its traceback."""
  for stream in (sys.stdout, sys.stderr):
    _printable(stream)
  args = build_parser().parse_args(argv)
  same_tensorflow_everywhere()
  if not args.verbose:
    quiet_libraries(args.command)
  try:
    return args.run(args)
  except KeyboardInterrupt:
    print(
      "rllc: interrupted; every finished run is in the store, the unfinished job is not."
      " Run the same command again to finish.",
      file=sys.stderr,
    )
    return 130
  except BrokenPipeError:
    if _stdout_gone() and not _debugging(args):
      return _quiet_exit()
    raise
  except Exception as err:
    if _debugging(args):
      raise
    text, status = _message(err)
    one_line = " ".join(part.strip() for part in text.splitlines() if part.strip())
    print(f"rllc: {one_line}", file=sys.stderr)
    return status


if __name__ == "__main__":
  sys.exit(main())
