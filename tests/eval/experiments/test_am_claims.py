"""Tests of the AM claims report (eval.experiments.am_claims): files, determinism, baseline.

None of these asserts the paper's claim; they check that the measurement is
made as described.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eval.experiments import am_claims, am_experiments

NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\d+)(?:[eE][-+]?\d+)?")


def _table_rows(text: str, header_start: str) -> list[str]:
  """The body rows of the markdown table whose header line starts with `header_start`."""
  lines = text.splitlines()
  start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
  rows = []
  for line in lines[start + 2 :]:
    if not line.startswith("|"):
      break
    rows.append(line)
  return rows


def test_quick_report_files_tables_and_determinism(tmp_path):
  am_claims.main(["--quick", "--out", str(tmp_path)])
  names = ("am_claims.md", "am_claims.svg")
  for name in names:
    assert (tmp_path / name).stat().st_size > 0
  assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)  # SVG only: no PNG
  assert not list(tmp_path.glob("*.tmp"))
  first = {name: (tmp_path / name).read_bytes() for name in names}
  text = first["am_claims.md"].decode()

  assert text.startswith("# ")
  assert "`python -m eval.experiments.am_claims --quick --out " in text
  for version in ("jax ", "numpy ", "scikit-learn "):
    assert version in text
  assert "Quadratic seeds: 0, 1" in text
  quad_head = "| κ | η·L | AM λ=0 median | best fixed β (by median) |"
  logreg_head = "| data set | n | d | L | η·L | β=0 | β=0.5 | β=0.9 | β=0.99 | AM λ=0 |"
  for head in (quad_head, logreg_head, "| κ | η·L | β=0 |", "| κ | η·L | t="):
    assert head in text
  for section in ("## Quadratics", "## Logistic regression", "## Verdict", "## Caveats"):
    assert f"\n{section}\n" in text
  assert "**Overall.**" in text
  assert "`am_claims.svg`" in text and ".png" not in text  # the caveat names the file written
  assert "- **κ = 100.**" in text and "- **breast_cancer.**" in text

  # Every number in the two main tables is finite (a diverged run would read "diverged").
  for head, n_rows in ((quad_head, 1), (logreg_head, 1)):
    rows = _table_rows(text, head)
    assert len(rows) == n_rows
    for row in rows:
      assert "diverged" not in row and "nan" not in row.lower()
      values = [float(v) for v in NUMBER.findall(row)]
      assert values and all(np.isfinite(values))

  # The same command gives the same files, byte for byte.
  am_claims.main(["--quick", "--out", str(tmp_path)])
  for name in names:
    assert (tmp_path / name).read_bytes() == first[name], name


def test_bad_option_exits_nonzero(capsys):
  with pytest.raises(SystemExit) as exc:
    am_claims.main(["--no-such-option"])
  assert exc.value.code != 0
  assert "unrecognized arguments" in capsys.readouterr().err


def _small_quadratic(kappa=30.0, seed=3, dim=8):
  return am_experiments.quadratic_problem(kappa, seed, dim=dim)


def test_fixed_beta_zero_is_gradient_descent():
  """beta = 0 in eq. (5) is x_{t+1} = x_t - eta (A x_t - b), through the report's vmapped runner."""
  A, x_star, x0 = _small_quadratic()
  b = A @ x_star
  eta, steps = 0.7, 40
  x, expected = x0.copy(), []
  for _ in range(steps + 1):
    expected.append(0.5 * (x - x_star) @ A @ (x - x_star))
    x = x - eta * (A @ x - b)
  with jax.enable_x64(True):
    runner = am_experiments._fixed_runner(am_experiments.quadratic_gap, steps)
    got = runner(
      (jnp.asarray(A)[None], jnp.asarray(x_star)[None]),
      jnp.asarray(x0)[None],
      jnp.asarray([eta]),
      jnp.asarray([0.0, 0.9]),
    )
  got = np.asarray(got)  # (etas, betas, problems, T+1)
  np.testing.assert_allclose(got[0, 0, 0], expected, rtol=1e-12, atol=1e-300)
  assert not np.allclose(got[0, 1, 0], expected)  # beta = 0.9 is not GD


def _independent_am_mgd(A, x_star, x0, eta, lam, steps):
  """Algorithm 1 (deterministic) in plain numpy: eq. (12) with f̂(x_t) = f(x_{t-1}), eq. (13)."""

  def f(x):
    return 0.5 * (x - x_star) @ A @ (x - x_star)

  x, d, f_prev, values = x0.copy(), None, None, [f(x0)]
  for _ in range(steps):
    g = A @ (x - x_star)
    if d is None:  # d_0 = g_0: the first step is a gradient step whatever beta is
      d, beta = g, 0.0
    else:
      e = d - g
      beta = ((f_prev - f(x)) * (lam + 1) / eta - e @ (g + lam * d)) / (e @ e)
      beta = min(max(beta, 0.0), 1.0)
    d = ((beta + lam) * d + (1 - beta) * g) / (1 + lam)
    f_prev = f(x)
    x = x - eta * d
    values.append(f(x))
  return np.array(values)


@pytest.mark.parametrize("lam", [0.0, 0.1])
def test_report_runs_am_mgd_as_algorithm_1(lam):
  """The report's AM runs (rllc.am_mgd through the runner) follow an independent eq. 12-13."""
  A, x_star, x0 = _small_quadratic()
  eta, steps = 0.5, 60
  expected = _independent_am_mgd(A, x_star, x0, eta, lam, steps)
  with jax.enable_x64(True):
    values, betas = am_experiments._am_runner(am_experiments.quadratic_gap, steps, lam)(
      (jnp.asarray(A)[None], jnp.asarray(x_star)[None]),
      jnp.asarray(x0)[None],
      jnp.asarray([eta]),
    )
  np.testing.assert_allclose(np.asarray(values)[0, 0], expected, rtol=1e-9)
  assert np.asarray(betas).shape == (1, 1, steps)


def test_wins_count_ties_and_divergence():
  fixed = np.array([[1e-3, 1e-30, 5.0], [2e-3, 1e-25, 6.0]])  # (betas, problems)
  am = np.array([5e-4, 1e-28, np.nan])
  wins, ties = am_experiments.am_wins(am, fixed, floor=np.array([0.0, 1e-20, 0.0]))
  assert wins.tolist() == [True, False, False]  # solved both: a tie; NaN: a loss
  assert ties.tolist() == [False, True, False]
