"""Which records count: one (setting, seed) is one sample.

A store can hold several records of one run's identity (task, optimizer,
hyperparameters, seed, protocol): made by other code or stack versions, or
in another layout (a bench with 1 host device, then one with 2). Their keys
differ, their seeds do not, so counting both would count one seed twice. The
bench's summary, the report, `rllc store export` and `rllc store show` all
decide through `count`:

- a record whose identity the store's plan (plan.json: the newest bench's
  key of each identity) holds under another key is superseded;
- of the records left, one per identity counts: the plan's, or, where the
  plan does not name the identity, the one with the smallest key (any fixed
  choice would do; this one needs nothing but the records).

Records of one key never differ within a machine class; a cell whose
counted seeds come from more than one machine class is named by
`mixed_machines`, since their bits agree only within the cross-machine
tolerance (README, "Reproducibility").
"""

import collections
import dataclasses

from eval.store import machine
from eval.store import records as records_lib
from eval.store import store as store_lib


@dataclasses.dataclass(frozen=True)
class Count:
  """A store's records, split by whether they count."""

  counted: list[dict]  # one per identity: the samples
  superseded: list[dict]  # the plan keys their identity otherwise
  duplicates: list[dict]  # another record of the identity counts instead

  @property
  def left_out(self) -> list[dict]:
    return self.superseded + self.duplicates


def identity_digest(record: dict) -> str:
  """The digest plan.json files a record's identity under."""
  return store_lib.digest(records_lib.identity_of(record))


def count(records: list[dict], plan: dict[str, dict]) -> Count:
  """Which of `records` count (see the module docstring); each list sorted by key."""
  by_identity = collections.defaultdict(list)
  superseded = []
  for record in sorted(records, key=lambda r: r["key"]):
    entry = plan.get(identity_digest(record))
    if entry is not None and entry["key"] != record["key"]:
      superseded.append(record)
    else:
      by_identity[identity_digest(record)].append(record)
  counted, duplicates = [], []
  for same in by_identity.values():
    counted.append(same[0])
    duplicates += same[1:]
  return Count(sorted(counted, key=lambda r: r["key"]), superseded, duplicates)


def mixed_machines(records: list[dict]) -> list[str]:
  """One line per cell (protocol, task, optimizer) whose records come from several machine
  classes, naming them and their seed counts."""
  classes = collections.defaultdict(collections.Counter)
  for record in records:
    classes[records_lib.group(record)][machine.class_of(record)] += 1
  return [
    f"protocol {protocol}, {task}, {optimizer}: its runs were made on"
    f" {len(found)} machine classes ("
    + "; ".join(f"{name}: {n} runs" for name, n in sorted(found.items()))
    + "), whose bits agree only within the cross-machine tolerance"
    for (task, optimizer, protocol), found in sorted(classes.items())
    if len(found) > 1
  ]
