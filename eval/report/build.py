"""`rllc report DIR`: the results report of a store, from the store alone.

  rllc report runs/quick                       -> runs/quick/report/report.{md,tex,html}
  rllc report runs/quick --format md --out reports/quick

Reads the records, plan.json (the runs the benches meant to have) and
log.jsonl (job times) of a store once; trains nothing and needs no network.
`build` is pure: it returns the Report, whose sections (eval.report.document)
hold every table, note and figure spec, and writes nothing. `write` draws the
figures (SVG, eval.report.draw; PNG beside them with `png`) and renders
report.md, report.tex and report.html (those asked for, eval.report.render)
into a fresh directory, then puts it in place of `out` in one rename, so an
interrupted or failed report leaves nothing half-written. A store that is
missing, empty or holds a corrupt record is refused with a message, before
anything is written.

A store with part of its grid still running gives a report of what is there,
and lists what is missing: planned runs without a record, and seeds a
setting lacks. Records of a run that the latest plan made under another key
(other code or versions) are superseded and left out.
"""

import collections
import dataclasses
import json
import os
import shutil
from pathlib import Path

from eval.report import (
  comparison,
  document,
  draw,
  figures,
  render,
  review_sections,
  robustness,
  sections,
  selection,
)
from eval.store import configs, machine, samples, tidy
from eval.store import records as records_lib
from eval.store import store as store_lib
from tasks import registry as task_registry

FORMATS = ("md", "tex", "html")
_SUFFIX = {"md": "report.md", "tex": "report.tex", "html": "report.html"}
_OURS = ("report.md", "report.tex", "report.html", "figures")  # what a report directory holds

_NOTHING_MISSING = "nothing: every planned run has a record"
_NO_PLAN = (
  "no plan.json (a store written before plans were kept), so only the seeds a setting lacks"
  " were checked: none"
)


class ReportError(Exception):
  """A store that cannot give a report, or an output that cannot be written."""


@dataclasses.dataclass(frozen=True)
class Report:
  """A store's report: its sections to render, and the data they were written from."""

  title: str
  sections: tuple[document.Section, ...]  # what every format renders, in order
  records: list[dict]  # the current records (superseded ones left out)
  tables: list[comparison.Comparison]  # one per protocol and rule
  reviews: list[robustness.Review]  # one per table
  overhead: list[dict]  # comparison.overhead's rows
  missing: list[str]  # what the store lacks, or a line saying nothing is missing
  provenance: list[str]  # where the numbers come from: commits, versions, machines

  @property
  def figures(self) -> tuple[document.FigureSpec, ...]:
    """Every figure of the report, in the order the sections show them."""
    return tuple(f for s in self.sections for f in s.figures)


def _read(root: Path) -> tuple[list[dict], dict, list[dict]]:
  """Records, plan and log of a store; ReportError if it has no records or a corrupt file."""
  if not root.is_dir():
    raise ReportError(f"no store at {root} (rllc bench --out {root} writes one)")
  store = store_lib.Store(root)
  records, problems = store.inspect()
  if problems:
    raise ReportError(
      f"{len(problems)} corrupt record(s) in {root}; rerun the rllc bench command that made the"
      " store (it moves corrupt records aside and trains them again), or delete them:\n  "
      + "\n  ".join(problems)
    )
  if not records:
    raise ReportError(f"no records in {root} (rllc bench --out {root} writes them)")
  try:
    return records, store.read_plan(), store.read_log()
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
    raise ReportError(f"{root}: plan.json or log.jsonl is unreadable ({err})") from None


def _current(records: list[dict], plan: dict) -> tuple[list[dict], list[str]]:
  """The records that count (eval.store.samples), and what is missing, left out or mixed."""
  keys = {r["key"] for r in records}
  count = samples.count(records, plan)
  absent = collections.Counter()
  planned = collections.Counter()
  for entry in plan.values():
    identity = entry["identity"]
    group = (records_lib.protocol_name(identity), identity["task"], identity["optimizer"])
    planned[group] += 1
    absent[group] += entry["key"] not in keys
  missing = [
    f"protocol {p}, {task}, {opt}: {absent[p, task, opt]} of {planned[p, task, opt]} planned runs"
    " have no record (still running, or interrupted: run the bench command again)"
    for p, task, opt in sorted(absent)
    if absent[p, task, opt]
  ]
  missing += _short_settings(count.counted)
  if count.superseded:
    missing.append(
      f"{len(count.superseded)} record(s) of runs that the latest plan keys otherwise (other"
      " code, stack versions or layout) are left out"
    )
  if count.duplicates:
    missing.append(
      f"{len(count.duplicates)} record(s) repeat a run (a setting and seed) that another record"
      " of this store already counts for (other code, versions or layout): left out, so each"
      " seed counts once"
    )
  missing += samples.mixed_machines(count.counted)
  return count.counted, missing


def _short_settings(records: list[dict]) -> list[str]:
  """Settings with fewer seeds than others of their grid (seen without a plan, too)."""
  seeds = collections.defaultdict(set)
  for r in records:
    group = (records_lib.protocol_name(r), r["task"], r["optimizer"])
    seeds[group, store_lib.canonical_json(r["hparams"])].add(r["seed"])
  every = collections.defaultdict(set)
  for (group, _), found in seeds.items():
    every[group] |= found
  return [
    f"protocol {group[0]}, {group[1]}, {group[2]}: setting {setting} lacks seed(s)"
    f" {sorted(every[group] - found)}"
    for (group, setting), found in sorted(seeds.items())
    if found != every[group]
  ]


def _alternatives(values: set) -> str:
  return " or ".join(f"{v:,}" for v in sorted(values))


def _batches(values: set) -> str:
  """ "batch 128"; None is a learned_optimization task's own batches (or none, a quadratic)."""
  known = values - {None}
  parts = [f"batch {_alternatives(known)}"] if known else []
  return " or ".join(parts + ["the task's own batches"] * (None in values))


def _summary(records: list[dict], rules: dict[str, tuple[str, ...]]) -> str:
  parts = []
  for protocol in sorted({records_lib.protocol_name(r) for r in records}):
    runs = [r for r in records if records_lib.protocol_name(r) == protocol]
    fields = {
      name: {r["protocol"][name] for r in runs} for name in ("steps", "batch_size", "eval_every")
    }
    seeds = sorted({r["seed"] for r in runs})
    says = " and, in a second table, ".join(
      f"{selection.rule_of(n).says} ({n})" for n in rules[protocol]
    )
    parts.append(
      f"Protocol {protocol}: {_alternatives(fields['steps'])} steps of"
      f" {_batches(fields['batch_size'])}, evaluated every"
      f" {_alternatives(fields['eval_every'])} steps, seeds {', '.join(map(str, seeds))}"
      f" ({len(runs):,} runs); per task and optimizer, the setting of the grid with {says}"
      " over seeds is selected."
    )
  parts.append("A setting with a diverged seed is never selected.")
  if any(r["hparams"].get("ema") is not None for r in records):
    parts.append(
      "An optimizer named NAME+ema(DECAY) is selected and reported by the exponential moving"
      " average of its parameters, evaluated beside its raw iterate in the same runs."
    )
  return " ".join(parts)


def protocol_rules(plan: dict, protocols: list[str], asked: tuple[str, ...] | None) -> dict:
  """The selection rule(s) of each protocol: those asked for, else the one its plan names.

  A protocol's bench writes its rule into plan.json (`select` in TOML); a store
  without one, or with two benches that named different rules, falls back to
  the default, valid_loss, or to the newest rule named.
  """
  if asked:
    return {p: tuple(asked) for p in protocols}
  named: dict[str, str] = {}
  for entry in plan.values():
    rule = entry.get("select", selection.DEFAULT_RULE)
    named[records_lib.protocol_name(entry["identity"])] = rule
  return {p: (named.get(p, selection.DEFAULT_RULE),) for p in protocols}


def _provenance(records: list[dict]) -> list[str]:
  env = [r["environment"] for r in records]
  versions = collections.defaultdict(set)
  for e in env:
    for package, version in e["versions"].items():
      versions[package].add(str(version))
  diverged = sum(r["status"] == "diverged" for r in records)
  absent = sorted(set(task_registry.task_names()) - {r["task"] for r in records})
  items = [
    f"{len(records):,} records, {diverged:,} of them diverged",
    "git commit(s): " + ", ".join(sorted({str(e.get("git_commit")) for e in env})),
    "training code hash(es): " + ", ".join(sorted({e["code"] for e in env})),
    "versions: " + "; ".join(f"{p} {', '.join(sorted(v))}" for p, v in sorted(versions.items())),
    "backend and devices: "
    + ", ".join(sorted({f"{e.get('backend')} x{e.get('devices')}" for e in env})),
    "machine class(es): " + ", ".join(sorted({machine.class_of(r) for r in records})),
  ]
  if absent:
    items.append("tasks of the suite with no record here, so no numbers: " + ", ".join(absent))
  return items


def _read_all(roots: list[Path]) -> tuple[list[dict], dict, list[dict]]:
  """Records (each key once), merged plans and logs of several stores (`rllc report A B`)."""
  records: dict[str, dict] = {}
  plan: dict = {}
  log: list[dict] = []
  for root in roots:
    found, their_plan, their_log = _read(root)
    records.update((r["key"], r) for r in found)
    plan.update(their_plan)
    log += their_log
  return [records[k] for k in sorted(records)], plan, log


def build(
  store_dir: str | os.PathLike | list[str | os.PathLike], rules: tuple[str, ...] | None = None
) -> Report:
  """The report of a store, or of several as one (no files written); ReportError if unusable.

  Records pool across stores as they would in one; a protocol name with two
  configurations (other steps, batch size, intervals) is two protocols,
  labelled by eval.store.configs, e.g. "quick (300 steps)".

  rules: selection rules (eval.report.selection.RULES) to show, a table per protocol
  and rule; default: the rule each protocol's plan names.
  """
  for rule in rules or ():
    if rule not in selection.RULES:
      raise ReportError(f"unknown selection rule {rule!r}; valid: {', '.join(selection.RULES)}")
  many = isinstance(store_dir, (list, tuple))
  roots = [Path(d) for d in store_dir] if many else [Path(store_dir)]
  records, plan, log = _read_all(roots)
  records, missing = _current(records, plan)
  names = configs.labels(
    [r["protocol"] for r in records] + [e["identity"]["protocol"] for e in plan.values()]
  )
  records, plan = configs.relabel(records, names), configs.relabel_plan(plan, names)
  planned = {
    (records_lib.protocol_name(e["identity"]), e["identity"]["task"], e["identity"]["optimizer"])
    for e in plan.values()
  }
  protocols = sorted({records_lib.protocol_name(r) for r in records} | {p for p, _, _ in planned})
  chosen_rules = protocol_rules(plan, protocols, rules)
  tables = [
    comparison.compare(records, p, tuple(sorted((t, o) for q, t, o in planned if q == p)), rule)
    for p in protocols
    for rule in chosen_rules[p]
  ]
  tables = robustness.adjust(tables)  # Holm over all tests, intervals, seeds for power
  first = [t for t in tables if t.rule == chosen_rules[t.protocol][0]]
  missing += _unplanned(first, planned)
  frame = tidy.report_frame(records)
  grids = robustness.grids_of(frame)
  reviews = [robustness.review(table, grids) for table in tables]
  title = " + ".join(_shown(root.resolve().name) for root in roots)
  parts = {
    "summary": _summary(records, chosen_rules),
    "overhead": comparison.overhead(records, log),
    "missing": missing or [_NOTHING_MISSING if plan else _NO_PLAN],
    "provenance": _provenance(records),
  }
  body = _sections(title, tables, reviews, records, frame, parts)
  return Report(
    title, body, records, tables, reviews, parts["overhead"], parts["missing"], parts["provenance"]
  )


def _unplanned(first: list[comparison.Comparison], planned: set) -> list[str]:
  """Cells nobody planned nor ran, in each protocol's first table (the plan's own gaps are
  listed by _current)."""
  return [
    f"protocol {table.protocol}, {task}, {opt}: no record"
    for table in first
    for opt in table.optimizers
    for task in table.tasks
    if table.cells[opt, task, "loss"].state == "missing"
    and (table.protocol, task, opt) not in planned
  ]


def _axes(records: list[dict]) -> dict:
  """(optimizer, task) -> the hyperparameters its grid varies (comparison.grid_axes), one
  pass over the records of each pair."""
  by_pair = collections.defaultdict(list)
  for r in records:
    by_pair[r["optimizer"], r["task"]].append(r)
  return {pair: comparison.grid_axes(runs, *pair) for pair, runs in by_pair.items()}


def _sections(title, tables, reviews, records, frame, parts) -> tuple[document.Section, ...]:
  """The document: summary, comparison tables, review, overhead, figures, missing, provenance.

  The figures show the settings of each protocol's first rule.
  """
  first = {}
  for table in tables:
    first.setdefault(table.protocol, table)
  selected = [s for table in first.values() for s in table.selected.values()]
  specs = figures.specs(records, selected, parts["overhead"])
  names = tuple(sorted(frame["optimizer"].unique()))
  axes = _axes(records)
  head = document.heading(1, f"Results: {title}", blocks=[document.Paragraph(parts["summary"])])
  return (
    head,
    document.heading(2, "Comparison"),
    *(s for table in tables for s in sections.comparison_sections(table, axes)),
    *review_sections.sections(reviews, names),
    sections.overhead_section(parts["overhead"]),
    *sections.closing_sections(specs, parts["missing"], parts["provenance"]),
  )


def _shown(name: str) -> str:
  """A file name as text: bytes that are not UTF-8 (kept by Python as surrogates) become U+FFFD,
  so the report's UTF-8 documents can hold it."""
  return os.fsencode(name).decode("utf-8", "replace")


def write(report: Report, out: str | os.PathLike, formats=FORMATS, png: bool = False) -> list[Path]:
  """Draws the report's figures (SVG; PNG too with `png`) and renders the formats asked for
  into `out`, replacing an earlier report there, in one rename; returns the documents."""
  out = Path(out)
  if out.exists() and (not out.is_dir() or set(os.listdir(out)) - set(_OURS)):
    raise ReportError(f"{out} exists and is not a report directory; give --out a new path")
  out.parent.mkdir(parents=True, exist_ok=True)
  staging = out.parent / f".{out.name}.tmp-{os.getpid()}"
  old = out.parent / f".{out.name}.old-{os.getpid()}"
  shutil.rmtree(staging, ignore_errors=True)
  staging.mkdir()
  try:
    (staging / "figures").mkdir()
    draw.write(report.figures, staging, png)
    texts = {"md": render.markdown, "tex": render.latex, "html": render.page}
    for name in formats:
      (staging / _SUFFIX[name]).write_text(texts[name](report), encoding="utf-8")
    if out.exists():
      os.replace(out, old)
    os.replace(staging, out)
  finally:
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
  return [out / _SUFFIX[name] for name in formats]
