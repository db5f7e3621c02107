"""Selection rules: which final validation metric of a record picks a setting, and which way.

A protocol names its rule (`select` in TOML, eval.run.protocol) and the report
applies it (eval.report.selection); both read the rules from here, below
them, so the run side needs nothing of the report's.

  valid_loss      the lowest mean final validation loss wins (the default);
  valid_accuracy  the highest mean final validation accuracy wins.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Rule:
  """A selection rule: which final validation metric, and which way is better."""

  name: str  # "valid_loss" or "valid_accuracy": the key of `final` in a record
  lower_is_better: bool
  says: str  # how a report words it


RULES = {
  "valid_loss": Rule("valid_loss", True, "the lowest mean final validation loss"),
  "valid_accuracy": Rule("valid_accuracy", False, "the highest mean final validation accuracy"),
}
DEFAULT_RULE = "valid_loss"
