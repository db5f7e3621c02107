"""`rllc report DIR`: the results report of a store, from the store alone.

  rllc report runs/quick                       -> runs/quick/report/report.{md,tex,html}
  rllc report runs/quick --format md --out reports/quick

Reads the records, plan.json (the runs the benches meant to have) and
log.jsonl (job times) of a store once, and hands the records to
eval.store.tidy.store_frames, which makes the report's two frames: the runs
(one row per run that counts) and their curves in long form (one row per
run x step x unit). Every operation after that (selection, comparison,
statistics, budgets, overhead, grid axes, figure data, the summary, what is
missing, provenance) takes the frames, never a record. Trains nothing and
needs no network.
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
  verdict,
)
from eval.store import store as store_lib
from eval.store import tidy
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
  frames: tidy.Frames  # the runs that count (superseded ones left out) and their curves
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


def _missing(read: tidy.StoreFrames) -> list[str]:
  """What the store lacks, left out or mixed: planned runs without a record, settings short of
  seeds, superseded and repeated records, cells made on several machine classes."""
  absent = collections.Counter()
  planned = collections.Counter()
  for entry in read.plan.values():
    identity = entry["identity"]
    group = (identity["protocol"]["protocol"], identity["task"], identity["optimizer"])
    planned[group] += 1
    absent[group] += entry["key"] not in read.recorded
  missing = [
    f"protocol {p}, {task}, {opt}: {absent[p, task, opt]} of {planned[p, task, opt]} planned runs"
    " have no record (still running, or interrupted: run the bench command again)"
    for p, task, opt in sorted(absent)
    if absent[p, task, opt]
  ]
  missing += _short_settings(read.frames.runs)
  if read.superseded:
    missing.append(
      f"{read.superseded} record(s) of runs that the latest plan keys otherwise (other"
      " code, stack versions or layout) are left out"
    )
  if read.duplicates:
    missing.append(
      f"{read.duplicates} record(s) repeat a run (a setting and seed) that another record"
      " of this store already counts for (other code, versions or layout): left out, so each"
      " seed counts once"
    )
  return missing + list(read.mixed_machines)


_CELL = ["protocol", "task", "optimizer"]


def _short_settings(runs) -> list[str]:
  """Settings with fewer seeds than others of their grid (seen without a plan, too)."""
  lines = []
  for group, grid in runs.groupby(_CELL, sort=True):
    every = set(grid["seed"])
    for setting, seeds in grid.groupby("setting", sort=True)["seed"]:
      if set(seeds) != every:
        lines.append(
          f"protocol {group[0]}, {group[1]}, {group[2]}: setting {setting} lacks seed(s)"
          f" {sorted(every - set(seeds))}"
        )
  return lines


def _alternatives(values: set) -> str:
  return " or ".join(f"{v:,}" for v in sorted(values))


def _batches(values: set) -> str:
  """ "batch 128"; None is a learned_optimization task's own batches (or none, a quadratic)."""
  known = values - {None}
  parts = [f"batch {_alternatives(known)}"] if known else []
  return " or ".join(parts + ["the task's own batches"] * (None in values))


def _summary(runs, rules: dict[str, tuple[str, ...]]) -> str:
  parts = []
  for protocol, these in runs.groupby("protocol", sort=True):
    fields = {name: set(these[name]) for name in ("steps", "batch_size", "eval_every")}
    seeds = sorted(set(these["seed"]))
    says = " and, in a second table, ".join(
      f"{selection.rule_of(n).says} ({n})" for n in rules[protocol]
    )
    parts.append(
      f"Protocol {protocol}: {_alternatives(fields['steps'])} steps of"
      f" {_batches(fields['batch_size'])}, evaluated every"
      f" {_alternatives(fields['eval_every'])} steps, seeds {', '.join(map(str, seeds))}"
      f" ({len(these):,} runs); per task and optimizer, the setting of the grid with {says}"
      " over seeds is selected."
    )
  parts.append("A setting with a diverged seed is never selected.")
  if any(hparams.get("ema") is not None for hparams in runs["hparams"]):
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
    named[entry["identity"]["protocol"]["protocol"]] = rule
  return {p: (named.get(p, selection.DEFAULT_RULE),) for p in protocols}


def _provenance(runs) -> list[str]:
  versions = collections.defaultdict(set)
  for found in runs["versions"]:
    for package, version in found.items():
      versions[package].add(str(version))
  diverged = int((runs["status"] == "diverged").sum())
  absent = sorted(set(task_registry.task_names()) - set(runs["task"]))
  layouts = {f"{b} x{d}" for b, d in zip(runs["backend"], runs["devices"], strict=True)}
  items = [
    f"{len(runs):,} records, {diverged:,} of them diverged",
    "git commit(s): " + ", ".join(sorted({str(c) for c in runs["git_commit"]})),
    "training code hash(es): " + ", ".join(sorted(set(runs["code"]))),
    "versions: " + "; ".join(f"{p} {', '.join(sorted(v))}" for p, v in sorted(versions.items())),
    "backend and devices: " + ", ".join(sorted(layouts)),
    "machine class(es): " + ", ".join(sorted(set(runs["machine"]))),
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
  read = tidy.store_frames(records, plan)  # the report's one frame; no record is read after
  runs, plan = read.frames.runs, read.plan
  planned = {
    (e["identity"]["protocol"]["protocol"], e["identity"]["task"], e["identity"]["optimizer"])
    for e in plan.values()
  }
  protocols = sorted(set(runs["protocol"]) | {p for p, _, _ in planned})
  chosen_rules = protocol_rules(plan, protocols, rules)
  tables = [
    comparison.compare(runs, p, tuple(sorted((t, o) for q, t, o in planned if q == p)), rule)
    for p in protocols
    for rule in chosen_rules[p]
  ]
  tables = robustness.adjust(tables)  # Holm over all tests, intervals, seeds for power
  first = [t for t in tables if t.rule == chosen_rules[t.protocol][0]]
  missing = _missing(read) + _unplanned(first, planned)
  grids = robustness.grids_of(runs)
  reviews = [robustness.review(table, grids) for table in tables]
  title = " + ".join(_shown(root.resolve().name) for root in roots)
  parts = {
    "summary": _summary(runs, chosen_rules),
    "overhead": comparison.overhead(runs, log),
    "missing": missing or [_NOTHING_MISSING if plan else _NO_PLAN],
    "provenance": _provenance(runs),
    "answers": verdict.answers(first),
  }
  body = _sections(title, tables, reviews, read.frames, parts)
  return Report(
    title,
    body,
    read.frames,
    tables,
    reviews,
    *(parts[k] for k in ("overhead", "missing", "provenance")),
  )


def _unplanned(first: list[comparison.Comparison], planned: set) -> list[str]:
  """Cells nobody planned nor ran, in each protocol's first table (the plan's own gaps are
  listed by _missing)."""
  return [
    f"protocol {table.protocol}, {task}, {opt}: no record"
    for table in first
    for opt in table.optimizers
    for task in table.tasks
    if table.cells[opt, task, "loss"].state == "missing"
    and (table.protocol, task, opt) not in planned
  ]


def _sections(title, tables, reviews, frames, parts) -> tuple[document.Section, ...]:
  """The document: summary, comparison tables, review, overhead, figures, missing, provenance.

  The figures show the settings of each protocol's first rule.
  """
  first = {}
  for table in tables:
    first.setdefault(table.protocol, table)
  selected = [s for table in first.values() for s in table.selected.values()]
  specs = figures.specs(frames, selected, parts["overhead"])
  names = tuple(sorted(frames.runs["optimizer"].unique()))
  axes = comparison.grid_axes(frames.runs)
  head = document.heading(1, f"Results: {title}", blocks=[document.Paragraph(parts["summary"])])
  return (
    head,
    *sections.answer_section(parts["answers"]),
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
