"""RLLC and fixed-law linear memory keep their bits, and compose with optax.

The bits: golden files of a few steps (tests/rllc/golden/make_memory_golden.py).
XLA compiles for the processor it finds, so bits hold for one machine class
and jaxlib (eval.store.machine), and the test says which comparison it made:

- where a golden of this machine class and jaxlib exists
  (memory_golden.<machine key>.npz), every update, memory unit, law, Gram
  matrix and count must come back bit for bit (np.array_equal): a rewrite
  that reorders one sum fails here;
- elsewhere, against the first golden (memory_golden.npz, made at 8ee4162 on
  a machine whose class was not recorded), within TOLERANCE_ULP units in the
  last place at each array's scale (the spacing of float32 at its largest
  magnitude), and counts exactly. Measured: 4 ulp on an Intel Xeon with
  AVX-512, on jaxlib 0.10.2 and on 0.12.0.1 alike (the largest, on
  M(0.9)+M(-0.9)+CM(0.9i)'s updates), against 0 on the golden's own machine.

memory_golden.x86_64-edd41b56-jaxlib0.10.2.npz and ...-jaxlib0.12.0.1.npz were
made on an Intel Xeon class (family 6, model 167, AVX-512), at the commits
that added them, with bits that agree with the first golden within 4 ulp.
"""

import importlib.util
import pathlib

import jax
import numpy as np
import optax
import pytest

import rllc

_PATH = pathlib.Path(__file__).parent / "golden" / "make_memory_golden.py"
_SPEC = importlib.util.spec_from_file_location("make_memory_golden", _PATH)
golden_maker = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(golden_maker)

TOLERANCE_ULP = 64  # across machine classes (see the module docstring)


@pytest.fixture(scope="module")
def golden() -> dict:
  """This machine class's golden, or the first one; "meta/exact" says which (bits or ulp)."""
  own = golden_maker.path_for(golden_maker.machine_key())
  with np.load(own if own.exists() else golden_maker.ORIGINAL) as data:
    arrays = {k: v for k, v in data.items() if not k.startswith("meta/")}
  return {**arrays, "meta/exact": own.exists()}


def _scaled_ulps(got: np.ndarray, want: np.ndarray) -> float:
  """The largest |got - want| in units of float32's spacing at want's largest magnitude."""
  scale = np.spacing(np.float32(np.max(np.abs(want)))) if want.size else np.float32(1)
  return float(np.max(np.abs(got.astype(np.float64) - want), initial=0.0) / scale)


def _grads(golden):
  return [
    {name: golden[f"grads/{name}"][t] for name in golden_maker.SHAPES}
    for t in range(golden_maker.STEPS)
  ]


def _assert_bits(golden, prefix, got):
  """Bit for bit against this machine class's golden; else within TOLERANCE_ULP (counts exactly)."""
  expected = {key: value for key, value in golden.items() if key.startswith(prefix + "/")}
  assert sorted(got) == sorted(expected)
  for key, value in expected.items():
    assert got[key].dtype == value.dtype, key
    if golden["meta/exact"] or value.dtype != np.float32:
      diff = np.max(np.abs(got[key] - value))
      assert np.array_equal(got[key], value), f"{key}: max |diff| {diff} (bits of this machine)"
    else:
      ulps = _scaled_ulps(got[key], value)
      assert ulps <= TOLERANCE_ULP, f"{key}: {ulps:.1f} ulp from the golden's machine"


@pytest.mark.parametrize("initial_law", rllc.INITIAL_LAWS)
@pytest.mark.parametrize("spec, lr, llr", golden_maker.RLLC_CASES)
def test_rllc_gives_the_golden_bits(golden, spec, lr, llr, initial_law):
  tx = rllc.rllc(spec, lr, llr, initial_law=initial_law)
  prefix = golden_maker.rllc_key(spec, initial_law)
  _assert_bits(golden, prefix, golden_maker.flatten(prefix, *golden_maker.run(tx, _grads(golden))))


@pytest.mark.parametrize("spec, law, lr", golden_maker.LINEAR_CASES)
def test_linear_memory_gives_the_golden_bits(golden, spec, law, lr):
  tx = rllc.linear_memory(spec, np.asarray(law, np.float32), lr)
  prefix = golden_maker.linear_key(spec)
  _assert_bits(golden, prefix, golden_maker.flatten(prefix, *golden_maker.run(tx, _grads(golden))))


def _ulps(got, expected) -> int:
  """The largest distance between two float32 arrays in units in the last place."""
  as_int = lambda x: np.asarray(x, np.float32).view(np.int32).astype(np.int64)  # noqa: E731
  ordered = lambda i: np.where(i < 0, np.iinfo(np.int32).min - i, i)  # noqa: E731
  return int(np.max(np.abs(ordered(as_int(got)) - ordered(as_int(expected)))))


def _chained_case(kind, spec, golden_value, lr):
  """The scale_by_* form of a golden case, and its alias, both as transformations."""
  if kind == "rllc":
    _, llr = golden_value
    return (
      optax.chain(rllc.scale_by_rllc(spec, llr), optax.scale_by_learning_rate(lr)),
      rllc.rllc(spec, lr, llr),
    )
  law = np.asarray(golden_value, np.float32)
  return (
    optax.chain(rllc.scale_by_linear_memory(spec, law), optax.scale_by_learning_rate(lr)),
    rllc.linear_memory(spec, law, lr),
  )


_CHAIN_CASES = [("rllc", spec, (lr, llr), lr) for spec, lr, llr in golden_maker.RLLC_CASES] + [
  ("linear", spec, law, lr) for spec, law, lr in golden_maker.LINEAR_CASES
]


@pytest.mark.parametrize(
  "kind, spec, golden_value, lr", _CHAIN_CASES, ids=[f"{c[0]}-{c[1]}" for c in _CHAIN_CASES]
)
def test_chain_with_scale_by_learning_rate_matches_the_alias(golden, kind, spec, golden_value, lr):
  """chain(scale_by_*, scale_by_learning_rate(c1)): the state bit for bit, updates within 32 ulp.

  The memory and the law do not involve c1, so they match bit for bit; the
  update is -c1 (sum_j L_j M[j]) against the alias's sum_j (-c1 L_j) M[j]
  (at most 23 ulp apart here, on the Nesterov linear-memory case).
  """
  chained, alias = _chained_case(kind, spec, golden_value, lr)
  got_updates, got_states = golden_maker.run(chained, _grads(golden))
  want_updates, want_states = golden_maker.run(alias, _grads(golden))
  for got, want in zip(got_states, want_states, strict=True):
    inner = got[0]
    assert type(inner) is type(want)
    for field in want._fields:
      got_leaves = jax.tree.leaves(getattr(inner, field))
      want_leaves = jax.tree.leaves(getattr(want, field))
      assert len(got_leaves) == len(want_leaves), field
      for g, w in zip(got_leaves, want_leaves, strict=True):
        assert np.array_equal(g, w), field
  for got, want in zip(got_updates, want_updates, strict=True):
    for name in golden_maker.SHAPES:
      assert _ulps(got[name], want[name]) <= 32, name


@pytest.mark.parametrize("spec, lr, llr", golden_maker.RLLC_CASES)
def test_rllc_evaluates_a_schedule_at_the_step_count(golden, spec, lr, llr):
  """With c1(t) a schedule, step t's update is, bit for bit, the constant-c1(t) run's step t.

  The state does not involve c1, so the constant run at c1(t) has the same
  memory and law at step t; a schedule read at another count fails here.
  """
  schedule = optax.linear_schedule(lr, lr / 4, golden_maker.STEPS)
  got, _ = golden_maker.run(rllc.rllc(spec, schedule, llr), _grads(golden))
  for t in range(golden_maker.STEPS):
    rate = np.float32(schedule(t))
    want, _ = golden_maker.run(rllc.rllc(spec, rate, llr), _grads(golden))
    for name in golden_maker.SHAPES:
      assert np.array_equal(got[t][name], want[t][name]), (t, name)


@pytest.mark.parametrize("spec, law, lr", golden_maker.LINEAR_CASES)
def test_scale_by_linear_memory_updates_by_the_memory_times_the_law(golden, spec, law, lr):
  """Without c1, the update is +M_t L, re-derived in float64 from the returned memory."""
  law = np.asarray(law, np.float32)
  updates, states = golden_maker.run(rllc.scale_by_linear_memory(spec, law), _grads(golden))
  for update, state in zip(updates, states, strict=True):
    for name in golden_maker.SHAPES:
      units = np.stack([np.asarray(unit[name], np.float64) for unit in state.memory])
      want = np.tensordot(law.astype(np.float64), units, axes=1)
      np.testing.assert_allclose(update[name], want, rtol=1e-6, atol=1e-7)
