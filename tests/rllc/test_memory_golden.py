"""RLLC and fixed-law linear memory keep their bits: a golden file of a few steps.

tests/rllc/golden/memory_golden.npz was written by
tests/rllc/golden/make_memory_golden.py at commit
8ee416289d9ce7e2cd8d3e3a3acfbd8f8c4cec33 (before rllc/memory.py moved to optax's
tree helpers, safe_increment and the shared per-leaf map). Every update, memory
unit, law, Gram matrix and count must come back bit for bit (float32,
np.array_equal): a rewrite that reorders one sum fails here.
"""

import importlib.util
import pathlib

import numpy as np
import pytest

import rllc

_PATH = pathlib.Path(__file__).parent / "golden" / "make_memory_golden.py"
_SPEC = importlib.util.spec_from_file_location("make_memory_golden", _PATH)
golden_maker = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(golden_maker)


@pytest.fixture(scope="module")
def golden():
  with np.load(golden_maker.PATH) as data:
    return dict(data)


def _grads(golden):
  return [
    {name: golden[f"grads/{name}"][t] for name in golden_maker.SHAPES}
    for t in range(golden_maker.STEPS)
  ]


def _assert_bits(golden, prefix, got):
  expected = {key: value for key, value in golden.items() if key.startswith(prefix + "/")}
  assert sorted(got) == sorted(expected)
  for key, value in expected.items():
    assert got[key].dtype == value.dtype, key
    assert np.array_equal(got[key], value), f"{key}: max |diff| {np.max(np.abs(got[key] - value))}"


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
