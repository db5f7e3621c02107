"""eval.report.statistics, each function against a computation that does not share its code.

Hand-worked numbers (profiles, Holm), brute force over every subset (the
expected best of n), a double loop (P(A > B)), a Monte-Carlo simulation and
scipy's noncentral t written out (power). No training, no store: fast.
"""

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from eval.report import statistics

# ---------------------------------------------------------------- performance profiles

# 3 tasks x 3 solvers of test error; solver 2 diverged on task 2.
COSTS = [
  [0.10, 0.20, 0.15],  # ratios 1, 2, 1.5
  [0.40, 0.20, 0.30],  # ratios 2, 1, 1.5
  [0.05, 0.05, math.inf],  # ratios 1, 1, inf
]


def test_performance_ratios_by_hand():
  ratios = statistics.performance_ratios(COSTS)
  expected = [[1, 2, 1.5], [2, 1, 1.5], [1, 1, math.inf]]
  np.testing.assert_allclose(ratios, expected)


def test_performance_ratios_with_a_zero_best_and_a_task_nobody_finished():
  ratios = statistics.performance_ratios([[0.0, 0.0, 0.1], [math.nan, math.inf, math.inf]])
  assert ratios.tolist() == [[1.0, 1.0, math.inf], [math.inf] * 3]


def test_performance_profile_by_hand():
  ratios = statistics.performance_ratios(COSTS)
  rho = statistics.performance_profile(ratios, [1.0, 1.25, 1.5, 2.0, 10.0])
  # solver 0: ratios {1, 2, 1}; solver 1: {2, 1, 1}; solver 2: {1.5, 1.5, inf}.
  expected = [
    [2 / 3, 2 / 3, 2 / 3, 1, 1],
    [2 / 3, 2 / 3, 2 / 3, 1, 1],
    [0, 0, 2 / 3, 2 / 3, 2 / 3],
  ]
  np.testing.assert_allclose(rho, expected)


def test_profile_area_is_the_integral_of_the_step_function():
  ratios = statistics.performance_ratios(COSTS)
  # tau_max 2: solver 0 gets (1 + 0 + 1) / 3; solver 2 gets (0.5 + 0.5 + 0) / 3.
  np.testing.assert_allclose(statistics.profile_area(ratios, 2.0), [2 / 3, 2 / 3, 1 / 3])
  # Against a fine Riemann sum of rho over [1, 4].
  taus = np.linspace(1, 4, 300_001)
  rho = statistics.performance_profile(ratios, taus)
  riemann = rho[:, :-1].mean(axis=1)  # left sums over equal steps, / (tau_max - 1) built in
  np.testing.assert_allclose(statistics.profile_area(ratios, 4.0), riemann, atol=1e-4)


# ---------------------------------------------------------------- Holm


def test_holm_on_the_worked_example():
  # Holm's procedure on four p-values (the example of Wikipedia's "Holm–Bonferroni
  # method"): sorted 0.005, 0.01, 0.03, 0.04 scale by 4, 3, 2, 1 to 0.02, 0.03,
  # 0.06, 0.04; the running maximum makes the last 0.06. At 0.05, H1 and H4 are
  # rejected, H2 and H3 are not.
  adjusted = statistics.holm([0.01, 0.04, 0.03, 0.005])
  np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])
  assert (adjusted < 0.05).tolist() == [True, False, False, True]


def test_holm_caps_at_one_keeps_ties_equal_and_leaves_a_single_test_alone():
  np.testing.assert_allclose(statistics.holm([0.5, 0.5, 0.9]), [1.0, 1.0, 1.0])
  np.testing.assert_allclose(statistics.holm([0.02, 0.02]), [0.04, 0.04])
  np.testing.assert_allclose(statistics.holm([0.03]), [0.03])
  assert statistics.holm([]).tolist() == []


# ---------------------------------------------------------------- t intervals


def test_t_interval_and_welch_interval_by_hand():
  low, high = statistics.t_interval([1.0, 2.0, 3.0])
  half = stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)  # s = 1
  assert (low, high) == pytest.approx((2 - half, 2 + half))
  a, b = [0.10, 0.11, 0.12], [0.20, 0.22, 0.24]
  va, vb = 0.0001 / 3, 0.0004 / 3
  nu = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 2)
  half = stats.t.ppf(0.975, nu) * math.sqrt(va + vb)
  assert statistics.welch_interval(a, b) == pytest.approx((-0.11 - half, -0.11 + half))


# ---------------------------------------------------------------- tuning budget


def brute_force_best_of_n(valid, test, n):
  """Every n-subset; the pick is a uniformly random one of the subset's lowest finite scores."""
  picks, diverged = [], 0
  for subset in itertools.combinations(range(len(valid)), n):
    finite = [i for i in subset if math.isfinite(valid[i])]
    if not finite:
      diverged += 1
      continue
    low = min(valid[i] for i in finite)
    picks.append(np.mean([test[i] for i in finite if valid[i] == low]))
  total = math.comb(len(valid), n)
  return (np.mean(picks) if picks else math.nan), diverged / total


# 8 points: distinct scores, a tie (0.3 twice, different test values), two diverged.
VALID = [0.5, 0.3, math.inf, 0.2, 0.3, 0.9, math.inf, 0.45]
TEST = [0.55, 0.31, math.nan, 0.26, 0.35, 0.8, math.nan, 0.5]


@pytest.mark.parametrize("n", range(1, 9))
def test_expected_best_of_n_against_every_subset(n):
  expected, p_diverged = statistics.expected_best_of_n(VALID, TEST, n)
  brute, brute_diverged = brute_force_best_of_n(VALID, TEST, n)
  assert expected == pytest.approx(brute, rel=1e-12)
  assert p_diverged == pytest.approx(brute_diverged, rel=1e-12)


def test_budget_curve_ends_at_the_full_grids_pick_and_starts_at_the_mean():
  curve, diverged = statistics.budget_curve(VALID, TEST)
  assert curve[-1] == pytest.approx(0.26) and diverged[-1] == 0  # the best validation point
  finite = [t for t in TEST if math.isfinite(t)]
  assert curve[0] == pytest.approx(np.mean(finite)) and diverged[0] == pytest.approx(2 / 8)
  assert statistics.expected_best_of_n([math.inf, math.inf], [math.nan] * 2, 1)[1] == 1.0


def test_expected_best_of_n_with_distinct_scores_is_the_rank_formula():
  rng = np.random.default_rng(3)
  valid, test = rng.permutation(10) / 10.0, rng.normal(size=10)
  ranks = stats.rankdata(-valid)  # worst = 1 ... best = N
  for n in (1, 4, 10):
    weights = [math.comb(int(r) - 1, n - 1) / math.comb(10, n) for r in ranks]
    assert statistics.expected_best_of_n(valid, test, n)[0] == pytest.approx(
      float(np.dot(weights, test))
    )


# ---------------------------------------------------------------- P(A > B) and the bootstrap


def test_probability_of_improvement_against_a_direct_count():
  a = [[0.1, 0.2, 0.3], [1.0, 1.0]]
  b = [[0.2, 0.25], [1.0, 0.5, 2.0]]
  per_task = []
  for xs, ys in zip(a, b, strict=True):
    wins = 0.0
    for x in xs:
      for y in ys:
        wins += 1.0 if x < y else 0.5 if x == y else 0.0
    per_task.append(wins / (len(xs) * len(ys)))
  # Task 1: 0.1 beats both, 0.2 ties 0.2 and beats 0.25, 0.3 beats neither: 3.5 / 6;
  # task 2: each 1.0 loses to 0.5, ties 1.0 and beats 2.0: (1.5 + 1.5) / 6.
  assert per_task == [3.5 / 6, 3 / 6]
  got = statistics.probability_of_improvement(a, b)
  assert got == pytest.approx(np.mean(per_task))


def _mean_score(arm):
  return statistics.mean_normalized_score(arm, [0.5, 2.0])


STRATA = [(np.array([0.5, 0.6, 0.7]),), (np.array([2.0, 2.2]),)]


def test_stratified_bootstrap_is_deterministic_for_a_seed():
  first = statistics.stratified_bootstrap(STRATA, _mean_score, resamples=500, seed=7)
  again = statistics.stratified_bootstrap(STRATA, _mean_score, resamples=500, seed=7)
  other = statistics.stratified_bootstrap(STRATA, _mean_score, resamples=500, seed=8)
  assert first == again
  assert (first.low, first.high) != (other.low, other.high)
  assert (first.resamples, first.seed, first.confidence) == (500, 7, 0.95)


def test_stratified_bootstrap_resamples_within_strata_only():
  # The point estimate is the statistic of the data; each resample's task means stay inside
  # their own task's range, so the interval of the mean normalized score is inside
  # [mean of the minima, mean of the maxima] = [(1 + 1) / 2, (1.4 + 1.1) / 2].
  got = statistics.stratified_bootstrap(STRATA, _mean_score, resamples=2000, seed=0)
  assert got.point == pytest.approx((1.2 + 1.05) / 2)
  assert 1.0 <= got.low < got.point < got.high <= 1.25
  constant = [(np.array([1.0, 1.0]),), (np.array([4.0, 4.0, 4.0]),)]
  flat = statistics.stratified_bootstrap(constant, _mean_score, resamples=100, seed=0)
  assert flat.low == flat.high == flat.point == pytest.approx((2 + 2) / 2)


def test_bootstrap_of_the_probability_of_improvement_counts_each_resample_directly():
  strata = [(np.array([0.1, 0.3]), np.array([0.2, 0.4])), (np.array([1.0]), np.array([2.0]))]
  got = statistics.stratified_bootstrap(
    strata, statistics.probability_of_improvement, resamples=300, seed=1
  )
  # Task 1 alone: P = 3/4 (0.1 beats both, 0.3 beats 0.4); task 2: 1.
  assert got.point == pytest.approx((3 / 4 + 1) / 2)
  # Replaying the same draws by hand gives the same quantiles.
  rng = np.random.default_rng(1)
  draws = []
  for stratum in strata:
    draws.append(
      [values[rng.integers(0, len(values), size=(300, len(values)))] for values in stratum]
    )
  values = []
  for r in range(300):
    per_task = []
    for a, b in draws:
      per_task.append(
        np.mean([1.0 if x < y else 0.5 if x == y else 0.0 for x in a[r] for y in b[r]])
      )
    values.append(np.mean(per_task))
  assert (got.low, got.high) == pytest.approx(tuple(np.quantile(values, [0.025, 0.975])))


def test_interquartile_mean_by_hand():
  # Pooled normalized values 1, 2, 3, 4 (task 1) and 5, 6, 7, 100 (task 2, ref 1):
  # trimming 2 from each end of 8 leaves 3, 4, 5, 6.
  got = statistics.interquartile_mean([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 100.0]], [1.0, 1.0])
  assert got == pytest.approx(4.5)


# ---------------------------------------------------------------- power


def test_welch_power_is_scipys_noncentral_t_written_out():
  d, sa, sb = 0.8, 1.0, 0.6
  for n in (2, 5, 20):
    nu = (n - 1) * (sa**2 + sb**2) ** 2 / (sa**4 + sb**4)
    delta = d / math.sqrt((sa**2 + sb**2) / n)
    critical = stats.t.isf(0.05, nu)
    by_hand = 1 - stats.nct.cdf(critical, nu, delta)
    assert statistics.welch_power(d, sa, sb, n) == pytest.approx(by_hand, rel=1e-10)


def test_seeds_for_power_is_the_least_n_reaching_80_percent():
  d, sa, sb = 0.5, 0.4, 0.3
  n = statistics.seeds_for_power(d, sa, sb)

  def power(k):
    nu = (k - 1) * (sa**2 + sb**2) ** 2 / (sa**4 + sb**4)
    return stats.nct.sf(stats.t.isf(0.05, nu), nu, d / math.sqrt((sa**2 + sb**2) / k))

  assert power(n) >= 0.8 and (n == 2 or power(n - 1) < 0.8)
  # The normal approximation (z_0.95 + z_0.8)² (s_a² + s_b²) / d² = 6.2 is a lower bound:
  # the t's heavier tails at few seeds ask for more.
  normal = (stats.norm.isf(0.05) + stats.norm.isf(0.2)) ** 2 * (sa**2 + sb**2) / d**2
  assert math.ceil(normal) <= n <= math.ceil(normal) + 2


def test_seeds_for_power_agrees_with_simulated_welch_tests():
  # Simulate the one-sided Welch test with the computed n: its rejection rate is about 80%,
  # and with n - 1 seeds lower (the noncentral t is an approximation for Welch's test).
  d, sa, sb = 1.0, 1.0, 1.0
  n = statistics.seeds_for_power(d, sa, sb)
  rng = np.random.default_rng(0)
  trials = 20_000

  def rejection_rate(k):
    a = rng.normal(0.0, sa, size=(trials, k))
    b = rng.normal(d, sb, size=(trials, k))
    p = stats.ttest_ind(a, b, axis=1, equal_var=False, alternative="less").pvalue
    return float((p < 0.05).mean())

  assert rejection_rate(n) == pytest.approx(0.8, abs=0.03)
  assert rejection_rate(n - 1) < rejection_rate(n)


def test_seeds_for_power_says_when_a_difference_is_out_of_reach():
  assert statistics.seeds_for_power(1e-4, 1.0, 1.0, limit=1000) is None
  assert statistics.seeds_for_power(-0.5, 0.1, 0.1) is None  # the wrong direction
  assert statistics.seeds_for_power(10.0, 0.1, 0.1) == 2  # already reached at the minimum
