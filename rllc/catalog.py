"""The optimizer catalog: every optimizer of the suite, declared once.

  entry = catalog.lookup("adam")           # or a spec: "M(0.9)+M(0)", "M(0.9)@ones", "lm:M(0.9)"
  resolved = entry.resolve({"learning_rate": 1e-3})   # defaults filled, names checked
  entry.result_name(resolved)              # "Adam_lr0.001_b10.9_b20.999_eps1e-08"
  entry.buffers(resolved)                  # 2
  entry.transformation(**resolved)         # the optax transformation (traced values are fine)

An `Entry` holds all that the suite knows about an optimizer, and the
registry (`rllc.optimizer`), the protocols' default grids (eval.run.protocol),
the records' family and the reports' marks (eval.report.comparison) all read
it from here:

- its name, and its factory: "module:function", imported on the first
  build, so that this module imports neither JAX nor optax (the light
  commands, `rllc optimizers` and `rllc report`, read the catalog);
- its family, declared (FAMILIES says which families are ours);
- its hyperparameters, with types, valid values and defaults. A default is
  the factory's own, unless the entry declares an override and says why; a
  test checks every entry against its factory's signature, so the two cannot
  drift. The valid values (a `Domain`: an interval, or names) are declared
  once per hyperparameter name in DOMAINS, and `Hyperparameter.problem` says
  why a value is not one of them: the protocols check every value with it
  before anything is built;
- its buffers: parameter-sized arrays in its state (an int, or a function of
  the resolved hyperparameters; a propagator: its k units);
- its quick and paper grids;
- its results name, by one rule: the label, the bracket (a propagator's
  spec, or a hyperparameter's value, such as Lion-K's kernel), then
  `_<short><value>` for each key field that is shown: always, when it
  differs from its default, or under a declared condition. Flags show
  `_<short>` alone. A results name is the stable key of results: it never
  changes for a given optimizer and setting;
- its gain: the step it takes on a constant gradient per unit learning
  rate (1, 1 / (1 - beta) for heavy ball, W(L_t) for a memory), from which
  the engine records the effective step (rllc.analysis.step).

Every entry also takes the schedule and EMA options of rllc.schedule
(`schedule`, `warmup`, `total_steps`, `ema`), by name ("momentum+cosine(0.05)",
bound like SPEC@CONVENTION) or as hyperparameters. They resolve after the
entry's own and only when they differ from a constant learning rate without
an EMA, and add `_cosine_wu0.05_T10000`, `_ema0.999` to the results name: a
plain optimizer's hyperparameters, name and key are what they were.

Two entries are templates for propagator specs: `RLLC` for a spec such as
"M(0.9)+M(0)", which may end in `@CONVENTION`, the initial law L_0 (`ones`
or `normalized`; the same as the hyperparameter `initial_law`, but part of
the optimizer's name, so that a protocol can list one propagator under two
conventions), and `FIXED_LAW` for "lm:" and a spec. `lookup` parses the spec
(this imports JAX: the propagator module is built on it) and binds it.

Naming only ever sees concrete values: the benchmark engine builds one
program for a whole grid, from traced hyperparameters
(`entry.transformation`), and each record's name from its concrete values
(`entry.result_name`).

The suite's catalog is DEFAULT. `using(catalog)` makes another one active for
a scope (e.g. a test's, with one more entry); everything that looks an
optimizer up (rllc.optimizer, the protocols, the bench, the report) then
sees it. The active catalog is a process-wide setting, not a per-thread one.
"""

import contextlib
import dataclasses
import importlib
import math
import numbers
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from rllc import schedule as schedule_lib

FIXED_LAW_PREFIX = "lm:"
INITIAL_LAW_SEPARATOR = "@"
# The conventions for RLLC's initial law, as rllc.memory.INITIAL_LAWS names
# them (a test checks that they agree; this module does not import JAX).
INITIAL_LAWS = ("ones", "normalized")


class _Required:
  def __repr__(self) -> str:
    return "REQUIRED"


REQUIRED: Any = _Required()  # the default of a hyperparameter that has none
ALWAYS = "always"  # a key field shown in every name
DIFFERS = "differs"  # a key field shown when it differs from its default
UNITS = "k"  # the buffers of a propagator: its memory units
# The gain of a memory on a constant gradient: W(L_t) = a^T (I - B)^{-1} L_t of
# its law at each step (the memory paper's W; rllc.analysis.linear).
LAW_GAIN = "law"


def unit_gain(resolved: Mapping[str, Any], learning_rate: float) -> float:
  """A step of lr(t) times the (normalized) gradient: SGD, Adam-like, sign, dampened EMAs."""
  del resolved, learning_rate
  return 1.0


def heavy_ball_gain(field: str) -> Callable[[Mapping[str, Any], float], float]:
  """Undampened momentum m <- beta m + g: on a constant gradient, a step of lr / (1 - beta)."""

  def gain(resolved, learning_rate):
    del learning_rate
    return 1.0 / (1.0 - resolved[field])

  return gain


@dataclasses.dataclass(frozen=True)
class Family:
  """A family of optimizers; reports compare ours against the best that is not ours."""

  name: str
  ours: bool  # the suite's own methods (RLLC, fixed laws, adaptive memory)
  about: str


# In the order reports list their rows.
FAMILIES = (
  Family(
    "baseline",
    False,
    "optax's SGD, momentum, Nesterov, Adam(W), NAdam(W); EMA momentum (eq. 5 of the AM paper)",
  ),
  Family("sign", False, "sign-based steps: Lion, Lion-K, signum"),
  Family("mixture", False, "AdEMAMix: a fast and a slow EMA, mixed"),
  Family("orthogonal", False, "Muon: orthogonalized momentum"),
  Family("nested", False, "the nested-learning optimizers"),
  Family("adaptive-memory", True, "AM-SGD, AM-MGD, AM-AdamW and their variants"),
  Family("fixed-law", True, "a propagator's memory with a fixed law: lm:SPEC"),
  Family("rllc", True, "RLLC on a propagator spec"),
)


@dataclasses.dataclass(frozen=True)
class Domain:
  """The values a hyperparameter takes: an interval of reals (or of integers), or names.

  A real or an integer must be finite and inside [low, high], each end open
  where declared; a vector's entries must be finite; a name one of `choices`.
  """

  low: float = -math.inf
  high: float = math.inf
  open_low: bool = False
  open_high: bool = False
  choices: tuple[str, ...] = ()  # the names a "str" or "str or vector" hyperparameter takes

  def contains(self, x: float) -> bool:
    above = x > self.low if self.open_low else x >= self.low
    below = x < self.high if self.open_high else x <= self.high
    return math.isfinite(x) and above and below

  def __str__(self) -> str:
    low = "-inf" if self.low == -math.inf else format_real(self.low)
    high = "inf" if self.high == math.inf else format_real(self.high)
    opens = (self.open_low or self.low == -math.inf, self.open_high or self.high == math.inf)
    return f"{'(['[not opens[0]]}{low}, {high}{')]'[not opens[1]]}"


@dataclasses.dataclass(frozen=True)
class Hyperparameter:
  """One hyperparameter of an optimizer."""

  name: str  # the factory's argument
  type: str  # one of TYPES
  default: Any = REQUIRED
  override: str = ""  # why the default differs from the factory's ("": it is the factory's)
  domain: Domain = Domain()  # its valid values (DOMAINS declares them by name)

  def takes(self) -> str:
    """What it takes, in words: "a real number in [0, 1)", "true or false", ..."""
    parts = []
    for kind in self.type.split(" or "):
      if kind in ("float", "int"):
        number = "a real number" if kind == "float" else "an integer"
        parts.append(f"{number} in {self.domain}")
      elif kind == "str":
        parts.append("one of " + ", ".join(repr(c) for c in self.domain.choices))
      elif kind == "vector":
        parts.append(f"a list of at most {MAX_VECTOR} finite real numbers")
      else:  # "bool", "None", "schedule"
        parts.append(_WORDS[kind])
    return " or ".join(parts)

  def problem(self, value) -> str | None:
    """Why `value` is not one of its values (e.g. "b1 = 1.5: b1 takes a real number in
    [0, 1)"), or None if it is. Nothing else is checked here: a law's length, say, is its
    optimizer's to check."""
    if not any(_fits(kind, value, self.domain) for kind in self.type.split(" or ")):
      shown = {True: "true", False: "false"}.get(value) if isinstance(value, bool) else None
      shown = shown or repr(list(value) if isinstance(value, tuple) else value)
      shown = shown if len(shown) <= 80 else shown[:77] + "..."
      return f"{self.name} = {shown}: {self.name} takes {self.takes()}"
    return None


TYPES = (
  "float",
  "int",
  "bool",
  "str",
  "vector",
  "float or None",
  "float or schedule",
  "str or vector",
)
_WORDS = {"bool": "true or false", "None": "none", "schedule": "an optax schedule"}
MAX_VECTOR = 256  # entries of a vector hyperparameter (a law: one per memory unit, rllc.spec)


def _real(value) -> bool:
  """A real number: not a bool, which Python counts as an int."""
  return isinstance(value, numbers.Real) and not isinstance(value, bool)


def as_float(value: numbers.Real) -> float:
  """A real as a float; an integer too large for one (TOML's have no bound) is +-inf."""
  try:
    return float(value)
  except OverflowError:
    return math.inf if value > 0 else -math.inf


def _fits(kind: str, value, domain: Domain) -> bool:
  if kind == "float":
    return _real(value) and domain.contains(as_float(value))
  if kind == "int":
    return (
      isinstance(value, numbers.Integral)
      and not isinstance(value, bool)
      and domain.contains(as_float(value))
    )
  if kind == "bool":
    return isinstance(value, bool)
  if kind == "str":
    return isinstance(value, str) and value in domain.choices
  if kind == "vector":
    return (
      isinstance(value, (tuple, list))
      and 0 < len(value) <= MAX_VECTOR
      and all(_real(x) and math.isfinite(as_float(x)) for x in value)
    )
  if kind == "None":
    return value is None
  return callable(value)  # "schedule": an optax schedule (the Python API's; TOML has none)


@dataclasses.dataclass(frozen=True)
class Key:
  """One `_<short><value>` of a results name."""

  short: str  # its text in the name: "lr", "b1", ...
  hparam: str  # the hyperparameter it shows
  shown: str | Callable[[dict], bool] = ALWAYS  # ALWAYS, DIFFERS, or a test of the resolved
  flag: bool = False  # `_<short>` without the value (e.g. `_perleaf`)


@dataclasses.dataclass(frozen=True)
class Entry:
  """An optimizer of the catalog: see the module docstring."""

  name: str  # the short name ("adam"), or the spec it was looked up by
  factory: str | Callable  # "module:function", or the function itself
  family: str  # a name of FAMILIES (or of the catalog's families)
  label: str  # the start of its results names: "Adam", "RLLC"
  hyperparameters: tuple[Hyperparameter, ...]
  key: tuple[Key, ...]  # the fields of its results names, in order
  buffer_count: int | str | Callable[[dict], int]  # an int, UNITS, or of the resolved
  quick: dict[str, tuple]  # the quick protocol's default grid
  paper: dict[str, tuple]  # the paper protocol's default grid
  bracket: str | None = None  # the hyperparameter whose value goes in [...] after the label
  fixed: dict[str, Any] = dataclasses.field(default_factory=dict)  # factory arguments it pins
  propagator: Any = None  # a spec entry's rllc.Propagator (bound by Catalog.lookup)
  convention: str | None = None  # the initial law a SPEC@CONVENTION name pins
  # Its step on a constant gradient per unit learning rate (the effective step
  # is lr(t) times it): a function of the resolved setting and lr(t), or LAW_GAIN.
  gain: str | Callable[[Mapping[str, Any], float], float] = unit_gain
  options: dict[str, Any] = dataclasses.field(default_factory=dict)  # a NAME+cosine(w) name's

  def function(self) -> Callable:
    """The factory, imported."""
    if callable(self.factory):
      return self.factory
    module, _, attr = self.factory.partition(":")
    return getattr(importlib.import_module(module), attr)

  def defaults(self) -> dict[str, Any]:
    """The hyperparameters that have a default, with it."""
    return {h.name: h.default for h in self.hyperparameters if h.default is not REQUIRED}

  def resolve(self, hparams: Mapping[str, Any]) -> dict[str, Any]:
    """Every hyperparameter, defaults filled in, in the declared order.

    The schedule and EMA options (rllc.schedule.OPTIONS) come last, and only
    when they differ from the plain optimizer's: a constant learning rate
    resolves to exactly the hyperparameters it had before schedules existed.

    Raises:
      ValueError: unknown or missing hyperparameters, a SPEC@CONVENTION or
        NAME+SCHEDULE name given another value, or a bad schedule option,
        naming them and what it takes.
    """
    hparams, options = self._options(hparams)
    if self.convention is not None:
      given = hparams.get("initial_law", self.convention)
      if isinstance(given, str) and given == self.convention:  # a record repeats it: fine
        hparams = {**hparams, "initial_law": self.convention}
      else:
        raise ValueError(
          f"optimizer {self.name!r}: two initial laws, '{INITIAL_LAW_SEPARATOR}"
          f"{self.convention}' and initial_law={given!r}"
        )
    valid = [h.name for h in self.hyperparameters]
    unknown = sorted(set(hparams) - set(valid))
    missing = [
      h.name for h in self.hyperparameters if h.default is REQUIRED and h.name not in hparams
    ]
    if unknown or missing:
      problem = (
        f"unknown hyperparameter(s) {', '.join(unknown)}"
        if unknown
        else f"missing hyperparameter(s) {', '.join(missing)}"
      )
      raise ValueError(f"optimizer {self.name!r}: {problem}; it takes {', '.join(valid)}")
    return {h.name: hparams.get(h.name, h.default) for h in self.hyperparameters} | options

  def _options(self, hparams: Mapping[str, Any]) -> tuple[dict, dict]:
    """(the entry's own hyperparameters, the resolved schedule and EMA options)."""
    own = {k: v for k, v in hparams.items() if k not in schedule_lib.OPTIONS}
    given = {k: v for k, v in hparams.items() if k in schedule_lib.OPTIONS}
    for key, value in self.options.items():  # a record repeats its name's options: fine
      if key in given and not _same(given[key], value):
        raise ValueError(
          f"optimizer {self.name!r}: its name sets {key} = {value!r}, given {given[key]!r}"
        )
      given[key] = value
    schedule_lib.check(given, where=self.name)
    options = {}
    if schedule_lib.is_scheduled(given):
      if given.get("total_steps") is None:
        raise ValueError(
          f"optimizer {self.name!r}: a {given['schedule']} schedule needs total_steps, the"
          " run's steps (a protocol sets it to its steps)"
        )
      options = {
        "schedule": given["schedule"],
        "warmup": given.get("warmup", 0.0),
        "total_steps": given["total_steps"],
      }
    elif "warmup" in given and not _same(given["warmup"], 0.0):
      raise ValueError(
        f"optimizer {self.name!r}: warmup = {given['warmup']!r} without a schedule; name one,"
        " e.g. 'momentum+cosine(0.05)'"
      )
    if given.get("ema") is not None:
      options["ema"] = given["ema"]
    return own, options

  def transformation(self, **hparams):
    """The optax transformation; the values may be traced (a vmapped grid's).

    A schedule (rllc.schedule) replaces the learning rate by its function of
    the step count; the EMA is the engine's, not the optimizer's.
    """
    resolved = self.resolve(hparams)
    options = {k: resolved.pop(k) for k in schedule_lib.OPTIONS if k in resolved}
    if schedule_lib.is_scheduled(options):
      resolved["learning_rate"] = schedule_lib.learning_rate(
        resolved["learning_rate"], options["schedule"], options["warmup"], options["total_steps"]
      )
    args = () if self.propagator is None else (self.propagator,)
    return self.function()(*args, **self.fixed, **resolved)

  def result_name(self, resolved: Mapping[str, Any]) -> str:
    """The results name of a resolved setting (concrete values): the stable key of results."""
    types = {h.name: h.type for h in self.hyperparameters}
    defaults = self.defaults()
    name = self.label
    if self.propagator is not None:
      name += f"[{self.propagator}]"
    elif self.bracket is not None:
      name += f"[{resolved[self.bracket]}]"
    for field in self.key:
      value = resolved[field.hparam]
      if field.shown == ALWAYS:
        shown = True
      elif field.shown == DIFFERS:
        shown = _differs(value, defaults.get(field.hparam, REQUIRED))
      else:
        shown = field.shown(resolved)
      if shown:
        name += f"_{field.short}" + ("" if field.flag else _text(value, types[field.hparam]))
    return name + _options_text(resolved)

  def buffers(self, resolved: Mapping[str, Any]) -> int:
    """Parameter-sized buffers its state keeps (the most over leaves), at a resolved setting."""
    if self.buffer_count == UNITS:
      return self.propagator.k
    if callable(self.buffer_count):
      return self.buffer_count(resolved)
    return self.buffer_count

  def grid(self, profile: str) -> dict[str, tuple]:
    """Its default grid under "quick" or "paper" (a copy)."""
    return dict(self.quick if profile == "quick" else self.paper)

  def variant(self, name: str, **overrides: tuple[Any, str]) -> "Entry":
    """The same optimizer under another name, with other defaults: {hparam: (default, why)}."""
    unknown = sorted(set(overrides) - {h.name for h in self.hyperparameters})
    if unknown:
      raise ValueError(f"variant {name!r} of {self.name!r}: no hyperparameter(s) {unknown}")
    hyperparameters = tuple(
      dataclasses.replace(h, default=overrides[h.name][0], override=overrides[h.name][1])
      if h.name in overrides
      else h
      for h in self.hyperparameters
    )
    return dataclasses.replace(self, name=name, hyperparameters=hyperparameters)


def format_real(x) -> str:
  """The shortest text that reads back as the same float: 0.9, 0, -1e-07."""
  text = repr(float(x))
  return text[:-2] if text.endswith(".0") else text


def _text(value, type_: str) -> str:
  """A value's text in a results name."""
  if callable(value):  # an optax schedule
    return "schedule"
  if isinstance(value, str):
    return value
  if type_ == "int":
    return str(value)
  if isinstance(value, (tuple, list)) or getattr(value, "ndim", 0) > 0:  # a law or an L_0
    return "(" + ",".join(format_real(x) for x in value) + ")"
  return format_real(value)


def _options_text(resolved: Mapping[str, Any]) -> str:
  """E.g. "_cosine_wu0.05_T10000_ema0.999"; "" for a constant learning rate without an EMA."""
  text = ""
  if schedule_lib.is_scheduled(resolved):
    text += f"_{resolved['schedule']}"
    if resolved["warmup"]:
      text += f"_wu{format_real(resolved['warmup'])}"
    text += f"_T{resolved['total_steps']}"
  if resolved.get("ema") is not None:
    text += f"_ema{format_real(resolved['ema'])}"
  return text


def _same(a, b) -> bool:
  """Equal, for option values that may be traced (then taken as equal: checked where made)."""
  if (
    hasattr(a, "dtype")
    and not isinstance(a, float)
    or hasattr(b, "dtype")
    and not isinstance(b, float)
  ):
    return True
  return a == b


def _differs(value, default) -> bool:
  if isinstance(value, str) or isinstance(default, str):  # an initial law: a name or a vector
    return not (isinstance(value, str) and value == default)
  return bool(value != default)


def describe_grid(grid: Mapping[str, tuple]) -> str:
  """E.g. "learning_rate {0.03, 0.1, 0.3} x law_learning_rate {0.003, 0.01}" (n points)."""
  if not grid:
    return "(none: give the hyperparameters in a TOML table)"
  axes = " x ".join(f"{k} {{{', '.join(_grid_text(v) for v in vs)}}}" for k, vs in grid.items())
  return f"{axes} ({math.prod(len(v) for v in grid.values())})"


def _grid_text(value) -> str:
  return f"{value:g}" if isinstance(value, float) else str(value)


def describe_hyperparameters(entry: Entry) -> str:
  """E.g. "learning_rate, momentum [0.9]": names, and defaults in brackets."""
  return ", ".join(
    h.name + ("" if h.default is REQUIRED else f" [{h.default}]") for h in entry.hyperparameters
  )


def split_initial_law(spec: str) -> tuple[str, str | None]:
  """ "M(0.9)+M(0)@ones" -> ("M(0.9)+M(0)", "ones"); without "@", (spec, None).

  Raises:
    ValueError: a convention that is not one of INITIAL_LAWS.
  """
  if INITIAL_LAW_SEPARATOR not in spec:
    return spec, None
  spec, convention = spec.rsplit(INITIAL_LAW_SEPARATOR, 1)
  if convention not in INITIAL_LAWS:
    raise ValueError(
      f"unknown initial law {convention!r} in {spec + INITIAL_LAW_SEPARATOR + convention!r};"
      f" valid: {', '.join(INITIAL_LAWS)} (e.g. 'M(0.9)+M(0)@ones')"
    )
  return spec, convention


class Catalog(Mapping[str, Entry]):
  """Named entries, the two spec templates, and the families: a mapping name -> Entry."""

  def __init__(
    self,
    entries: Iterable[Entry],
    *,
    rllc: Entry,
    fixed_law: Entry,
    families: Iterable[Family] = FAMILIES,
  ):
    entries = list(entries)
    self.families = tuple(families)
    self.rllc = rllc
    self.fixed_law = fixed_law
    self._entries: dict[str, Entry] = {}
    known = [f.name for f in self.families]
    for entry in [*entries, rllc, fixed_law]:
      unknown = [h.name for h in entry.hyperparameters if h.type not in TYPES]
      if unknown:
        raise ValueError(
          f"optimizer {entry.name!r}: hyperparameter(s) {', '.join(unknown)} of no type of"
          f" TYPES ({', '.join(TYPES)})"
        )
      if entry.family not in known:
        raise ValueError(
          f"optimizer {entry.name!r}: family {entry.family!r} is not declared; declared:"
          f" {', '.join(known)}"
        )
    for entry in entries:
      if entry.name in self._entries:
        raise ValueError(f"optimizer {entry.name!r} is declared twice")
      if entry.name.startswith(FIXED_LAW_PREFIX) or "(" in entry.name:
        raise ValueError(f"optimizer {entry.name!r}: a name must not read as a spec")
      self._entries[entry.name] = entry

  def __getitem__(self, name: str) -> Entry:
    return self._entries[name]

  def __iter__(self) -> Iterator[str]:
    return iter(self._entries)

  def __len__(self) -> int:
    return len(self._entries)

  def extended(self, *entries: Entry, families: Iterable[Family] = ()) -> "Catalog":
    """This catalog with more entries (or an entry replaced by name) and families."""
    merged = {**self._entries, **{e.name: e for e in entries}}
    return Catalog(
      merged.values(),
      rllc=self.rllc,
      fixed_law=self.fixed_law,
      families=[*self.families, *families],
    )

  def declared(self, name: str) -> Entry:
    """The entry of a name, or the template of a spec (not parsed: no JAX).

    Raises:
      ValueError: a bad schedule or EMA suffix (rllc.schedule.split_options).
    """
    name, _ = schedule_lib.split_options(name)
    if name in self._entries:
      return self._entries[name]
    return self.fixed_law if name.startswith(FIXED_LAW_PREFIX) else self.rllc

  def family(self, name: str) -> str:
    """The declared family of a name or a spec."""
    return self.declared(name).family

  def is_ours(self, family: str) -> bool:
    """Whether a family is one of the suite's own methods (an undeclared one is not)."""
    return any(f.name == family and f.ours for f in self.families)

  def family_rank(self, family: str) -> int:
    """A family's place in the order reports list rows (undeclared ones last)."""
    names = [f.name for f in self.families]
    return names.index(family) if family in names else len(names)

  def lookup(self, name_or_spec: str) -> Entry:
    """The entry of a name, or a spec template bound to a parsed spec.

    A name may end in schedule and EMA options, "+cosine(0.05)+ema(0.999)"
    (rllc.schedule): the entry of what comes before, with them bound.

    Raises:
      ValueError: an unknown name, a bad spec, initial law or schedule, or a
        fixed law with an initial-law suffix, naming the culprit and what is valid.
    """
    if name_or_spec in self._entries:
      return self._entries[name_or_spec]
    base, options = schedule_lib.split_options(name_or_spec)
    if base != name_or_spec:
      return dataclasses.replace(self.lookup(base), name=name_or_spec, options=options)
    from rllc import spec as spec_lib  # the propagators are JAX's: only for specs

    fixed = name_or_spec.startswith(FIXED_LAW_PREFIX)
    spec = name_or_spec[len(FIXED_LAW_PREFIX) :] if fixed else name_or_spec
    spec, convention = split_initial_law(spec)
    if convention is not None and fixed:
      raise ValueError(
        f"optimizer {name_or_spec!r}: a fixed law ({FIXED_LAW_PREFIX}) takes its law as the"
        f" hyperparameter law, not '{INITIAL_LAW_SEPARATOR}{convention}'"
      )
    try:
      prop = spec_lib.parse_propagator(spec)
    except ValueError as err:
      raise ValueError(
        f"unknown optimizer {name_or_spec!r}: valid names are {', '.join(self)}, a "
        f"propagator spec such as 'M(0.9)+M(0)' (RLLC), or '{FIXED_LAW_PREFIX}' and a spec "
        f"(fixed law). Read as a spec: {err}"
      ) from None
    template = self.fixed_law if fixed else self.rllc
    return dataclasses.replace(template, name=name_or_spec, propagator=prop, convention=convention)


_POSITIVE = Domain(0.0, math.inf, open_low=True)  # a step size
_NON_NEGATIVE = Domain(0.0, math.inf)  # a weight decay, an epsilon, a regularizer
_DECAY = Domain(0.0, 1.0, open_high=True)  # a momentum or moment decay: beta < 1 forgets
# The values of each hyperparameter, by name: a name means one thing across the catalog
# (b1 is Adam's first-moment decay wherever it appears). rllc.lion, rllc.nested and
# rllc.memory define the choices too; a test checks that they agree.
DOMAINS = {
  "learning_rate": _POSITIVE,
  "law_learning_rate": _POSITIVE,
  "momentum": _DECAY,
  "b1": _DECAY,
  "b2": _DECAY,
  "b3": _DECAY,
  "beta": _DECAY,
  "beta_max": _DECAY,
  "beta_min": _DECAY,
  "reset_threshold": Domain(0.0, 1.0),  # compared with beta_t, which lies in [0, 1)
  "lam": _NON_NEGATIVE,
  "eps": _NON_NEGATIVE,
  "relative_eps": _NON_NEGATIVE,
  "weight_decay": _NON_NEGATIVE,
  "alpha": _NON_NEGATIVE,
  "delta": _NON_NEGATIVE,
  "mlp_rate": _NON_NEGATIVE,
  "ns_steps": Domain(1, 100),  # iterations unrolled into the program: bounded
  "hidden": Domain(1, 4096),  # the MLP memory keeps 3 x hidden numbers per leaf
  "kernel": Domain(choices=("l1", "l1_smooth", "l2")),
  "preconditioner": Domain(choices=("identity", "adam")),
  "sigma": Domain(choices=("identity", "newton_schulz")),
  "initial_law": Domain(choices=INITIAL_LAWS),
  "law": Domain(),
  "per_leaf": Domain(),
  "normalize": Domain(),
}


def _h(name: str, type_: str, default: Any = REQUIRED, override: str = "") -> Hyperparameter:
  return Hyperparameter(name, type_, default, override, DOMAINS[name])


def _grid(learning_rates: tuple) -> dict[str, tuple]:
  return {"learning_rate": learning_rates}


# The paper's grids (appendix A.5.2 of the RLLC paper): 15 learning rates for
# every optimizer but RLLC, and RLLC's 6 x 3.
PAPER_LR = (1e-7, 3e-7, 1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
PAPER_RLLC_LR = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3)
PAPER_RLLC_LAW_LR = (0.003, 0.01, 0.03)
# The quick protocol's: four points around where each kind's best settings lie
# on the embedded and MNIST-sized tasks.
SGD_LIKE_LR = (0.03, 0.1, 0.3, 1.0)  # SGD-like methods (plain, and dampened adaptive memory): 0.1
HEAVY_BALL_LR = (0.003, 0.01, 0.03, 0.1)  # ten times lower: optax sums gradients undampened
ADAM_LIKE_LR = (1e-4, 3e-4, 1e-3, 3e-3)  # Adam-like: near 3e-4
SIGN_LR = (3e-5, 1e-4, 3e-4, 1e-3)  # sign-based steps: ten times below Adam's, as Lion's paper says
# Muon near its usual 0.02, one step lower since the old grid's lowest (0.003) won.
NEWTON_SCHULZ_LR = (0.001, 0.003, 0.01, 0.03)
# RLLC (L0 = ones) on the paper's learning rates, and a law rate axis one step
# wider than the paper's (at 1,000 steps a faster law pays): measured in
# reports/quick_rllc_grid, its selections on digits-mlp and mnist-mlp lie
# inside but for M(0.9) on MNIST (law lr 0.1).
QUICK_RLLC_LAW_LR = (0.003, 0.01, 0.03, 0.1)

_LR = _h("learning_rate", "float or schedule")
_LR_KEY = Key("lr", "learning_rate")
_ADAM = (_h("b1", "float", 0.9), _h("b2", "float", 0.999), _h("eps", "float", 1e-8))
_ADAM_KEY = (_LR_KEY, Key("b1", "b1"), Key("b2", "b2"), Key("eps", "eps"))
_WD_KEY = Key("wd", "weight_decay")
_PAPER = _grid(PAPER_LR)


def _preconditioned(resolved: dict) -> int:
  return 1 + (resolved["preconditioner"] == "adam")


def _sgd_like(name: str, label: str, buffers: int, quick: tuple, momentum: bool, **fixed) -> Entry:
  why = "optax.sgd's is None (no momentum)"
  return Entry(
    name,
    "optax:sgd",
    "baseline",
    label,
    (_LR, _h("momentum", "float", 0.9, why)) if momentum else (_LR,),
    (_LR_KEY, Key("m", "momentum")) if momentum else (_LR_KEY,),
    buffers,
    _grid(quick),
    _PAPER,
    fixed=fixed,
    gain=heavy_ball_gain("momentum") if momentum else unit_gain,
  )


def _adam_like(name: str, label: str, factory: str, decay: bool) -> Entry:
  return Entry(
    name,
    factory,
    "baseline",
    label,
    (_LR, _h("weight_decay", "float", 1e-4), *_ADAM) if decay else (_LR, *_ADAM),
    (*_ADAM_KEY, _WD_KEY) if decay else _ADAM_KEY,
    2,
    _grid(ADAM_LIKE_LR),
    _PAPER,
  )


# The adaptive-memory paper's names: AM-SGD_lr0.1_lam0.1_bmax0.9, then _bmin
# (not 0: the Clip variant's too), _theta (Reset), _perleaf.
_AM_POLICY = (
  _h("lam", "float", 0.1),
  _h("beta_max", "float", 0.9),
  _h("beta_min", "float", 0.0),
  _h("reset_threshold", "float or None", None),
)
_AM_POLICY_KEY = (
  _LR_KEY,
  Key("lam", "lam"),
  Key("bmax", "beta_max", lambda hp: hp["beta_max"] is not None),
  Key("bmin", "beta_min", lambda hp: hp["beta_min"] != 0.0),
  Key("theta", "reset_threshold", lambda hp: hp["reset_threshold"] is not None),
)
_PER_LEAF = _h("per_leaf", "bool", False)
_PER_LEAF_KEY = Key("perleaf", "per_leaf", lambda hp: hp["per_leaf"], flag=True)
# The Clip and Reset variants of section 4.5.
_CLIP = {"beta_min": (0.5, "ours: the paper gives no beta_min for Clip")}
_RESET = {"reset_threshold": (0.7, "the paper's theta (section 4.5)")}

AM_SGD = Entry(
  "am-sgd",
  "rllc.adaptive_memory:am_sgd",
  "adaptive-memory",
  "AM-SGD",
  (_LR, *_AM_POLICY, _PER_LEAF),
  (*_AM_POLICY_KEY, _PER_LEAF_KEY),
  1,
  _grid(SGD_LIKE_LR),
  _PAPER,
)
AM_ADAMW = Entry(
  "am-adamw",
  "rllc.adaptive_memory:am_adamw",
  "adaptive-memory",
  "AM-AdamW",
  (_LR, _h("weight_decay", "float", 1e-4), *_AM_POLICY, *_ADAM, _PER_LEAF),
  (*_AM_POLICY_KEY, *_ADAM_KEY[1:], _WD_KEY, _PER_LEAF_KEY),
  2,
  _grid(ADAM_LIKE_LR),
  _PAPER,
  gain=lambda hp, lr: 1.0 / (1.0 + hp["weight_decay"] * lr),  # x_{t+1} = (...) / (1 + mu eta)
)

RLLC = Entry(
  "<spec>",
  "rllc.memory:rllc",
  "rllc",
  "RLLC",
  (
    _LR,
    _h("law_learning_rate", "float"),
    _h("eps", "float", 1e-8),
    _h("relative_eps", "float", 1e-2),
    _h("initial_law", "str or vector", "ones"),
  ),
  (
    _LR_KEY,
    Key("law", "law_learning_rate"),
    Key("eps", "eps", DIFFERS),
    Key("releps", "relative_eps", DIFFERS),
    Key("L0", "initial_law", DIFFERS),
  ),
  UNITS,
  {"learning_rate": PAPER_RLLC_LR, "law_learning_rate": QUICK_RLLC_LAW_LR},
  {"learning_rate": PAPER_RLLC_LR, "law_learning_rate": PAPER_RLLC_LAW_LR},
  gain=LAW_GAIN,
)
FIXED_LAW = Entry(
  f"{FIXED_LAW_PREFIX}<spec>",
  "rllc.memory:linear_memory",
  "fixed-law",
  "LM",
  (
    _h("law", "vector"),
    _h("learning_rate", "float or schedule", 1.0, "linear_memory takes it: 1 is the plain memory"),
  ),
  (Key("law", "law"), _LR_KEY),
  UNITS,
  {},  # a fixed law has no default grid: its laws come in a TOML table
  {},
  gain=LAW_GAIN,
)

ENTRIES = (
  _sgd_like("sgd", "SGD", 0, SGD_LIKE_LR, momentum=False),
  _sgd_like("momentum", "Momentum", 1, HEAVY_BALL_LR, momentum=True),
  _sgd_like("nesterov", "Nesterov", 1, HEAVY_BALL_LR, momentum=True, nesterov=True),
  _adam_like("adam", "Adam", "optax:adam", decay=False),
  _adam_like("adamw", "AdamW", "optax:adamw", decay=True),
  _adam_like("nadam", "NAdam", "optax:nadam", decay=False),
  _adam_like("nadamw", "NAdamW", "optax:nadamw", decay=True),
  Entry(
    "lion",
    "optax:lion",
    "sign",
    "Lion",
    (
      _LR,
      _h("b1", "float", 0.9),
      _h("b2", "float", 0.99),
      _h("weight_decay", "float", 0.0, "optax.lion's is 1e-3: 0 compares the sign step alone"),
    ),
    (_LR_KEY, Key("b1", "b1"), Key("b2", "b2"), _WD_KEY),
    1,
    _grid(SIGN_LR),
    _PAPER,
  ),
  Entry(
    "lion-k",
    "rllc.lion:lion_k",
    "sign",
    "LionK",
    (
      _LR,
      _h("b1", "float", 0.9),
      _h("b2", "float", 0.99),
      _h("weight_decay", "float", 0.0),
      _h("kernel", "str", "l1_smooth"),
      _h("eps", "float", 1e-8),
    ),
    (
      _LR_KEY,
      Key("b1", "b1"),
      Key("b2", "b2"),
      _WD_KEY,
      Key("eps", "eps", lambda hp: hp["kernel"] == "l1_smooth"),  # the only kernel with an eps
    ),
    1,
    _grid(SIGN_LR),
    _PAPER,
    bracket="kernel",
  ),
  Entry(
    "signum",
    "rllc.lion:signum",
    "sign",
    "Signum",
    (_LR, _h("momentum", "float", 0.9), _h("weight_decay", "float", 0.0)),
    (_LR_KEY, Key("m", "momentum"), _WD_KEY),
    1,
    _grid(SIGN_LR),
    _PAPER,
  ),
  Entry(
    "ademamix",
    "optax.contrib:ademamix",
    "mixture",
    "AdEMAMix",
    (
      _LR,
      _h("b1", "float", 0.9),
      _h("b2", "float", 0.999),
      _h("b3", "float", 0.9999),
      _h("alpha", "float", 5.0),
      _h("eps", "float", 1e-8),
      _h("weight_decay", "float", 0.0),
    ),
    (
      _LR_KEY,
      Key("b1", "b1"),
      Key("b2", "b2"),
      Key("b3", "b3"),
      Key("alpha", "alpha"),
      Key("eps", "eps"),
      _WD_KEY,
    ),
    3,
    _grid(ADAM_LIKE_LR),
    _PAPER,
    gain=lambda hp, lr: 1.0 + hp["alpha"],  # (m1 + alpha m2) / sqrt(v): both EMAs tend to g
  ),
  Entry(
    "muon",
    "optax.contrib:muon",
    "orthogonal",
    "Muon",
    (_LR, _h("beta", "float", 0.95), _h("ns_steps", "int", 5), _h("weight_decay", "float", 0.0)),
    (_LR_KEY, Key("beta", "beta"), Key("ns", "ns_steps"), _WD_KEY),
    2,  # 1 on matrix leaves and Adam's 2 on the others: 2 is the most
    _grid(NEWTON_SCHULZ_LR),
    _PAPER,
  ),
  Entry(
    "precond-momentum",
    "rllc.nested:preconditioned_momentum",
    "nested",
    "PrecondMomentum",
    (
      _LR,
      _h("momentum", "float", 0.9),
      _h("preconditioner", "str", "adam"),
      _h("b2", "float", 0.999),
      _h("eps", "float", 1e-8),
    ),
    (_LR_KEY, Key("m", "momentum")),
    _preconditioned,
    _grid(ADAM_LIKE_LR),
    _PAPER,
    bracket="preconditioner",
    gain=heavy_ball_gain("momentum"),
  ),
  Entry(
    "delta-momentum",
    "rllc.nested:delta_momentum",
    "nested",
    "DeltaMomentum",
    (
      _LR,
      _h("momentum", "float", 0.9),
      _h("delta", "float", 1.0),
      _h("preconditioner", "str", "identity"),
      _h("b2", "float", 0.999),
      _h("eps", "float", 1e-8),
    ),
    (_LR_KEY, Key("m", "momentum"), Key("delta", "delta")),
    _preconditioned,
    _grid(HEAVY_BALL_LR),
    _PAPER,
    bracket="preconditioner",
    # m <- alpha (1 - delta) m - eta g along a constant gradient (the projection removes delta m)
    gain=lambda hp, lr: 1.0 / (1.0 - hp["momentum"] * (1.0 - hp["delta"])),
  ),
  Entry(
    "ns-momentum",
    "rllc.nested:ns_momentum",
    "nested",
    "NSMomentum",
    (_LR, _h("momentum", "float", 0.95), _h("ns_steps", "int", 5)),
    (_LR_KEY, Key("m", "momentum"), Key("ns", "ns_steps")),
    1,
    _grid(NEWTON_SCHULZ_LR),
    _PAPER,
  ),
  Entry(
    "deep-momentum",
    "rllc.nested:deep_momentum",
    "nested",
    "DeepMomentum",
    (
      _LR,
      _h("momentum", "float", 0.9),
      _h("hidden", "int", 16),
      _h("mlp_rate", "float", 1.0),
      _h("sigma", "str", "identity"),
      _h("normalize", "bool", True),
      _h("ns_steps", "int", 5),
      _h("eps", "float", 1e-8),
    ),
    (
      _LR_KEY,
      Key("m", "momentum"),
      Key("h", "hidden"),
      Key("rate", "mlp_rate"),
      Key("raw", "normalize", lambda hp: not hp["normalize"], flag=True),
      Key("ns", "ns_steps", lambda hp: hp["sigma"] == "newton_schulz"),
    ),
    1,
    _grid(HEAVY_BALL_LR),
    _PAPER,
    bracket="sigma",
    gain=heavy_ball_gain("momentum"),  # its linear memory b; the MLP's share is not counted
  ),
  Entry(
    "ema-momentum",
    "rllc.adaptive_memory:ema_momentum",
    "baseline",
    "EMA-Momentum",
    (_LR, _h("beta", "float", 0.9, "ema_momentum has none: 0.9, AM's beta_max")),
    (_LR_KEY, Key("beta", "beta")),
    1,
    _grid(SGD_LIKE_LR),
    _PAPER,
  ),
  AM_SGD,
  AM_SGD.variant("am-sgd-clip", **_CLIP),
  AM_SGD.variant("am-sgd-reset", **_RESET),
  Entry(
    "am-mgd",
    "rllc.adaptive_memory:am_mgd",
    "adaptive-memory",
    "AM-MGD",
    (_LR, _h("lam", "float", 0.1)),
    (_LR_KEY, Key("lam", "lam")),
    1,
    _grid(SGD_LIKE_LR),
    _PAPER,
  ),
  AM_ADAMW,
  AM_ADAMW.variant("am-adamw-clip", **_CLIP),
  AM_ADAMW.variant("am-adamw-reset", **_RESET),
)

DEFAULT = Catalog(ENTRIES, rllc=RLLC, fixed_law=FIXED_LAW)
_active = DEFAULT


def active() -> Catalog:
  """The catalog in use: DEFAULT, or the one a `using` scope set."""
  return _active


@contextlib.contextmanager
def using(catalog: Catalog) -> Iterator[Catalog]:
  """Makes `catalog` the active one inside the `with` block; the previous one after it."""
  global _active
  previous, _active = _active, catalog
  try:
    yield catalog
  finally:
    _active = previous


def lookup(name_or_spec: str) -> Entry:
  """The active catalog's entry of a name or spec (Catalog.lookup)."""
  return active().lookup(name_or_spec)
