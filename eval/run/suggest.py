"""'Did you mean' for near-miss names (optimizers, tasks, hyperparameters, protocol keys)."""

import difflib
from collections.abc import Iterable

# Short names people type for a hyperparameter (the summary and names use them).
ALIASES = {
  "lr": "learning_rate",
  "law_lr": "law_learning_rate",
  "law-lr": "law_learning_rate",
  "wd": "weight_decay",
  "beta": "momentum",
}


def close(name: str, valid: Iterable[str], n: int = 3) -> list[str]:
  """The valid names closest to `name` (case-insensitive), best first; [] if none is close."""
  valid = list(valid)
  alias = ALIASES.get(name.lower())
  if alias in valid:
    return [alias]
  lowered = {v.lower(): v for v in valid}
  found = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.6)
  if not found:
    return []
  # Only those about as close as the best: 'mnist-mlpp' means mnist-mlp, not fmnist-mlp too.
  ratio = {f: difflib.SequenceMatcher(None, name.lower(), f).ratio() for f in found}
  best = max(ratio.values())
  return [lowered[f] for f in found if ratio[f] >= best - 0.03]


def hint(name: str, valid: Iterable[str]) -> str:
  """ " (did you mean 'adam'?)", or "" when no valid name is close."""
  found = close(name, valid)
  if not found:
    return ""
  return " (did you mean " + " or ".join(repr(f) for f in found) + "?)"
