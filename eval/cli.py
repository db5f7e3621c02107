"""The `rllc` command line.

  rllc tasks [--data-dir DIR]             every task and the state of its data
  rllc data import NAME --from DIR        parse, verify and cache a data set
  rllc data import NAME --download        the same through tensorflow-datasets (needs internet)
  rllc data status [--data-dir DIR]       the state of every data set

Bad input exits with status 2 and a message naming the culprit; missing or
corrupt data exits with status 1 and says how to provide it.
"""

import argparse
import sys

from tasks import data as data_lib
from tasks import registry


def _tasks(args) -> int:
  width = max(len(name) for name in registry.task_names())
  for name in registry.task_names():
    dataset = registry.dataset_of(name)
    print(f"{name:{width}s}  {dataset:13s}  {data_lib.status(dataset, data_dir=args.data_dir)}")
  return 0


def _data_status(args) -> int:
  for name in data_lib.DATASETS:
    print(f"{name:13s}  {data_lib.status(name, data_dir=args.data_dir)}")
  return 0


def _data_import(args) -> int:
  if args.download:
    print(f"{args.name}: {data_lib.load(args.name, download=True).source}")
    return 0
  path = data_lib.import_dataset(args.name, args.source)
  print(f"{args.name}: imported from {args.source} into {path}")
  return 0


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="rllc", description="Memory optimizers: tasks and data.")
  commands = parser.add_subparsers(dest="command", required=True)

  tasks = commands.add_parser("tasks", help="list the tasks and the state of their data")
  tasks.add_argument("--data-dir", help="where data files not yet imported may be")
  tasks.set_defaults(run=_tasks)

  data = commands.add_parser("data", help="data sets: import, status")
  data_commands = data.add_subparsers(dest="data_command", required=True)
  status = data_commands.add_parser("status", help="the state of every data set")
  status.add_argument("--data-dir", help="where data files not yet imported may be")
  status.set_defaults(run=_data_status)
  importer = data_commands.add_parser("import", help="parse, verify and cache a data set")
  importer.add_argument("name", choices=[n for n in data_lib.DATASETS if n != "digits"])
  source = importer.add_mutually_exclusive_group(required=True)
  source.add_argument("--from", dest="source", help="directory of the files")
  source.add_argument("--download", action="store_true", help="through tensorflow-datasets")
  importer.set_defaults(run=_data_import)
  return parser


def main(argv: list[str] | None = None) -> int:
  args = build_parser().parse_args(argv)
  try:
    return args.run(args)
  except data_lib.DataError as err:
    print(f"rllc: {err}", file=sys.stderr)
    return 1


if __name__ == "__main__":
  sys.exit(main())
