"""The propagator spec language: "M(0.9)+M(0)+M2(0.6)+CM(0.9i)".

Grammar (whitespace is allowed between tokens):

  spec   := term (("+" | "⊕") term)*
  term   := name "(" number ")"
  name   := "M" | "M<k>" | "CM" | "CM<k>"       k >= 1, e.g. M2, CM3
  number := a real for M and Mk: 0.9, -0.9, 1e-3
            a complex for CM and CMk: 0.9i, -0.5i, 0.3+0.2i, 0.3-0.2i

Adding a propagator configuration to the suite is writing such a string: no
code. Bad input raises ValueError naming the offending token, its 0-based
position in the spec and what would be valid, and has no other effect.

Limits, checked before anything is built: a spec has at most MAX_SPEC_LENGTH
characters and MAX_UNITS memory units (an Mk term has k, a CMk term 2k); the
optimizer keeps one parameter-sized buffer per unit. Parsing takes time linear
in the spec, and a spec is parsed once: `parse_propagator` remembers the
propagators of recent specs (they are immutable).
"""

import functools
import math
import re

from rllc import propagator as prop_lib

MAX_SPEC_LENGTH = 4096  # characters
MAX_UNITS = 256  # memory units of a whole spec

_VALID = "valid terms are M(β), Mk(β), CM(γ) and CMk(γ), e.g. M(0.9)+M2(0.6)+CM(0.9i)"
_REAL = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_REAL_RE = re.compile(rf"{_REAL}$")
_COMPLEX_RE = re.compile(rf"(?:({_REAL})(?=[+-]))?({_REAL})?i$")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


def _error(spec: str, pos: int, token: str, why: str) -> ValueError:
  shown = repr(_clip(token)) if token else "end of spec"
  return ValueError(f"bad propagator spec {_clip(spec)!r}: {shown} at position {pos}: {why}")


def _clip(text: str, limit: int = 80) -> str:
  """A long spec or token shortened for a message (its position says where)."""
  return text if len(text) <= limit else text[: limit - 3] + "..."


def _skip_space(spec: str, pos: int) -> int:
  while pos < len(spec) and spec[pos].isspace():
    pos += 1
  return pos


def _finite(spec: str, pos: int, text: str, value: float) -> float:
  if not math.isfinite(value):
    raise _error(spec, pos, text, "not a finite number (it overflows a float)")
  return value


def _parse_real(spec: str, pos: int, text: str, name: str) -> float:
  if _REAL_RE.match(text):
    return _finite(spec, pos, text, float(text))
  if _COMPLEX_RE.match(text):
    raise _error(
      spec, pos, text, f"{name} takes a real β; for a complex γ use CM{name[1:]}({text})"
    )
  raise _error(spec, pos, text, f"{name} takes a real number such as 0.9")


def _parse_complex(spec: str, pos: int, text: str, name: str) -> complex:
  match = _COMPLEX_RE.match(text)
  if match is None:
    if _REAL_RE.match(text):
      raise _error(
        spec,
        pos,
        text,
        f"{name} takes a complex γ such as 0.9i or 0.3+0.2i; for a real β use M{name[2:]}({text})",
      )
    raise _error(spec, pos, text, f"{name} takes a complex number such as 0.9i or 0.3+0.2i")
  real, imag = match.groups()
  imag = 1.0 if imag is None else _finite(spec, pos, text, float(imag))
  _finite(spec, pos, text, float(real or 0))
  if imag == 0:
    raise _error(
      spec,
      pos,
      text,
      f"{name} needs a nonzero imaginary part; for a real β use M{name[2:]}({real or 0})",
    )
  return complex(float(real or 0), imag)


def _parse_term(spec: str, pos: int, units: int) -> tuple[prop_lib.Propagator, int]:
  """Reads one term at pos, after `units` memory units; returns it and the position after it."""
  match = _NAME_RE.match(spec, pos)
  if match is None:
    token = spec[pos : pos + 1]
    raise _error(spec, pos, token, f"expected a propagator; {_VALID}")
  name = match.group()
  kind = re.fullmatch(r"(CM|M)(\d*)", name)
  if kind is None:
    raise _error(spec, pos, name, f"unknown propagator name; {_VALID}")
  size = int(kind.group(2) or 1)  # under 4,300 digits (Python's limit): the spec is short
  if size < 1:
    raise _error(spec, pos, name, f"the block size must be at least 1; {_VALID}")
  term_units = size * (2 if kind.group(1) == "CM" else 1)
  if units + term_units > MAX_UNITS:
    raise _error(
      spec,
      pos,
      name,
      f"a spec has at most {MAX_UNITS} memory units (one parameter-sized buffer each), and"
      f" this term would make {units + term_units:,}",
    )
  open_pos = _skip_space(spec, match.end())
  if spec[open_pos : open_pos + 1] != "(":
    raise _error(
      spec, open_pos, spec[open_pos : open_pos + 1], f"expected '(' after {name}; {_VALID}"
    )
  close_pos = spec.find(")", open_pos)
  if close_pos < 0:
    raise _error(spec, len(spec), "", f"missing ')' to close {name}( at position {open_pos}")
  arg_pos = _skip_space(spec, open_pos + 1)
  text = spec[arg_pos:close_pos].strip()
  if not text:
    raise _error(
      spec,
      pos,
      spec[pos : close_pos + 1],
      f"{name} needs an argument, e.g. {name}({'0.9i' if kind.group(1) == 'CM' else '0.9'})",
    )
  if kind.group(1) == "M":
    term = prop_lib.Mk(size, _parse_real(spec, arg_pos, text, name))
  else:
    term = prop_lib.CMk(size, _parse_complex(spec, arg_pos, text, name))
  return term, close_pos + 1


@functools.lru_cache(maxsize=256)
def parse_propagator(spec: str, *, allow_unstable: bool = False) -> prop_lib.Propagator:
  """Parses a spec such as "M(0.9)+M(0)+M2(0.6)+CM(0.9i)", once per spec (remembered).

  Args:
    spec: the spec string; "+" and "⊕" both mean the direct sum.
    allow_unstable: accept terms whose spectral radius is >= 1, i.e. whose
      memory never forgets. Off by default, since such an optimizer's memory
      grows without bound.

  Returns:
    The direct sum of the terms, with its canonical spec and unit labels.

  Raises:
    ValueError: naming the offending token and its position, or a spec beyond
      the limits (MAX_SPEC_LENGTH, MAX_UNITS).

  Example:
    M2 is a Jordan block of two units, CM a complex unit as its real and
    imaginary parts:

    >>> from rllc import spec
    >>> p = spec.parse_propagator("M(0.9)+M(0)+M2(0.6)+CM(0.9i)")
    >>> p.k, p.labels
    (6, ('M(0.9)', 'M(0)', 'M2(0.6)[1]', 'M2(0.6)[2]', 'CM(0.9i).re', 'CM(0.9i).im'))
  """
  if not isinstance(spec, str):
    raise TypeError(f"a propagator spec is a string, got {type(spec).__name__}")
  if len(spec) > MAX_SPEC_LENGTH:
    raise ValueError(
      f"bad propagator spec {_clip(spec)!r} ({len(spec):,} characters): a spec has at most"
      f" {MAX_SPEC_LENGTH:,} characters and {MAX_UNITS} memory units"
    )
  terms, units = [], 0
  pos = _skip_space(spec, 0)
  if pos == len(spec):
    raise _error(spec, pos, "", f"the spec is empty; {_VALID}")
  while True:
    start = pos
    term, pos = _parse_term(spec, pos, units)
    units += term.k
    radius = term.spectral_radius()
    if radius >= 1 and not allow_unstable:
      raise _error(
        spec,
        start,
        spec[start:pos],
        f"spectral radius {radius:g} >= 1, so this memory never decays; use "
        f"|β| < 1 (|γ| < 1), or pass allow_unstable=True",
      )
    terms.append(term)
    pos = _skip_space(spec, pos)
    if pos == len(spec):
      return prop_lib.direct_sum(terms).frozen()
    if spec[pos] not in "+⊕":
      raise _error(spec, pos, spec[pos], "expected '+' or '⊕' between terms")
    op_pos, pos = pos, _skip_space(spec, pos + 1)
    if pos == len(spec):
      raise _error(spec, op_pos, spec[op_pos], f"nothing follows it; {_VALID}")
