"""The statistics of a report that has to survive review: pure functions of plain arrays.

numpy and scipy only (no JAX, no store): eval.report.robustness gathers the inputs
from a store's selected results and renders them. Each function states its
formula and where it comes from.

- Performance profiles (Dolan & Moré 2002; AlgoPerf, Dahl et al. 2023):
  `performance_ratios`, `performance_profile`, `profile_area`.
- Multiple comparisons: `holm` (Holm 1979), step-down Bonferroni.
- Intervals: `t_interval`, `welch_interval` (per cell, normal seeds assumed);
  `stratified_bootstrap` (rliable, Agarwal et al. 2021) for aggregates over
  tasks x seeds, with `mean_normalized_score`, `interquartile_mean` and
  `probability_of_improvement` as its statistics.
- Tuning budget (Dodge et al. 2019, "Show your work"): `expected_best_of_n`,
  exact over all subsets of a grid.
- Seed counts: `welch_power`, `seeds_for_power` (noncentral t).

Conventions: "cost" arrays are lower-is-better (a loss, a test error); a
non-finite cost is a failure (diverged, or no result).
"""

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

# ---------------------------------------------------------------- performance profiles


def performance_ratios(costs) -> np.ndarray:
  """r[p, s] = c[p, s] / min_s' c[p, s'], for tasks p (rows) and solvers s (columns).

  Costs are lower-is-better and nonnegative. A non-finite cost (NaN or inf:
  diverged, or no result) has ratio inf, as Dolan & Moré give a failed solver
  r = r_M > every tau. A task whose best cost is 0 gives ratio 1 to the costs
  that are 0 and inf to the others (no finite ratio exists); a task where no
  solver has a finite cost has ratio inf everywhere.
  """
  costs = np.asarray(costs, np.float64)
  if costs.ndim != 2:
    raise ValueError(f"costs must be (tasks, solvers), got shape {costs.shape}")
  if np.any(costs[np.isfinite(costs)] < 0):
    raise ValueError("performance ratios need nonnegative costs")
  finite = np.where(np.isfinite(costs), costs, np.inf)
  best = finite.min(axis=1, keepdims=True)
  with np.errstate(divide="ignore", invalid="ignore"):
    ratios = finite / best
  ratios = np.where((best == 0) & (finite == 0), 1.0, ratios)
  return np.where(np.isfinite(ratios), ratios, np.inf)


def performance_profile(ratios, taus) -> np.ndarray:
  """rho[s, j] = |{p : r[p, s] <= tau_j}| / |P|: the fraction of tasks within tau_j of the best.

  Dolan & Moré (2002), eq. (1); AlgoPerf's performance profile (Dahl et al.
  2023, section 4.5) with the final loss or error in place of the time to a
  target. Non-decreasing in tau; rho(1) is the fraction of tasks a solver is
  the best on (ties all count).
  """
  ratios = np.asarray(ratios, np.float64)
  taus = np.asarray(taus, np.float64)
  return (ratios[:, :, None] <= taus[None, None, :]).mean(axis=0)


def profile_area(ratios, tau_max: float) -> np.ndarray:
  """B_s = 1 / (tau_max - 1) * integral_1^tau_max rho_s(tau) d tau, exactly.

  AlgoPerf's score (Dahl et al. 2023: the area under the profile up to
  r_max, normalized to [0, 1]). As rho_s is a step function the integral is
  exact: each task contributes (tau_max - r) / (tau_max - 1) when r < tau_max,
  else 0, so B_s = mean_p max(0, tau_max - r[p, s]) / (tau_max - 1). 1 means
  the best on every task; 0, never within tau_max of it.
  """
  if not tau_max > 1:
    raise ValueError("tau_max must exceed 1")
  ratios = np.asarray(ratios, np.float64)
  return (np.clip(tau_max - ratios, 0.0, None) / (tau_max - 1)).mean(axis=0)


# ---------------------------------------------------------------- multiple comparisons


def holm(pvalues: Sequence[float]) -> np.ndarray:
  """Holm–Bonferroni adjusted p-values, in the input's order.

  With the m p-values sorted, p_(1) <= ... <= p_(m):
      p~_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)).
  Rejecting every hypothesis with p~ < alpha controls the family-wise error
  rate at alpha under any dependence (Holm 1979). Equal p-values get equal
  adjusted values whatever their order.
  """
  p = np.asarray(pvalues, np.float64)
  if p.ndim != 1 or np.any((p < 0) | (p > 1) | np.isnan(p)):
    raise ValueError("Holm needs a vector of p-values in [0, 1]")
  m = len(p)
  order = np.argsort(p, kind="stable")
  scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
  adjusted = np.empty(m)
  adjusted[order] = np.maximum.accumulate(scaled)
  return adjusted


# ---------------------------------------------------------------- t intervals


def t_interval(values, confidence: float = 0.95) -> tuple[float, float]:
  """mean ± t_{(1+c)/2, n-1} s / sqrt(n): the interval for a mean from n >= 2 normal draws.

  Assumes the seeds' values are independent draws of one normal
  distribution; with 2 or 3 seeds nothing can check that, and no resampling
  method does better (a bootstrap over 3 values has at most 10 distinct
  resample means and undercovers badly).
  """
  x = np.asarray(values, np.float64)
  if len(x) < 2:
    raise ValueError("a t interval needs at least 2 values")
  half = stats.t.ppf((1 + confidence) / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
  return float(x.mean() - half), float(x.mean() + half)


def welch_interval(a, b, confidence: float = 0.95) -> tuple[float, float]:
  """The Welch interval for mean(a) - mean(b): d ± t_{(1+c)/2, nu} sqrt(s_a²/n_a + s_b²/n_b).

  nu is the Welch–Satterthwaite degrees of freedom
      nu = (s_a²/n_a + s_b²/n_b)² / ((s_a²/n_a)² / (n_a - 1) + (s_b²/n_b)² / (n_b - 1)).
  The same normal-seeds assumption as `t_interval`; needs some spread.
  """
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if min(len(a), len(b)) < 2:
    raise ValueError("a Welch interval needs at least 2 values on each side")
  va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
  if va + vb == 0:
    raise ValueError("a Welch interval needs some spread")
  nu = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
  half = stats.t.ppf((1 + confidence) / 2, nu) * math.sqrt(va + vb)
  d = a.mean() - b.mean()
  return float(d - half), float(d + half)


# ---------------------------------------------------------------- aggregates and the bootstrap


def mean_normalized_score(per_task: Sequence, references: Sequence[float]) -> np.ndarray:
  """mean_p mean_k x[p][..., k] / ref_p: the mean over tasks of the mean over seeds.

  per_task[p] has the seeds on its last axis (any leading axes, e.g. the
  bootstrap's resamples); ref_p > 0 is the task's reference, held fixed (as
  rliable holds its reference scores fixed). Every task weighs the same
  whatever its seed count.
  """
  terms = [
    np.asarray(x, np.float64).mean(axis=-1) / ref
    for x, ref in zip(per_task, references, strict=True)
  ]
  return np.mean(terms, axis=0)


def interquartile_mean(per_task: Sequence, references: Sequence[float]) -> np.ndarray:
  """The IQM of the normalized scores x / ref_p pooled over tasks and seeds (rliable).

  The mean of the middle 50% of the pooled values (scipy's trim_mean with
  0.25 cut from each end), robust to one outlying run in either direction.
  """
  pooled = np.concatenate(
    [np.asarray(x, np.float64) / ref for x, ref in zip(per_task, references, strict=True)], axis=-1
  )
  return stats.trim_mean(pooled, 0.25, axis=-1)


def probability_of_improvement(a_per_task: Sequence, b_per_task: Sequence) -> np.ndarray:
  """P(A < B) for costs, averaged over tasks (rliable's probability of improvement).

  Per task p: P_p = (1 / (n m)) sum_i sum_j [1(a_i < b_j) + 1/2 1(a_i = b_j)],
  the Mann–Whitney U statistic over n * m, i.e. the chance that a random run
  of A has a lower cost than a random run of B, ties counting half; then
  P(A > B) = mean_p P_p (Agarwal et al. 2021, eq. in section 4.3). Arrays
  may carry leading axes (resamples); the seeds are the last axis.
  """
  terms = []
  for a, b in zip(a_per_task, b_per_task, strict=True):
    a = np.asarray(a, np.float64)[..., :, None]
    b = np.asarray(b, np.float64)[..., None, :]
    terms.append(((a < b) + 0.5 * (a == b)).mean(axis=(-2, -1)))
  return np.mean(terms, axis=0)


@dataclasses.dataclass(frozen=True)
class Interval:
  """A point estimate and a percentile interval of a bootstrap."""

  point: float
  low: float
  high: float
  resamples: int
  seed: int
  confidence: float


def stratified_bootstrap(
  strata: Sequence[Sequence],
  statistic: Callable[..., np.ndarray],
  resamples: int = 2000,
  seed: int = 0,
  confidence: float = 0.95,
) -> Interval:
  """Percentile interval of `statistic` under resampling of seeds within each stratum.

  strata[p] is a tuple of 1-D arrays, one per arm (optimizer) on task p:
  each resample draws, for every task and arm independently, as many seeds
  as it has, uniformly with replacement (rliable's stratified bootstrap:
  the tasks are fixed, only the runs are resampled). `statistic(arms...)`
  gets one list per arm of per-task arrays of shape (R, n) and returns R
  values; the point estimate is the statistic of the data as it is. The
  interval is [q_{(1-c)/2}, q_{(1+c)/2}] of the R values (percentile
  bootstrap, rliable's default). The draws come from numpy's PCG64 seeded
  with `seed`, in task then arm order: the same inputs and seed give the
  same interval.
  """
  rng = np.random.default_rng(seed)
  arms = len(strata[0])
  resampled: list[list[np.ndarray]] = [[] for _ in range(arms)]
  observed: list[list[np.ndarray]] = [[] for _ in range(arms)]
  for stratum in strata:
    if len(stratum) != arms:
      raise ValueError("every stratum needs the same arms")
    for arm, values in enumerate(stratum):
      values = np.asarray(values, np.float64)
      if values.ndim != 1 or len(values) == 0:
        raise ValueError("each arm of a stratum needs a non-empty 1-D array")
      index = rng.integers(0, len(values), size=(resamples, len(values)))
      resampled[arm].append(values[index])
      observed[arm].append(values[None, :])
  values = np.asarray(statistic(*resampled), np.float64)
  point = float(np.asarray(statistic(*observed), np.float64).reshape(-1)[0])
  low, high = np.quantile(values, [(1 - confidence) / 2, (1 + confidence) / 2])
  return Interval(point, float(low), float(high), resamples, seed, confidence)


# ---------------------------------------------------------------- tuning budget


def expected_best_of_n(valid, test, n: int) -> tuple[float, float]:
  """(E[test of the pick | the pick did not diverge], P(the pick diverged)) for n of N points.

  Draw n of the N grid points uniformly without replacement and pick the one
  with the lowest validation score (Dodge et al. 2019's expected validation
  performance, here the test metric of validation's pick). With the scores
  distinct and r_i the rank of point i by validation (worst = 1 ... best = N),
  point i is the pick exactly when it is drawn and the n - 1 others come from
  the r_i - 1 worse points:
      P(pick = i) = C(r_i - 1, n - 1) / C(N, n),   E = sum_i P(pick = i) test_i.
  Ties: the points of a tied group g of value u share
      P(pick in g) = [C(#{v >= u}, n) - C(#{v > u}, n)] / C(N, n)
  and, the tie broken uniformly at random, each is picked with equal chance,
  so the group contributes P(pick in g) * mean(test over g). A non-finite
  validation score is a diverged setting (never picked unless every drawn
  point diverged): P(diverged) = C(D, n) / C(N, n) for D such points, and the
  expectation is over the subsets whose pick did not diverge,
      E = sum_{finite i} P(pick = i) test_i / (1 - P(diverged)).
  Exact, in integers up to the last division; NaN when every point diverged.
  """
  valid = np.asarray(valid, np.float64)
  test = np.asarray(test, np.float64)
  big_n = len(valid)
  if len(test) != big_n or not 1 <= n <= big_n:
    raise ValueError(f"need 1 <= n <= N = {big_n} and one test value per grid point")
  finite = np.isfinite(valid)
  if np.any(finite & ~np.isfinite(test)):
    raise ValueError("a point with a finite validation score needs a finite test value")
  total = math.comb(big_n, n)
  diverged = math.comb(int((~finite).sum()), n)
  weighted = 0.0
  for u in np.unique(valid[finite]):
    at_least = int((valid[finite] >= u).sum() + (~finite).sum())
    worse = at_least - int((valid == u).sum())
    share = math.comb(at_least, n) - math.comb(worse, n)
    weighted += share * float(test[valid == u].mean())
  if diverged == total:
    return math.nan, 1.0
  return weighted / (total - diverged), diverged / total


def budget_curve(valid, test) -> tuple[np.ndarray, np.ndarray]:
  """expected_best_of_n for n = 1 ... N: (expected test values, P(diverged)), each of length N."""
  pairs = [expected_best_of_n(valid, test, n) for n in range(1, len(valid) + 1)]
  return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


# ---------------------------------------------------------------- power and seed counts


def welch_power(difference: float, sd_a: float, sd_b: float, n, alpha: float = 0.05):
  """Power of the one-sided Welch's t-test at level alpha with n seeds per arm.

  With a true difference d > 0 in the tested direction and spreads s_a, s_b
  (taken as the true ones), the statistic is approximately noncentral t with
      nu = (n - 1) (s_a² + s_b²)² / (s_a⁴ + s_b⁴)      (Welch–Satterthwaite, n each),
      delta = d / sqrt((s_a² + s_b²) / n),
  so power = P(T_{nu, delta} > t_{1-alpha, nu}) = nct.sf(t.ppf(1 - alpha, nu), nu, delta).
  n may be an array.
  """
  n = np.asarray(n, np.float64)
  var = sd_a**2 + sd_b**2
  if var <= 0:
    raise ValueError("power needs some spread")
  nu = (n - 1) * var**2 / (sd_a**4 + sd_b**4)
  delta = difference / np.sqrt(var / n)
  return stats.nct.sf(stats.t.ppf(1 - alpha, nu), nu, delta)


def seeds_for_power(
  difference: float,
  sd_a: float,
  sd_b: float,
  alpha: float = 0.05,
  power: float = 0.8,
  limit: int = 1000,
) -> int | None:
  """The least n >= 2 seeds per arm for which `welch_power` reaches `power`; None if n > limit.

  difference is in the tested direction (positive: ours better by that
  much); a difference <= 0 cannot be detected by the one-sided test (None).
  Every n from 2 to limit is evaluated (one vectorized call), so no
  monotonicity is assumed.
  """
  if not difference > 0:
    return None
  ns = np.arange(2, limit + 1)
  reached = np.flatnonzero(welch_power(difference, sd_a, sd_b, ns, alpha) >= power)
  return int(ns[reached[0]]) if len(reached) else None
