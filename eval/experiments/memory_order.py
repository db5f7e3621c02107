"""The order of accuracy of the memoryless approximations (the memory paper, Corollary 3.3).

The memory paper (../shared/papers/memory_implicitly_modifies_the_loss.md) replaces an iteration
with memory (1), theta^{(n+1)} = theta^{(n)} - h F^{(n)}(theta^{(n)}, ..., theta^{(0)}), by the
memoryless iteration (4),

  theta~^{(n+1)} = theta~^{(n)} - h [F^{(n)}(theta~^{(n)}) + M^{(n)}(theta~^{(n)})],

with the correction M^{(n)} of (9). Corollary 3.3: started from theta~^{(0)} = theta^{(0)},

  max_{n <= floor(T/h)} ||theta^{(n)} - theta~^{(n)}||_inf <= C h^2,                        (*)

and without M (the first-order iteration theta~ <- theta~ - h F^{(n)}(theta~)) only C h.

This measures (*): for each optimizer, the true trajectory (`corrections.trajectory`, memory
empty at n = 0) and both memoryless ones (`corrections.memoryless_trajectory`, the finite-n
F^{(n)} and M^{(n)} of Theorem 3.2) over a fixed horizon T for a ladder of step sizes h, the global
error (*) of each, and the least-squares slope p of log error = p log h + c. The paper predicts
p = 2 corrected and p = 1 uncorrected as h -> 0.

The problem: L2-free logistic regression on a seeded subset of scikit-learn's breast cancer data
(standardized features, no intercept), full batch, float64, from a seeded normal theta^{(0)}.

The adaptive optimizers are the paper's smooth versions: AdamW divides by sqrt(m_2 + eps) and
Lion-K uses K(x) = sum_i sqrt(x_i^2 + eps), whose gradient is the soft sign x / sqrt(x^2 + eps).
Both are bias-corrected (Appendix L; `adamw_form` always is, `lion_k_form(bias_correction=True)`).
eps sets the smoothness scale: the derivatives of Phi grow like eps^{-1/2}, eps^{-1}, ... where
a gradient coordinate is below sqrt(eps), so the constant C of (*) grows and the h at which the
asymptotic slope appears shrinks as eps -> 0 (plain Adam's eps ~ 1e-8 and Lion's sign are the
nonsmooth limit, outside the theorem).

  python -m eval.experiments.memory_order [--out reports/memory_order.md]
"""

import argparse
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.datasets import load_breast_cancer

from rllc.analysis import corrections

SAMPLES, FEATURES, SEED = 100, 10, 0
HORIZON = 0.5
RATES = (0.01, 0.005, 0.0025, 0.00125)

# optimizer -> (hyperparameters, form); moderate decays so that h << 1 - beta on the ladder.
OPTIMIZERS: dict[str, tuple[str, Callable[[], corrections.MomentumForm]]] = {
  "heavy_ball": ("β = 0.5", lambda: corrections.heavy_ball_form(beta=0.5)),
  "nesterov": ("β = 0.5", lambda: corrections.nesterov_form(beta=0.5)),
  "adamw": (
    "β1 = 0.5, β2 = 0.8, ε = 0.1, λ = 0.1",
    lambda: corrections.adamw_form(beta1=0.5, beta2=0.8, eps=0.1, lam=0.1),
  ),
  "lion_k": (
    "ρ1 = 0.5, ρ2 = 0.8, ε = 0.1, λ = 0.1",
    lambda: corrections.lion_k_form(rho1=0.5, rho2=0.8, eps=0.1, lam=0.1, bias_correction=True),
  ),
}


def _adamw(beta1, beta2, eps):
  return (
    f"β1 = {beta1}, β2 = {beta2}, ε = {eps:g}, λ = 0.1",
    lambda: corrections.adamw_form(beta1=beta1, beta2=beta2, eps=eps, lam=0.1),
  )


def _lion_k(rho1, rho2, eps):
  return (
    f"ρ1 = {rho1}, ρ2 = {rho2}, ε = {eps:g}, λ = 0.1",
    lambda: corrections.lion_k_form(rho1=rho1, rho2=rho2, eps=eps, lam=0.1, bias_correction=True),
  )


FINE = (0.0005, 0.00025, 0.000125)
HEAVY_BALL_FINE = (0.0025, 0.00125, 0.000625)  # its finite-n M^{(n)} is O(n) per step

# (optimizer, hyperparameters, form, ladder): smaller eps, and decays near the usual defaults on
# RATES and on a finer ladder.
SENSITIVITY: list[tuple[str, str, Callable[[], corrections.MomentumForm], tuple]] = [
  *[("adamw", *_adamw(0.5, 0.8, eps), RATES) for eps in (1e-2, 1e-3, 1e-4)],
  *[("lion_k", *_lion_k(0.5, 0.8, eps), RATES) for eps in (1e-2, 1e-3, 1e-4)],
  *[
    ("heavy_ball", "β = 0.9", lambda: corrections.heavy_ball_form(beta=0.9), rates)
    for rates in (RATES, HEAVY_BALL_FINE)
  ],
  *[("adamw", *_adamw(0.9, 0.99, 1e-2), rates) for rates in (RATES, FINE)],
  *[("lion_k", *_lion_k(0.9, 0.99, 1e-2), rates) for rates in (RATES, FINE)],
]


def breast_cancer_logistic(
  samples: int = SAMPLES, features: int = FEATURES, seed: int = SEED
) -> tuple[Callable[[jax.Array], jax.Array], jax.Array]:
  """(L, theta^{(0)}): mean logistic loss L(theta) = mean_i softplus(x_i^T theta) - y_i x_i^T theta
  on `samples` rows and the first `features` columns of the breast cancer data, rows drawn by
  `default_rng(seed)` and columns standardized on them; theta^{(0)} ~ N(0, I) from the same rng.
  Call under float64 (`jax.enable_x64`)."""
  data = load_breast_cancer()
  rng = np.random.default_rng(seed)
  rows = rng.choice(len(data.target), size=samples, replace=False)
  x = data.data[rows, :features]
  x = jnp.asarray((x - x.mean(axis=0)) / x.std(axis=0))
  y = jnp.asarray(data.target[rows], dtype=x.dtype)

  def loss(theta):
    logits = x @ theta
    return jnp.mean(jax.nn.softplus(logits) - y * logits)

  return loss, jnp.asarray(rng.normal(size=features))


def global_errors(
  form: corrections.MomentumForm, loss, theta0: jax.Array, horizon: float, rates
) -> np.ndarray:
  """[len(rates), 2]: max_{n <= T/h} ||theta^{(n)} - theta~^{(n)}||_inf per h, uncorrected then
  corrected. Every h runs T / min(rates) steps (one compilation) and is scored on its first
  round(T/h) + 1 iterates."""
  steps = round(horizon / min(rates))

  @jax.jit
  def distances(h):
    true = corrections.trajectory(form, loss, theta0, h, steps)
    return jnp.stack(
      [
        jnp.max(
          jnp.abs(
            corrections.memoryless_trajectory(form, loss, theta0, h, steps, corrected=c) - true
          ),
          axis=1,
        )
        for c in (False, True)
      ]
    )

  return np.array(
    [np.asarray(distances(h))[:, : round(horizon / h) + 1].max(axis=1) for h in rates]
  )


def slopes(rates, errors: np.ndarray) -> np.ndarray:
  """Least-squares slopes p of log error = p log h + c, one per column of errors."""
  return np.polyfit(np.log(np.asarray(rates)), np.log(errors), 1)[0]


def _held(fitted: np.ndarray) -> bool:
  """The issue's criterion: slope <= 1.2 uncorrected and >= 1.8 corrected."""
  return bool(fitted[0] <= 1.2 and fitted[1] >= 1.8)


def _preamble(command: str) -> list[str]:
  """The title, the command, the claim, the problem and the optimizers."""
  return [
    "# Order of accuracy of the memoryless approximations (memory paper, Corollary 3.3)",
    "",
    f"Made by `{command}` (CPU, float64).",
    "",
    "**Claim.** Corollary 3.3: the memoryless iteration (4) with the correction M^(n) of (9), "
    "started at θ^(0), stays within C h² of the iteration with memory (1) for n ≤ T/h, in "
    "max_n ‖θ^(n) − θ̃^(n)‖_∞; without M (first order) only within C h.",
    "",
    f"**Problem.** Logistic regression (mean loss, no intercept, no L2 term) on {SAMPLES} rows "
    f"drawn by `numpy.random.default_rng({SEED})` from scikit-learn's breast cancer data, its "
    f"first {FEATURES} features standardized on those rows; θ^(0) ~ N(0, I) from the same rng; "
    f"full batch. Horizon T = {HORIZON}, h ∈ {{{', '.join(map(str, RATES))}}} "
    f"({round(HORIZON / max(RATES))} to {round(HORIZON / min(RATES))} steps). True trajectory: "
    "`corrections.trajectory` (memory empty at n = 0); approximations: "
    "`corrections.memoryless_trajectory` with the finite-n F^(n), M^(n) of Theorem 3.2, "
    "uncorrected (M = 0) and corrected, both from θ̃^(0) = θ^(0). Error: max over n ≤ T/h of "
    "‖θ^(n) − θ̃^(n)‖_∞. Slope: least squares of log error on log h over the ladder.",
    "",
    "**Optimizers.** Heavy ball (Example 1.1) and Nesterov (Example 1.2) without bias "
    "correction (their F^(n) changes with n, so M^(n) sums over the past: O(n) per step). "
    "AdamW (Example 1.3) as `adamw_form`: bias-corrected as in Appendix L, ε inside the square "
    "root, decoupled weight decay λ. Lion-K (Example 1.5) with K = ‖·‖_{1,ε}, "
    "bias-corrected (Appendix L). The decays are moderate (0.5, 0.8) so that h ≪ 1 − β on the "
    "ladder. ε sets the smoothness scale of the adaptive steps, which are soft signs: "
    "Φ's derivatives grow like ε^(−1/2), ε^(−1), ... where |∂L| ≲ √ε, so the constant C grows "
    "and, once h is not small against that scale, the measured slopes degrade as ε → 0 (sign, "
    "ε → 0, is outside the theorem); the main runs use ε = 0.1, smaller ε is under "
    "[Sensitivity](#sensitivity).",
    "",
  ]


def _error_tables(results: dict[str, np.ndarray]) -> list[str]:
  """One table per optimizer: the errors of both iterations at each h of the ladder."""
  lines = []
  for name, errors in results.items():
    label, _ = OPTIMIZERS[name]
    lines += [
      f"## {name} ({label})",
      "",
      "| h | steps | error uncorrected | error corrected | uncorrected / corrected |",
      "|---|---|---|---|---|",
    ]
    lines += [
      f"| {h} | {round(HORIZON / h)} | {first:.3e} | {second:.3e} | {first / second:.1f} |"
      for h, (first, second) in zip(RATES, errors, strict=True)
    ]
    lines.append("")
  return lines


def _slope_table(fitted: dict[str, np.ndarray]) -> list[str]:
  """The fitted slopes of the main runs, one row per optimizer."""
  lines = [
    "## Slopes",
    "",
    "| optimizer | hyperparameters | slope uncorrected | slope corrected |",
    "|---|---|---|---|",
  ]
  lines += [
    f"| {name} | {OPTIMIZERS[name][0]} | {first:.2f} | {second:.2f} |"
    for name, (first, second) in fitted.items()
  ]
  return lines


def _sensitivity_table(sensitivity: list[np.ndarray]) -> list[str]:
  """The sensitivity runs: slopes and errors at the smallest h of each ladder."""
  lines = [
    "## Sensitivity",
    "",
    "The same problem and horizon; errors at the smallest h of each ladder.",
    "",
    "| optimizer | hyperparameters | h | slope uncorrected | slope corrected "
    "| error uncorrected, smallest h | error corrected, smallest h |",
    "|---|---|---|---|---|---|---|",
  ]
  for (name, label, _, rates), errors in zip(SENSITIVITY, sensitivity, strict=True):
    first, second = slopes(rates, errors)
    lines.append(
      f"| {name} | {label} | {', '.join(map(str, rates))} | {first:.2f} | {second:.2f} "
      f"| {errors[-1, 0]:.3e} | {errors[-1, 1]:.3e} |"
    )
  return lines


def report(results: dict[str, np.ndarray], sensitivity: list[np.ndarray], command: str) -> str:
  """The markdown report: a table per optimizer, the slopes, the sensitivity runs, the outcome."""
  fitted = {name: slopes(RATES, errors) for name, errors in results.items()}
  lines = [
    *_preamble(command),
    *_error_tables(results),
    *_slope_table(fitted),
    "",
    *_sensitivity_table(sensitivity),
    "",
    summary(fitted, sensitivity),
    "",
  ]
  return "\n".join(lines)


def summary(fitted: dict[str, np.ndarray], sensitivity: list[np.ndarray]) -> str:
  """The measured outcome against Corollary 3.3."""
  held = [name for name, value in fitted.items() if _held(value)]
  failed = [name for name in fitted if name not in held]
  text = (
    "**Measured vs claimed.** Corollary 3.3 predicts slope 2 for the corrected iteration and "
    "1 for the uncorrected one as h → 0. "
  )
  if held:
    text += (
      f"In the main runs the slopes are ≤ 1.2 uncorrected and ≥ 1.8 corrected for "
      f"{', '.join(held)}: the corrected memoryless iteration is second order and the "
      "first-order one is first order, as claimed. "
    )
  if failed:
    text += f"Outside those bounds in the main runs: {', '.join(failed)}. "
  outside = [
    f"{name} ({label}; h ≥ {min(rates)})"
    for (name, label, _, rates), errors in zip(SENSITIVITY, sensitivity, strict=True)
    if not _held(slopes(rates, errors))
  ]
  text += (
    "In the sensitivity runs the bounds fail for "
    + ("; ".join(outside) if outside else "none")
    + ". Compare each with its finer ladder above: where the finer ladder is in bounds, "
    "the coarse one was pre-asymptotic (h not ≪ 1 − β), not a counterexample. Smaller ε "
    "makes both errors larger (a larger C), as expected of a sharper soft sign; whether the "
    "slopes degrade depends on how close the gradient coordinates come to 0 against √ε along "
    "the trajectory, so read them from the table rather than from this sentence. "
  )
  return text + "Slopes are measured at finite h on one problem; they are evidence, not proof."


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="reports/memory_order.md")
  args = parser.parse_args(argv)
  start = time.perf_counter()
  with jax.enable_x64(True):
    loss, theta0 = breast_cancer_logistic()
    results = {}
    for name, (label, make) in OPTIMIZERS.items():
      results[name] = global_errors(make(), loss, theta0, HORIZON, RATES)
      print(f"{name} ({label}): slopes {np.round(slopes(RATES, results[name]), 2)}")
    sensitivity = []
    for name, label, make, rates in SENSITIVITY:
      sensitivity.append(global_errors(make(), loss, theta0, HORIZON, rates))
      fitted = np.round(slopes(rates, sensitivity[-1]), 2)
      print(f"{name} ({label}; h ≥ {min(rates)}): slopes {fitted}")
  command = "python -m eval.experiments.memory_order" + (
    "" if args.out == parser.get_default("out") else f" --out {args.out}"
  )
  with open(args.out, "w") as file:
    file.write(report(results, sensitivity, command))
  print(f"wrote {args.out}; {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
  main()
