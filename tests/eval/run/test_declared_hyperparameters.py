"""Issue 28: every hyperparameter's type and range is declared in the catalog, and validation
reads the declaration, so that no value reaches JAX unchecked.

The walk: every hyperparameter of every catalog entry (and of the two spec templates), given
a wrong type (a boolean, a list, a string, NaN) or a value out of its range, through a TOML
profile alone and through the same profile with --optimizers naming it: exit status 2, one
line naming the optimizer and the hyperparameter, and no store directory made. The command
line runs in this process: it fails before importing anything heavy enough to matter.
"""

import contextlib
import io
import math

import pytest

from eval.cli import commands as cli
from eval.run import protocol as protocol_lib
from rllc import catalog, lion, memory, nested
from rllc import spec as spec_lib

# A name (or spec) per entry, and the law a fixed law needs to be built at all.
SPEC, FIXED = "M(0.9)+M(0)", "lm:M(0.9)+M(0)"
NEEDS = {FIXED: {"law": "[0.9, 1.0]"}}


def _entries() -> list[tuple[str, catalog.Entry]]:
  return [*catalog.DEFAULT.items(), (SPEC, catalog.RLLC), (FIXED, catalog.FIXED_LAW)]


def _toml(value) -> str:
  """A value as TOML text."""
  if isinstance(value, bool):
    return "true" if value else "false"
  if isinstance(value, float) and math.isnan(value):
    return "nan"
  if isinstance(value, str):
    return f'"{value}"'
  if isinstance(value, list):
    return "[" + ", ".join(_toml(v) for v in value) + "]"
  return repr(value)


def _outside(h: catalog.Hyperparameter) -> list:
  """Values just outside a numeric hyperparameter's declared range."""
  kinds = h.type.split(" or ")
  if "float" not in kinds and "int" not in kinds:
    return []
  step = 1 if "int" in kinds else 0.5
  out = []
  if math.isfinite(h.domain.low):
    out.append(h.domain.low if h.domain.open_low else h.domain.low - step)
  if math.isfinite(h.domain.high):
    out.append(h.domain.high if h.domain.open_high else h.domain.high + step)
  return out


def _wrong(h: catalog.Hyperparameter) -> list:
  """Wrong values of every kind for h: a boolean, a list, a string, NaN, out of range."""
  kinds = h.type.split(" or ")
  wrong = ["fast", math.nan, *_outside(h)]
  wrong.append(1.5 if "bool" in kinds else True)
  # A list of lists is an axis of lists: one list where a vector is declared, so a vector
  # gets one of strings instead.
  wrong.append([["a", "b"]] if "vector" in kinds else [[0.1]])
  return wrong


CASES = [
  pytest.param(name, h.name, value, id=f"{name}-{h.name}-{_toml(value)}")
  for name, entry in _entries()
  for h in entry.hyperparameters
  for value in _wrong(h)
]


def _run(argv: list[str]) -> tuple[int, str, str]:
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    code = cli.main(argv)
  return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("name,hparam,value", CASES)
def test_a_wrong_value_of_every_hyperparameter_exits_2_naming_it_and_writes_nothing(
  tmp_path, name, hparam, value
):
  table = {**NEEDS.get(name, {}), hparam: _toml(value)}
  profile = tmp_path / "bad.toml"
  profile.write_text(
    f'name = "bad"\nsteps = 5\n[optimizers."{name}"]\n'
    + "".join(f"{k} = {v}\n" for k, v in table.items())
  )
  out = tmp_path / "store"
  for extra in ([], ["--optimizers", name]):
    code, stdout, err = _run(["bench", "--profile", str(profile), "--out", str(out), *extra])
    assert code == 2, (extra, err)
    assert err.startswith(f"rllc: optimizer {name!r}: {hparam} = ")
    assert f"{hparam} takes " in err and err.count("\n") == 1
    assert stdout == "" and not out.exists()


def test_every_hyperparameter_has_a_declared_type_and_domain_its_default_and_grids_satisfy():
  for name, entry in _entries():
    for h in entry.hyperparameters:
      assert h.type in catalog.TYPES, (name, h.name)
      assert h.domain == catalog.DOMAINS[h.name], (name, h.name)
      if h.default is not catalog.REQUIRED:
        assert h.problem(h.default) is None, (name, h.name, h.default)
    declared = {h.name: h for h in entry.hyperparameters}
    for grid in (entry.quick, entry.paper):
      for key, values in grid.items():
        assert all(declared[key].problem(v) is None for v in values), (name, key)


def test_the_declared_choices_are_the_factories_own():
  assert catalog.DOMAINS["kernel"].choices == lion.KERNELS
  assert catalog.DOMAINS["preconditioner"].choices == nested.PRECONDITIONERS
  assert catalog.DOMAINS["sigma"].choices == nested.DEEP_OUTPUTS
  assert catalog.DOMAINS["initial_law"].choices == memory.INITIAL_LAWS
  assert catalog.MAX_VECTOR == spec_lib.MAX_UNITS  # a law has one entry per memory unit


@pytest.mark.parametrize(
  "name,hparam,value",
  [
    ("adam", "b1", 0.0),  # the closed end of [0, 1)
    ("momentum", "momentum", 0.99),
    ("am-sgd", "reset_threshold", 1.0),
    ("lion-k", "kernel", "l2"),  # a TOML string, refused before the declarations
    ("muon", "ns_steps", 3),  # an integer stays one (5.0 would fail in optax)
    ("deep-momentum", "hidden", 4),
    ("deep-momentum", "normalize", False),
    (SPEC, "initial_law", [0.5, 1.0]),
  ],
)
def test_a_value_inside_its_declaration_is_taken_as_given(tmp_path, name, hparam, value):
  profile = tmp_path / "ok.toml"
  profile.write_text(f'[optimizers."{name}"]\n{hparam} = {_toml(value)}\n')
  (plan,) = protocol_lib.resolve(str(profile)).optimizers
  got = plan.grid[hparam]
  assert got == (tuple(value) if isinstance(value, list) else value,)
  assert type(got[0]) is (tuple if isinstance(value, list) else type(value))


def test_a_toml_integer_for_a_real_is_a_float_as_records_always_kept_it(tmp_path):
  profile = tmp_path / "ok.toml"
  profile.write_text("[optimizers.sgd]\nlearning_rate = 1\n")
  (plan,) = protocol_lib.resolve(str(profile)).optimizers
  assert plan.grid["learning_rate"] == (1.0,) and isinstance(plan.grid["learning_rate"][0], float)
