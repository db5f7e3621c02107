"""Configurations of a protocol: which records may pool as seeds of one setting.

A record's `protocol` field is its protocol's name and training fields
(`Protocol.training_fields()`: steps, batch size, evaluation and logging
intervals). Everything in it changes what a record's numbers mean, so
records pool only when the whole field matches: two benches of "quick" with
another --steps are two configurations, never 2 seeds of one.

Two guards keep them apart:
- `rllc bench` refuses to add a second configuration of a protocol name to a
  store (`conflicts`), naming both, so a store holds one configuration per
  name;
- a store that mixes them anyway (written before that check, or merged by
  hand) is read as separate protocols: the selection and the report group by
  the whole field and `label` each configuration, "quick" when its name has
  one configuration and e.g. "quick (300 steps)" when it has several.
"""

from collections import defaultdict
from collections.abc import Iterable

from eval.store import store as store_lib

_WORDS = {
  "steps": lambda v: f"{v:,} steps",
  # None: a learned_optimization task's own batches (or none, a quadratic's)
  "batch_size": lambda v: "the task's own batches" if v is None else f"batch {v:,}",
  "eval_every": lambda v: f"eval every {v:,}",
  "log_every": lambda v: f"log every {v:,}",
}


def word(name: str, value) -> str:
  return _WORDS[name](value) if name in _WORDS else f"{name} {value}"


def describe(fields: dict) -> str:
  """E.g. "quick: 300 steps, batch 128, eval every 250, log every 10"."""
  order = [k for k in _WORDS if k in fields] + sorted(set(fields) - set(_WORDS) - {"protocol"})
  rest = ", ".join(word(k, fields[k]) for k in order)
  return f"{fields.get('protocol')}: {rest}"


def labels(configurations: Iterable[dict]) -> dict[str, str]:
  """Canonical JSON of each configuration -> its label (its name, plus what sets it apart)."""
  by_name: dict[str, dict[str, dict]] = defaultdict(dict)
  for fields in configurations:
    by_name[fields.get("protocol")][store_lib.canonical_json(fields)] = fields
  out = {}
  for name, found in by_name.items():
    if len(found) == 1:
      out.update(dict.fromkeys(found, name))
      continue
    keys = sorted({k for f in found.values() for k in f} - {"protocol"})
    differing = [
      k for k in keys if len({store_lib.canonical_json(f.get(k)) for f in found.values()}) > 1
    ]
    order = [k for k in _WORDS if k in differing] + [k for k in differing if k not in _WORDS]
    for text, fields in found.items():
      out[text] = f"{name} ({', '.join(word(k, fields.get(k)) for k in order)})"
  return out


def relabel(records: list[dict], names: dict[str, str] | None = None) -> list[dict]:
  """Shallow copies whose protocol name is the label of their configuration.

  Everything that groups by `record["protocol"]["protocol"]` then keeps the
  configurations apart. `names`: labels from `labels` over more configurations
  (a plan's too); default: over these records.
  """
  names = labels(r["protocol"] for r in records) if names is None else names
  return [{**r, "protocol": _labelled(r["protocol"], names)} for r in records]


def relabel_plan(plan: dict[str, dict], names: dict[str, str]) -> dict[str, dict]:
  """A plan.json whose identities carry their configuration's label as protocol name."""
  return {
    digest: {
      **entry,
      "identity": {
        **entry["identity"],
        "protocol": _labelled(entry["identity"]["protocol"], names),
      },
    }
    for digest, entry in plan.items()
  }


def _labelled(fields: dict, names: dict[str, str]) -> dict:
  return {**fields, "protocol": names[store_lib.canonical_json(fields)]}


def conflicts(fields: dict, held: Iterable[tuple[str, dict]]) -> list[dict]:
  """The configurations held, as (task, fields) pairs, with the name of `fields` but other
  values than those fields as that task trains under them (`as_trained`), each once."""
  found = {}
  for task, other in held:
    text = store_lib.canonical_json(other)
    mine = store_lib.canonical_json(as_trained(fields, task))
    if other.get("protocol") == fields.get("protocol") and text != mine:
      found[text] = other
  return [found[k] for k in sorted(found)]


def store_configurations(root) -> list[tuple[str, dict]]:
  """(task, protocol fields) of what a store already holds: from plan.json, else its records."""
  plan = store_lib.read_plan_checked(root)
  if plan:
    return [(e["identity"]["task"], e["identity"]["protocol"]) for e in plan.values()]
  records, _ = store_lib.Store(root).inspect()
  return [(r["task"], r["protocol"]) for r in records]


def as_trained(fields: dict, task: str) -> dict:
  """A protocol's fields as a task's records keep them: a learned_optimization task trains
  with its own batch size (None: its own iterators', or none), not the protocol's."""
  from tasks import registry as task_registry

  return {**fields, "batch_size": task_registry.batch_size_of(task, fields["batch_size"])}


def check(root, fields: dict) -> None:
  """StoreError (exit 2) if the store at `root` holds another configuration of this name.

  Each configuration held is compared with this protocol's fields as its own task would
  train under them (`as_trained`), so a task with its own batch size is no conflict.
  """
  other = conflicts(fields, store_configurations(root))
  if other:
    raise store_lib.StoreError(
      f"the store {root} already holds protocol {fields['protocol']!r} as "
      + "; ".join(describe(o) for o in other)
      + f"; this bench is {describe(fields)}. Records of two configurations under one name"
      " would pool as seeds of one protocol: give this bench another --out (e.g. --out"
      f" {root}-{fields['steps']}), or a TOML profile with another name"
    )
