"""Tests of propagators (section 4, appendix A.3) and of the spec parser.

Every expected value is derived here, independently of rllc: B and a are built
by applying the paper's unit-level recurrences (m <- beta m + g, the iterated
momentum of M_k, the complex momentum c <- gamma c + g) to basis vectors, and
the abstract rules come from the closed forms beta^j, C(j, i-1) lambda^(j-i+1)
(appendix A.3) and numpy complex powers.
"""

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rllc

# ---------------------------------------------------------------------------
# Independent references.
# A term is (kind, size, value): ("M", k, beta) for M_k(beta) and
# ("CM", k, gamma) for CM_k(gamma).


def _block_step(term, m, g):
  """One step of a block's unit-level recurrence (the paper's definition).

  Args:
    term: (kind, size, value).
    m: the block's units before the step, float64 (k,) or (2k,).
    g: the scalar gradient.

  Returns:
    The units after the step.
  """
  kind, size, value = term
  m = np.asarray(m, np.float64)
  if kind == "M":  # m_1 <- beta m_1 + g, m_i <- beta m_i + m_{i-1}
    new = value * m
    new[0] += g
    new[1:] += m[:-1]
    return new
  c = m[0::2] + 1j * m[1::2]  # c_1 <- gamma c_1 + g, c_j <- gamma c_j + c_{j-1}
  new_c = value * c
  new_c[0] += g
  new_c[1:] += c[:-1]
  new = np.empty(2 * size)
  new[0::2], new[1::2] = new_c.real, new_c.imag
  return new


def _block_dim(term):
  kind, size, _ = term
  return size if kind == "M" else 2 * size


def _reference_b_a(terms):
  """(B, a) of a direct sum, read off the recurrences with M <- M B + g a^T.

  Row j of B is the new memory when the old memory is the j-th unit vector and
  g = 0; a is the new memory when the old memory is 0 and g = 1.
  """
  blocks_b, blocks_a = [], []
  for term in terms:
    k = _block_dim(term)
    blocks_b.append(np.stack([_block_step(term, np.eye(k)[j], 0.0) for j in range(k)]))
    blocks_a.append(_block_step(term, np.zeros(k), 1.0))
  total = sum(b.shape[0] for b in blocks_b)
  big_b = np.zeros((total, total))
  offset = 0
  for b in blocks_b:
    big_b[offset : offset + b.shape[0], offset : offset + b.shape[0]] = b
    offset += b.shape[0]
  return big_b, np.concatenate(blocks_a)


def _closed_form_rule(terms, n):
  """Abstract rule rows j = 0..n-1 from the closed forms.

  M_k(lambda) unit i: C(j, i-1) lambda^(j-i+1) (appendix A.3; for k = 1 this
  is beta^j, and the second unit of M_2 is 0, 1, 2 lambda, 3 lambda^2, ...).
  CM_k(gamma) unit c_i: the complex C(j, i-1) gamma^(j-i+1), as (Re, Im).
  """
  rows = []
  for j in range(n):
    row = []
    for kind, size, value in terms:
      for i in range(1, size + 1):
        power = j - i + 1
        weight = math.comb(j, i - 1) * (value**power) if power >= 0 else 0.0
        if kind == "M":
          row.append(float(weight))
        else:
          weight = complex(weight)
          row.extend([weight.real, weight.imag])
    rows.append(row)
  return np.array(rows)


# (spec, terms, factory building the same propagator with the constructors)
CASES = {
  "M(0.9)": ([("M", 1, 0.9)], lambda: rllc.M(0.9)),
  "M(0)": ([("M", 1, 0.0)], lambda: rllc.M(0.0)),
  "M2(0.6)": ([("M", 2, 0.6)], lambda: rllc.Mk(2, 0.6)),
  "M3(0.5)": ([("M", 3, 0.5)], lambda: rllc.Mk(3, 0.5)),
  "CM(0.9i)": ([("CM", 1, 0.9j)], lambda: rllc.CM(0.9j)),
  "CM(0.3+0.2i)": ([("CM", 1, 0.3 + 0.2j)], lambda: rllc.CM(0.3 + 0.2j)),
  "CM2(0.5+0.3i)": ([("CM", 2, 0.5 + 0.3j)], lambda: rllc.CMk(2, 0.5 + 0.3j)),
  "M(0.9)+M2(0.6)+CM(0.3+0.2i)": (
    [("M", 1, 0.9), ("M", 2, 0.6), ("CM", 1, 0.3 + 0.2j)],
    lambda: rllc.M(0.9) + rllc.Mk(2, 0.6) + rllc.CM(0.3 + 0.2j),
  ),
  "M(0.9)+M(-0.9)+CM(0.9i)": (
    [("M", 1, 0.9), ("M", 1, -0.9), ("CM", 1, 0.9j)],
    lambda: rllc.M(0.9) + rllc.M(-0.9) + rllc.CM(0.9j),
  ),
}


def test_reference_matches_paper_examples():
  """Sanity of the test's own reference against the paper's displays."""
  # M_2(alpha): B = [[alpha, 1], [0, alpha]], a = e_1 (section 4, M <- M B).
  b, a = _reference_b_a([("M", 2, 0.6)])
  np.testing.assert_allclose(b, [[0.6, 1.0], [0.0, 0.6]])
  np.testing.assert_allclose(a, [1.0, 0.0])
  # Second unit of M_2(alpha): 0, 1, 2 alpha, 3 alpha^2, ... (section 4).
  rule = _closed_form_rule([("M", 2, 0.6)], 5)
  np.testing.assert_allclose(rule[:, 1], [0.0, 1.0, 1.2, 3 * 0.36, 4 * 0.216])
  # The closed forms agree with iterating the recurrences.
  for terms, _ in CASES.values():
    b, a = _reference_b_a(terms)
    rows = [a]
    for _ in range(11):
      rows.append(rows[-1] @ b)
    np.testing.assert_allclose(np.stack(rows), _closed_form_rule(terms, 12), atol=1e-12)


# ---------------------------------------------------------------------------
# Abstract rule (section 4, eq. 2; appendix A.3).


IMPULSE_STEPS = 20
IMPULSE = np.array([1.0, -2.0], np.float32)


@jax.jit
def _impulse_run(b, a, law):
  """Feeds g_1 = IMPULSE, then zeros, to linear_memory(Propagator(b, a), law, 0.7).

  B and a are traced arguments, so propagators of equal k share one compilation.
  """
  tx = rllc.linear_memory(rllc.Propagator(b, a), law=law, learning_rate=0.7)
  params = {"w": jnp.zeros(2, jnp.float32)}
  grads = jnp.zeros((IMPULSE_STEPS, 2), jnp.float32).at[0].set(IMPULSE)

  def step(state, grad):
    updates, state = tx.update({"w": grad}, state, params)
    return state, (jnp.stack([unit["w"] for unit in state.memory]), updates["w"])

  return jax.lax.scan(step, tx.init(params), grads)[1]


@pytest.mark.parametrize("spec", list(CASES))
def test_impulse_response_is_abstract_rule(spec):
  """Memory after t steps of an impulse g_1, 0, 0, ... holds g_1 a^T B^(t-1)."""
  terms, factory = CASES[spec]
  prop = factory()
  expected = _closed_form_rule(terms, IMPULSE_STEPS)
  k = expected.shape[1]
  law = np.linspace(0.5, -0.3, k).astype(np.float32)
  memories, updates = jax.device_get(_impulse_run(prop.B, prop.a, law))
  assert memories.shape == (IMPULSE_STEPS, k, 2)
  for t in range(1, IMPULSE_STEPS + 1):
    want = np.outer(expected[t - 1], IMPULSE)
    np.testing.assert_allclose(
      np.asarray(memories[t - 1], np.float64), want, rtol=1e-5, atol=1e-6, err_msg=f"step {t}"
    )
    # linear_memory's step: -learning_rate * M_t law.
    np.testing.assert_allclose(
      np.asarray(updates[t - 1]), -0.7 * (law @ want), rtol=1e-5, atol=1e-6, err_msg=f"step {t}"
    )


@pytest.mark.parametrize("spec", list(CASES))
def test_abstract_rule_method_matches_closed_form(spec):
  terms, factory = CASES[spec]
  for prop in (factory(), rllc.parse_propagator(spec)):
    rule = prop.abstract_rule(15)
    assert rule.shape == (15, prop.k)
    np.testing.assert_allclose(rule, _closed_form_rule(terms, 15), rtol=1e-6, atol=1e-7)


def test_abstract_rule_of_general_propagator():
  rng = np.random.default_rng(0)
  b = 0.3 * rng.standard_normal((3, 3))
  a = rng.standard_normal(3)
  with jax.enable_x64(True):
    prop = rllc.Propagator(b, a)
    rule = prop.abstract_rule(6)
  want = np.stack([a @ np.linalg.matrix_power(b, i) for i in range(6)])
  np.testing.assert_allclose(rule, want, rtol=1e-12)


@pytest.mark.parametrize("spec", list(CASES))
def test_constructors_give_reference_b_and_a(spec):
  terms, factory = CASES[spec]
  b, a = _reference_b_a(terms)
  prop = factory()
  assert prop.k == len(a)
  np.testing.assert_allclose(np.asarray(prop.B), b, rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(np.asarray(prop.a), a)


@pytest.mark.parametrize(
  "spec, radius",
  [
    ("M(0.9)", 0.9),
    ("M(-0.95)+M(0.5)", 0.95),
    ("M3(0.5)", 0.5),
    ("CM(0.3+0.2i)", abs(0.3 + 0.2j)),
    ("CM2(0.5+0.1i)+M(0.2)", abs(0.5 + 0.1j)),
    ("M(0.9)+M(-0.9)+CM(0.9i)", 0.9),
  ],
)
def test_spectral_radius(spec, radius):
  # Jordan blocks are defective; eigvals of M3 are accurate only to ~eps^(1/3).
  np.testing.assert_allclose(rllc.parse_propagator(spec).spectral_radius(), radius, rtol=1e-4)


# ---------------------------------------------------------------------------
# Direct sum (section 4, "Propagators and their unions").


def test_direct_sum_is_block_diagonal_with_concatenated_a():
  parts = [rllc.M(0.9), rllc.Mk(2, 0.6), rllc.CM(0.3 + 0.2j)]
  total = parts[0] + parts[1] + parts[2]
  b, a = _reference_b_a([("M", 1, 0.9), ("M", 2, 0.6), ("CM", 1, 0.3 + 0.2j)])
  assert total.k == 5
  np.testing.assert_allclose(np.asarray(total.B), b, rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(np.asarray(total.a), a)
  # Off-diagonal blocks are exactly zero, diagonal blocks are the parts' B.
  offsets = [0, 1, 3, 5]
  for i, part in enumerate(parts):
    lo, hi = offsets[i], offsets[i + 1]
    np.testing.assert_array_equal(np.asarray(total.B)[lo:hi, lo:hi], np.asarray(part.B))
    np.testing.assert_array_equal(np.asarray(total.a)[lo:hi], np.asarray(part.a))
    mask = np.ones(5, bool)
    mask[lo:hi] = False
    np.testing.assert_array_equal(np.asarray(total.B)[lo:hi][:, mask], 0.0)
  # Distinct parts: the labels are the parts' labels, concatenated.
  assert total.labels == parts[0].labels + parts[1].labels + parts[2].labels
  assert len(set(total.labels)) == total.k


def test_direct_sum_of_general_propagators():
  b1 = np.array([[0.5, 0.1], [-0.2, 0.3]])
  a1 = np.array([1.0, 2.0])
  p = rllc.Propagator(b1, a1, labels=("x", "y"))
  assert p.labels == ("x", "y")
  assert p.spec is None
  q = p + rllc.M(0.7)
  assert q.k == 3
  assert q.spec is None
  want_b = np.zeros((3, 3))
  want_b[:2, :2] = b1
  want_b[2, 2] = 0.7
  np.testing.assert_allclose(np.asarray(q.B), want_b, rtol=1e-6)
  np.testing.assert_allclose(np.asarray(q.a), [1.0, 2.0, 1.0])
  assert len(q.labels) == 3 and len(set(q.labels)) == 3


@pytest.mark.parametrize(
  "make",
  [
    lambda: rllc.M(0.9) + rllc.M(0.9),
    lambda: rllc.parse_propagator("M(0.9)+M(0.9)"),
    lambda: rllc.parse_propagator("M(0.9)⊕M(0.9)⊕M(0.9)"),
    lambda: rllc.CM(0.9j) + rllc.CM(0.9j),
    lambda: (
      rllc.Propagator(np.eye(2) * 0.5, np.ones(2)) + rllc.Propagator(np.eye(2) * 0.5, np.ones(2))
    ),
  ],
  ids=["M+M", "parsed M+M", "M+M+M", "CM+CM", "general+general"],
)
def test_labels_unique_readable_strings(make):
  prop = make()
  assert isinstance(prop.labels, tuple)
  assert len(prop.labels) == prop.k
  assert all(isinstance(label, str) and label for label in prop.labels)
  assert len(set(prop.labels)) == prop.k


# ---------------------------------------------------------------------------
# Spec parser.

ROUND_TRIP = {
  "M(0.9)+M(0)+M2(0.6)+CM(0.9i)": [("M", 1, 0.9), ("M", 1, 0.0), ("M", 2, 0.6), ("CM", 1, 0.9j)],
  "M(0.9)⊕M(-0.9)⊕CM(0.9i)": [("M", 1, 0.9), ("M", 1, -0.9), ("CM", 1, 0.9j)],
  "CM(0.3-0.2i)": [("CM", 1, 0.3 - 0.2j)],
  "CM2(0.5+0.1i)": [("CM", 2, 0.5 + 0.1j)],
  " M( 0.5 ) + M3(0.2)": [("M", 1, 0.5), ("M", 3, 0.2)],
  "CM(-0.5i)+M(1e-3)": [("CM", 1, -0.5j), ("M", 1, 1e-3)],
}


@pytest.mark.parametrize("spec", list(ROUND_TRIP))
def test_parse_gives_reference_b_and_a(spec):
  b, a = _reference_b_a(ROUND_TRIP[spec])
  prop = rllc.parse_propagator(spec)
  assert prop.k == len(a)
  np.testing.assert_allclose(np.asarray(prop.B), b, rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(np.asarray(prop.a), a)


@pytest.mark.parametrize("spec", list(ROUND_TRIP))
def test_round_trip(spec):
  prop = rllc.parse_propagator(spec)
  text = str(prop)
  assert prop.spec == text
  again = rllc.parse_propagator(text)
  np.testing.assert_array_equal(np.asarray(again.B), np.asarray(prop.B))
  np.testing.assert_array_equal(np.asarray(again.a), np.asarray(prop.a))
  assert str(again) == text  # canonical form is a fixed point
  assert again.labels == prop.labels


def test_canonical_spec_is_its_own_string():
  canonical = "M(0.9)+M(0)+M2(0.6)+CM(0.9i)"
  assert str(rllc.parse_propagator(canonical)) == canonical
  assert str(rllc.parse_propagator(" M(0.9) ⊕ M(0.0)+M2( 0.6 )⊕CM(0.9i) ")) == canonical
  built = rllc.M(0.9) + rllc.M(0.0) + rllc.Mk(2, 0.6) + rllc.CM(0.9j)
  assert str(built) == canonical


def test_constructor_spec_matches_parse():
  for spec, (_, factory) in CASES.items():
    prop = factory()
    parsed = rllc.parse_propagator(str(prop))
    np.testing.assert_array_equal(np.asarray(parsed.B), np.asarray(prop.B), err_msg=spec)
    np.testing.assert_array_equal(np.asarray(parsed.a), np.asarray(prop.a), err_msg=spec)


def _mentions_integer(message, number):
  return re.search(rf"(?<![\d.]){number}(?!\d)(?!\.\d)", message) is not None


# (spec, acceptable tokens (one must appear), acceptable positions, extra pattern)
BAD_SPECS = [
  ("M(0.9)+", ["+", "end"], [6, 7], None),
  ("X(2)", ["X"], [0], None),
  ("M()", ["M()", "()", ")"], [0, 1, 2], None),
  ("CM(0.9)", ["0.9"], [0, 2, 3], r"(?<![A-Za-z])M(?![A-Za-z0-9])"),
  ("M(1.0)", ["1.0", "M(1.0)"], [0, 2], r"allow_unstable"),
  ("M(1.2)", ["1.2", "M(1.2)"], [0, 2], r"allow_unstable"),
  ("M(-1.0)", ["-1.0", "M(-1.0)"], [0, 2], r"allow_unstable"),
  ("CM(1.2i)", ["1.2i", "CM(1.2i)"], [0, 3], r"allow_unstable"),
  ("M(0.9)++M(0)", ["+"], [6, 7], None),
  ("M(0.9", ["(", ")", "end", "M(0.9"], [0, 1, 5], None),
  ("M2()", ["M2()", "()", ")"], [0, 2, 3], None),
  ("M0(0.5)", ["M0"], [0, 1], None),
  ("", ["empty", "end"], [0], None),
  ("M(0.5) + X(2)", ["X"], [9], None),
  ("M(0.5)+M(0.9)+Y(1)", ["Y"], [14], None),
  ("M(0.5)+M(abc)", ["abc"], [7, 9], None),
  ("M(0.5) M(0.9)", ["M"], [7], None),
]


@pytest.mark.parametrize(
  "spec, tokens, positions, pattern", BAD_SPECS, ids=[repr(case[0]) for case in BAD_SPECS]
)
def test_bad_spec_names_token_and_position(spec, tokens, positions, pattern):
  with pytest.raises(ValueError) as info:
    rllc.parse_propagator(spec)
  message = str(info.value)
  assert any(token in message for token in tokens), message
  assert any(_mentions_integer(message, pos) for pos in positions), message
  if pattern is not None:
    assert re.search(pattern, message), message


@pytest.mark.parametrize(
  "spec, radius",
  [
    ("M(1.0)", 1.0),
    ("M(1.2)", 1.2),
    ("CM(1.2i)", 1.2),
    ("M(0.5)+M2(1.1)", 1.1),
  ],
)
def test_unstable_allowed_on_request(spec, radius):
  prop = rllc.parse_propagator(spec, allow_unstable=True)
  np.testing.assert_allclose(prop.spectral_radius(), radius, rtol=1e-4)
  b, a = _reference_b_a(
    {
      "M(1.0)": [("M", 1, 1.0)],
      "M(1.2)": [("M", 1, 1.2)],
      "CM(1.2i)": [("CM", 1, 1.2j)],
      "M(0.5)+M2(1.1)": [("M", 1, 0.5), ("M", 2, 1.1)],
    }[spec]
  )
  np.testing.assert_allclose(np.asarray(prop.B), b, rtol=1e-6)
  np.testing.assert_allclose(np.asarray(prop.a), a)
