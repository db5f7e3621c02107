"""Propagators: the linear update rule of k memory units.

Section 4 of the RLLC paper ("Dynamic memory based adaptive optimization").
A propagator of dimension k is a pair (B, a), B in R^{k x k}, a in R^k, and
the memory matrix M in R^{n x k} (one column per memory unit) is updated by

  M <- M B + g a^T                                                    (eq. 1)

when the gradient g arrives. Started from M = 0, unit j holds

  m_j = sum_{i >= 0} (a^T B^i)_j g_{t-i}                               (eq. 2)

and the sequence {(a^T B^i)_j}_i is the unit's *abstract rule*. The past is
forgotten only when the spectral radius of B is below 1.

By Theorem 5.2 and the real Jordan form, every propagator is equivalent to a
direct sum (block-diagonal B, concatenated a) of the blocks built here:

- ``M(beta)``: momentum, m <- beta m + g.
- ``Mk(k, beta)``: the k x k Jordan block; m_1 <- beta m_1 + g and
  m_i <- beta m_i + m_{i-1} (appendix A.3). With the right-multiplication
  convention of eq. 1, the ones sit on the superdiagonal of B and a = e_1.
- ``CM(gamma)``: complex momentum c <- gamma c + g for complex gamma, stored
  as the two real units (Re c, Im c). Writing gamma = x + iy,
  Re c <- x Re c - y Im c + g and Im c <- y Re c + x Im c, so the block is
  B = [[x, y], [-y, x]] (the transpose of the paper's display, which uses
  the column convention) and a = (1, 0). No complex dtype is ever stored.
- ``CMk(k, gamma)``: the real Jordan block of size 2k, the complex chain
  c_1 <- gamma c_1 + g, c_j <- gamma c_j + c_{j-1}, stored as
  (Re c_1, Im c_1, Re c_2, Im c_2, ...).

B and a are NumPy arrays when their values are known, so that a spec can be
parsed (and checked) even inside a jit trace, and jax arrays when a beta is
traced, so that one compiled program can vmap over the betas of a grid.
JAX is imported only for a traced beta: parsing and naming a spec (the
report, `rllc --help`) need NumPy alone.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys

import numpy as np


def format_real(x: float) -> str:
  """The shortest text that reads back as the same float: 0.9, 0, -1e-07."""
  text = repr(float(x))
  return text[:-2] if text.endswith(".0") else text


def format_complex(z: complex) -> str:
  """Spec text of a complex number: 0.9i, 0.3+0.2i, 0.3-0.2i."""
  imag = f"{format_real(z.imag)}i"
  if z.real == 0:
    return imag
  sign = "" if imag.startswith("-") else "+"
  return f"{format_real(z.real)}{sign}{imag}"


def _is_concrete(*values) -> bool:
  """No value is a JAX tracer (and none can be while JAX is not imported)."""
  jax = sys.modules.get("jax")
  return jax is None or not any(isinstance(v, jax.core.Tracer) for v in values)


def _xp(*values):
  """NumPy for known values, jax.numpy as soon as one of them is traced."""
  return np if _is_concrete(*values) else importlib.import_module("jax.numpy")


def _unique(labels: list[str]) -> tuple[str, ...]:
  """Suffixes repeated labels with #2, #3, ... so every unit has its own."""
  used: set[str] = set()
  out = []
  for label in labels:
    candidate, n = label, 1
    while candidate in used:
      n += 1
      candidate = f"{label}#{n}"
    used.add(candidate)
    out.append(candidate)
  return tuple(out)


@dataclasses.dataclass(frozen=True, eq=False)
class Propagator:
  """A linear memory update rule M <- M B + g a^T for k memory units.

  Attributes:
    B: (k, k) transition matrix.
    a: (k,) input vector: how the new gradient enters each unit.
    labels: one readable label per unit, used to log and plot the law.
    spec: canonical spec string for Jordan-block sums, None for a general
      (B, a), which has no spec.
    pattern: which entries of B may be nonzero, as nested tuples of bools.
      Derived from B when its values are known; the block constructors give
      it when a beta is traced (the nonzeros sit at known places), and a
      traced general B has every entry. The update reads unit i for unit j
      only where pattern[i][j] holds.
  """

  B: np.ndarray  # or a jax.Array when a beta is traced
  a: np.ndarray  # or a jax.Array when a beta is traced
  labels: tuple[str, ...] = ()
  spec: str | None = None
  pattern: tuple[tuple[bool, ...], ...] | None = None

  def __post_init__(self):
    xp = _xp(self.B, self.a)
    B = xp.asarray(self.B)
    a = xp.asarray(self.a)
    if B.ndim != 2 or B.shape[0] != B.shape[1] or a.shape != B.shape[:1]:
      raise ValueError(
        f"a propagator needs B of shape (k, k) and a of shape (k,), got B {B.shape} and a {a.shape}"
      )
    object.__setattr__(self, "B", B)
    object.__setattr__(self, "a", a)
    labels = self.labels or tuple(f"u{i + 1}" for i in range(B.shape[0]))
    if len(labels) != B.shape[0]:
      raise ValueError(f"{len(labels)} labels for {B.shape[0]} memory units")
    object.__setattr__(self, "labels", _unique(list(labels)))
    if _is_concrete(B):
      pattern = B != 0
    elif self.pattern is None:
      pattern = np.ones(B.shape, bool)
    else:
      pattern = np.asarray(self.pattern, bool)
    object.__setattr__(self, "pattern", tuple(tuple(bool(x) for x in row) for row in pattern))

  @property
  def k(self) -> int:
    """The number of memory units."""
    return self.B.shape[0]

  def __add__(self, other: Propagator) -> Propagator:
    """Direct sum (the paper's ⊕): the units of both, updated independently."""
    if not isinstance(other, Propagator):
      return NotImplemented
    xp = _xp(self.B, other.B, self.a, other.a)
    zeros = xp.zeros((self.k, other.k))
    B = xp.block([[self.B, zeros], [zeros.T, other.B]])
    spec = None
    if self.spec is not None and other.spec is not None:
      spec = f"{self.spec}+{other.spec}"
    off = np.zeros((self.k, other.k), bool)
    pattern = np.block([[np.asarray(self.pattern), off], [off.T, np.asarray(other.pattern)]])
    return Propagator(
      B, xp.concatenate([self.a, other.a]), self.labels + other.labels, spec, pattern
    )

  def frozen(self) -> Propagator:
    """Itself, its known B and a made read-only: safe to share (a parsed spec is remembered)."""
    if _is_concrete(self.B, self.a):
      self.B.setflags(write=False)
      self.a.setflags(write=False)
    return self

  def __str__(self) -> str:
    return self.spec if self.spec is not None else f"Propagator(k={self.k})"

  def __repr__(self) -> str:
    return f"Propagator({self.spec!r})" if self.spec else str(self)

  def spectral_radius(self) -> float:
    """max |eigenvalue of B|; the memory decays iff this is below 1."""
    return float(np.max(np.abs(np.linalg.eigvals(np.asarray(self.B)))))

  def abstract_rule(self, n: int) -> np.ndarray:
    """Rows a^T B^i for i = 0..n-1: the weight of g_{t-i} in each unit."""
    B = np.asarray(self.B, np.float64)
    row = np.asarray(self.a, np.float64)
    rows = []
    for _ in range(n):
      rows.append(row)
      row = row @ B
    return np.stack(rows)


def Mk(k: int, beta) -> Propagator:  # noqa: N802 (the paper's name)
  """The k x k real Jordan block M_k(beta): iterated momentum."""
  if k < 1:
    raise ValueError(f"Mk needs k >= 1, got {k}")
  xp = _xp(beta)
  B = beta * xp.eye(k) + xp.eye(k, k=1)
  a = xp.eye(k)[0]
  if not _is_concrete(beta):
    labels = tuple(f"M{k}(β)[{i + 1}]" for i in range(k))
    return Propagator(B, a, labels, pattern=np.eye(k, dtype=bool) | np.eye(k, k=1, dtype=bool))
  name = "M" if k == 1 else f"M{k}"
  spec = f"{name}({format_real(beta)})"
  labels = (spec,) if k == 1 else tuple(f"{spec}[{i + 1}]" for i in range(k))
  return Propagator(B, a, labels, spec)


def M(beta) -> Propagator:  # noqa: N802 (the paper's name)
  """Momentum M(beta): one unit, m <- beta m + g."""
  return Mk(1, beta)


def CMk(k: int, gamma) -> Propagator:  # noqa: N802 (the paper's name)
  """The real Jordan block CM_k(gamma) of size 2k for complex gamma.

  Args:
    k: the length of the complex chain.
    gamma: a complex number (Python complex), or a pair (re, im) of possibly
      traced reals.

  Returns:
    The propagator with units (Re c_1, Im c_1, ..., Re c_k, Im c_k).
  """
  if k < 1:
    raise ValueError(f"CMk needs k >= 1, got {k}")
  re, im = (gamma.real, gamma.imag) if isinstance(gamma, complex) else gamma
  xp = _xp(re, im)
  rotation = xp.eye(2) * re + xp.array([[0.0, 1.0], [-1.0, 0.0]]) * im
  B = xp.kron(xp.eye(k), rotation) + xp.kron(xp.eye(k, k=1), xp.eye(2))
  a = xp.eye(2 * k)[0]
  if not _is_concrete(re, im):
    labels = tuple(f"CM{k}(γ)[{i // 2 + 1}].{('re', 'im')[i % 2]}" for i in range(2 * k))
    pattern = np.kron(np.eye(k), np.ones((2, 2))) + np.kron(np.eye(k, k=1), np.eye(2)) != 0
    return Propagator(B, a, labels, pattern=pattern)
  name = "CM" if k == 1 else f"CM{k}"
  spec = f"{name}({format_complex(complex(re, im))})"
  if k == 1:
    labels = (f"{spec}.re", f"{spec}.im")
  else:
    labels = tuple(f"{spec}[{i // 2 + 1}].{('re', 'im')[i % 2]}" for i in range(2 * k))
  return Propagator(B, a, labels, spec)


def CM(gamma) -> Propagator:  # noqa: N802 (the paper's name)
  """Complex momentum CM(gamma): Re and Im of c <- gamma c + g."""
  return CMk(1, gamma)


def direct_sum(props: list[Propagator]) -> Propagator:
  """p_1 ⊕ p_2 ⊕ ... of a non-empty list, built at once: linear in its k^2 entries (adding
  the terms one by one would rebuild the growing matrices at each)."""
  if len(props) == 1 or not _is_concrete(*(x for p in props for x in (p.B, p.a))):
    total = props[0]
    for prop in props[1:]:
      total = total + prop
    return total
  k = sum(p.k for p in props)
  B = np.zeros((k, k), np.result_type(*(p.B for p in props)))
  pattern = np.zeros((k, k), bool)
  start = 0
  for prop in props:
    end = start + prop.k
    B[start:end, start:end] = prop.B
    pattern[start:end, start:end] = prop.pattern
    start = end
  specs = [p.spec for p in props]
  return Propagator(
    B,
    np.concatenate([p.a for p in props]),
    tuple(label for p in props for label in p.labels),
    "+".join(specs) if None not in specs else None,
    pattern,
  )
