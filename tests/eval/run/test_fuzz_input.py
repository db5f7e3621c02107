"""Issue 28: random spec strings and random TOML documents, from a seeded generator, through
the spec parser, protocol validation and the command line's dry run.

Each input gives a valid result or the one error its layer documents (ValueError from the
parser, ProtocolError from validation, a one-line message and status 2 from the command line),
never another exception. A runaway input (a regular expression that backtracks, a size that
allocates) would hang: an alarm ends any input after HANG seconds, far above what one takes
(a hang detector, not a timing assertion).
"""

import contextlib
import io
import math
import random
import signal

import pytest

from eval.cli import commands as cli
from eval.run import protocol as protocol_lib
from rllc import catalog
from rllc import spec as spec_lib

HANG = 20  # seconds: an input still running then is stuck

# Pieces that specs are made of, valid and not.
NUMBERS = ("0", "0.9", "-0.5", ".5", "1.5", "1e-3", "1e999", "nan", "0.3+0.2i", "0.9i", "0i")
NUMBERS += ("1" * 300, "0." + "1" * 300, "1e-999i", "--1", "")
SPEC_PIECES = (
  *("M", "CM", "M2", "CM3", "M0", "M999999999999", "Mx", "m", "K"),
  *("(", ")", "((", "+", "⊕", "-", ".", "e", "E", "i", "j", " ", "\t", ",", "@", "lm:"),
  *NUMBERS,
  *("9" * 5000, "é", "\x00", "\udcff", "@ones", "@normalized", "@other"),
)


def _spec(rng: random.Random) -> str:
  if rng.random() < 0.5:  # near-valid: terms joined by +, most of them valid
    terms = []
    for _ in range(rng.randint(1, 6)):
      name, number = rng.choice(
        [("M", "0.9"), ("M", "-0.5"), ("M2", ".5"), ("CM", "0.9i"), ("CM2", "0.3+0.2i")]
      )
      if rng.random() < 0.1:
        name, number = rng.choice(["M", "CM", "M300", "M40"]), rng.choice(NUMBERS)
      terms.append(f"{name}({number})")
    return rng.choice(["+", "+", "⊕", " + ", "++"]).join(terms)
  return "".join(rng.choice(SPEC_PIECES) for _ in range(rng.randint(0, 30)))


@contextlib.contextmanager
def _hang_guard():
  def stuck(signum, frame):
    raise AssertionError(f"an input ran for {HANG} s: stuck")

  previous = signal.signal(signal.SIGALRM, stuck)
  signal.alarm(HANG)
  try:
    yield
  finally:
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_random_specs_parse_or_raise_a_value_error_naming_the_spec():
  rng = random.Random(28)
  for _ in range(400):
    spec = _spec(rng)
    with _hang_guard():
      try:
        prop = spec_lib.parse_propagator(spec)
      except ValueError as err:
        assert str(err).startswith("bad propagator spec") and "\n" not in str(err), spec
        continue
    assert 1 <= prop.k <= spec_lib.MAX_UNITS and prop.spectral_radius() < 1, spec


def test_random_optimizer_names_are_canonical_or_a_protocol_error():
  rng = random.Random(29)
  for _ in range(300):
    name = rng.choice(["", "lm:", "adam", "sgd"]) + _spec(rng)
    with _hang_guard():
      try:
        canonical = protocol_lib.canonical_name(name)
      except protocol_lib.ProtocolError as err:
        assert "\n" not in str(err), name
        continue
    assert protocol_lib.canonical_name(canonical) == canonical, name


def _value(rng: random.Random, depth: int = 0):
  """A random TOML value: numbers at and beyond every limit, strings, lists, tables."""
  kind = rng.randrange(9 if depth < 2 else 6)
  if kind == 0:
    return rng.choice([0, 1, 2, -1, 5, 40, 10**6, 10**12, 2**63 - 1, -(2**63), 10**400])
  if kind == 1:
    return rng.choice([0.0, 1e-3, 0.5, 0.9, 1.0, 1.5, -0.1, 1e6, 1e308, math.inf, math.nan])
  if kind == 2:
    return rng.choice([True, False])
  if kind == 3:
    return rng.choice(["", "quick", "paper", "valid_loss", "ones", "l2", "../../x", "é"])
  if kind in (4, 5):
    return rng.choice(list(catalog.DEFAULT)) if kind == 4 else "M(0.9)+M(0)"
  if kind in (6, 7):
    return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
  return {"a": _value(rng, depth + 1)}


def _toml_value(value) -> str:
  if isinstance(value, bool):
    return "true" if value else "false"
  if isinstance(value, float) and not math.isfinite(value):
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
  if isinstance(value, str):
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
  if isinstance(value, list):
    return "[" + ", ".join(_toml_value(v) for v in value) + "]"
  if isinstance(value, dict):
    return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
  return repr(value)


KEYS = ("base", "name", "tasks", "seeds", "steps", "batch_size", "eval_every", "log_every")
KEYS += ("max_members", "select")


def _toml(rng: random.Random) -> str:
  """A random TOML document over the protocol's keys, a few optimizer tables, and junk."""
  given = {"name": '"fuzz"', "steps": "5"} if rng.random() < 0.5 else {}
  for key in rng.sample(KEYS, rng.randint(0, 2)):
    given[key] = _toml_value(_value(rng))
  if rng.random() < 0.05:
    given["stepz"] = "1"  # an unknown key
  lines = [f"{key} = {value}" for key, value in given.items()]
  if rng.random() < 0.2:
    lines.append("optimizers = " + _toml_value([rng.choice(list(catalog.DEFAULT)), _spec(rng)]))
  else:
    for name in rng.sample([*catalog.DEFAULT, "M(0.9)+M(0)", "lm:M(0.9)"], rng.randint(0, 2)):
      lines.append(f'[optimizers."{name}"]')
      declared = [h.name for h in catalog.active().declared(name).hyperparameters]
      for key in rng.sample([*declared, "lr"], rng.randint(0, 2)):
        lines.append(f"{key} = {_toml_value(_value(rng))}")
  text = "\n".join(lines) + "\n"
  if rng.random() < 0.05:  # broken TOML
    junk = ["[", "= =", '"', "\xff", "\nseeds = 1" + "0" * 5000]  # an int Python will not read
    text = text[: rng.randrange(len(text) + 1)] + rng.choice(junk)
  return text


def _run(argv: list[str]) -> tuple[int, str, str]:
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    code = cli.main(argv)
  return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("seed", range(4))
def test_random_toml_documents_give_a_protocol_or_one_line_and_status_2(tmp_path, seed):
  rng = random.Random(1000 + seed)
  for i in range(40):
    text = _toml(rng)
    path = tmp_path / f"fuzz{i}.toml"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with _hang_guard():
      try:
        protocol = protocol_lib.resolve(str(path))
      except protocol_lib.ProtocolError as err:
        assert "\n" not in str(err), text
        protocol = None
    if protocol is None or protocol.steps > 50:  # a dry run of what validation refuses
      with _hang_guard():
        code, out, err = _run(
          ["bench", "--profile", str(path), "--dry-run", "--out", str(tmp_path / "s")]
        )
      assert code in (1, 2) if protocol is None else code == 0, (text, err)
      if protocol is None:
        assert err.startswith("rllc: ") and err.count("\n") == 1, (text, err)
      assert not (tmp_path / "s").exists()
