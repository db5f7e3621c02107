"""Does adaptive memory beat every fixed momentum? The AM paper's figures 1 and 3, measured.

The claim (section 3.1, figure 1, and section 4.1, figure 3): deterministic
AM-MGD (Algorithm 1: eq. 12 for beta_t with f̂(x_t) = f(x_{t-1}), eq. 13 for
the step, d_0 = g_0, beta_t clipped to [0, 1]) reaches a lower loss than
momentum with any fixed coefficient beta, on quadratics and on convex logistic
regression. This measures it at the same step size for both, over a grid of
condition numbers and step sizes:

- quadratics f(x) = 1/2 x^T A x - b^T x + c in dimension 60, A = Q diag(eigs) Q^T
  with eigenvalues spaced geometrically in [L/kappa, L], L = 1, a random
  rotation Q, and c = -f* (the paper's quadratic has a constant; this one
  evaluates f - f* = 1/2 (x - x*)^T A (x - x*) without cancellation, which AM
  sees through its value f(x_{t-1}) - f(x_t) in eq. 12);
- L2-regularized logistic regression on two data sets that ship inside
  scikit-learn (breast cancer; digits 0-4 against 5-9), full batch.

AM-MGD is `rllc.am_mgd`. The baseline is EMA momentum, paper eq. (5) (the form
AM's eq. 13 generalizes):

  d_{t+1} = beta d_t + (1 - beta) g_t,   x_{t+1} = x_t - eta d_{t+1},

started like AM from d_0 = g_0 (so both take a plain gradient step first, as
PyTorch's momentum buffer does), with beta in {0, 0.5, 0.9, 0.99}. All runs
are float64, jitted, one `lax.scan` over the steps, vmapped over seeds,
betas and step sizes.

  python -m eval.experiments.am_claims [--quick] [--out reports]

The problems, runs and their per-cell analysis are in `eval.experiments.am_experiments`,
the figure in `eval.experiments.am_claims_figure`; this module writes the tables and
verdicts and is the command.

writes `am_claims.md` (tables and verdicts) and `am_claims.svg` (figure) into
`--out`, each written whole or not at all. `--quick` is a tiny
grid for the tests; it writes the same files.
"""

import argparse
import importlib.metadata
import os
import platform
import sys
import time

import jax
import numpy as np

from eval.experiments.am_claims_figure import figure_file, kappa_label
from eval.experiments.am_experiments import (
  AM_LAMS,
  BETAS,
  DIM,
  FULL,
  L2,
  LOGREG_TIE_ABS,
  QUAD_TIE_REL,
  QUICK,
  REDERIVATION,
  Config,
  checkpoints,
  lambda_equivalence,
  logistic_cells,
  quadratic_cells,
  run_logistic,
  run_quadratics,
)
from eval.store import store as store_lib

# ----------------------------------------------------------------------------- report


def _fmt(x: float) -> str:
  if not np.isfinite(x):
    return "diverged"
  return f"{x:.2e}"


def _ratio(x: float) -> str:
  return f"{x:.3g}x" if np.isfinite(x) else "inf"


def _join(items: list[str], empty: str = "none") -> str:
  return ", ".join(items) if items else empty


def quadratic_tables(cfg: Config, cells: list[dict]) -> list[str]:
  """Three tables: the summary, wins by horizon, and every optimizer's median."""
  n = len(cfg.seeds)
  ts = checkpoints(cfg.quad_steps)
  tail = min(100, cfg.quad_steps)
  lines = [
    "| κ | η·L | AM λ=0 median | best fixed β (by median) | its median | AM / best"
    " | AM λ=0 beat every β | AM λ=0.1 beat every β | solved ties (λ=0) |",
    "|" + "---|" * 9,
  ]
  for c in cells:
    lines.append(
      f"| {kappa_label(c['kappa'])} | {c['eta']:g} | {_fmt(c[0.0]['med'])} | {c['best_beta']:g}"
      f" | {_fmt(c['best_med'])} | {_ratio(c['ratio'])} | {c[0.0]['wins']}/{n}"
      f" | {c[0.1]['wins']}/{n} | {c[0.0]['ties']}/{n} |"
    )
  lines += [
    "",
    "Seeds (of the "
    f"{n}) in which AM-MGD λ=0 was below every fixed β at step t (the same rule at each t):",
    "",
    "| κ | η·L | " + " | ".join(f"t={t}" for t in ts) + " |",
    "|" + "---|" * (len(ts) + 2),
  ]
  for c in cells:
    lines.append(
      f"| {kappa_label(c['kappa'])} | {c['eta']:g} | "
      + " | ".join(f"{w}/{n}" for w in c[0.0]["wins_at"])
      + " |"
    )
  lines += [
    "",
    f"Median final gap of every optimizer, and AM's median β_t over the last {tail} steps:",
    "",
    "| κ | η·L | "
    + " | ".join(f"β={b:g}" for b in BETAS)
    + f" | AM λ=0 | AM λ=0.1 | AM λ=0 β_t, last {tail} |",
    "|" + "---|" * (len(BETAS) + 5),
  ]
  for c in cells:
    lines.append(
      f"| {kappa_label(c['kappa'])} | {c['eta']:g} | "
      + " | ".join(_fmt(m) for m in c["fixed_med"])
      + f" | {_fmt(c[0.0]['med'])} | {_fmt(c[0.1]['med'])} | {c['beta_tail']:.2f} |"
    )
  return lines


def logistic_table(cfg: Config, res: dict, cells: list[dict]) -> list[str]:
  """The logistic-regression table."""
  ts = checkpoints(cfg.logreg_steps)
  lines = [
    "| data set | n | d | L | η·L | "
    + " | ".join(f"β={b:g}" for b in BETAS)
    + " | AM λ=0 | AM λ=0.1 | AM / best | AM λ=0 beats every β"
    + f" | ahead at t = {', '.join(str(t) for t in ts)} |",
    "|" + "---|" * (len(BETAS) + 10),
  ]
  for c in cells:
    r = res[c["name"]]
    verdict = "yes" if c["win"] else ("tie (solved)" if c["tie"] else "no")
    ratio = c["am"][0.0] / c["best"] if c["best"] > 0 else np.inf
    lines.append(
      f"| {c['name']} | {r['n']} | {r['d']} | {r['L']:.3f} | {c['eta']:g} | "
      + " | ".join(_fmt(v) for v in c["fixed"])
      + f" | {_fmt(c['am'][0.0])} | {_fmt(c['am'][0.1])} | {_ratio(ratio)} | {verdict}"
      + f" | {', '.join('yes' if w else 'no' for w in c['wins_at'])} |"
    )
  return lines


def quadratic_verdicts(cfg: Config, cells: list[dict]) -> list[str]:
  """Plain-language verdicts from the measured cells, one bullet per kappa."""
  n = len(cfg.seeds)
  lines = []
  for kappa in cfg.kappas:
    mine = [c for c in cells if c["kappa"] == kappa]
    holds = [f"{c['eta']:g}" for c in mine if c[0.0]["wins"] == n]
    fails = [f"{c['eta']:g}" for c in mine if c[0.0]["wins"] == 0]
    mixed = [f"{c['eta']:g} ({c[0.0]['wins']}/{n})" for c in mine if 0 < c[0.0]["wins"] < n]
    ratio = ", ".join(f"{c['eta']:g}: {_ratio(c['ratio'])}" for c in mine)
    text = (
      f"- **κ = {kappa_label(kappa)}.** Holds (AM-MGD below every fixed β in all {n} seeds) at"
      f" η·L = {_join(holds, 'no step size')}; fails (AM below every fixed β in no seed) at"
      f" η·L = {_join(fails, 'no step size')}; mixed at η·L = {_join(mixed, 'no step size')}."
      f" AM's median final gap over the best fixed β's, by η·L: {ratio}."
    )
    ts = checkpoints(cfg.quad_steps)
    early = [
      f"η·L = {c['eta']:g}: "
      + ", ".join(f"{w}/{n} at t={t}" for w, t in zip(c[0.0]["wins_at"], ts, strict=True))
      for c in mine
      if len(set(c[0.0]["wins_at"])) > 1
    ]
    if early:
      text += f" The count changes during the run at {'; '.join(early)}."

    ties = sum(c[0.0]["ties"] for c in mine)
    if ties:
      text += (
        f" In {ties} run(s) AM and the best fixed β were both solved (≤ {QUAD_TIE_REL:g} ×"
        " initial gap): ties, not wins."
      )
    lines.append(text)
  return lines


def rederivation_check(cfg: Config, cells: list[dict]) -> list[str]:
  """Compares the measured cells with the re-derivation's (kappa, eta L) counts."""
  if tuple(cfg.seeds) != (0, 1, 2, 3, 4):
    return []
  lines = []
  for (kappa, eta), expected in REDERIVATION.items():
    for c in cells:
      if c["kappa"] == kappa and c["eta"] == eta:
        got = c[0.0]["wins"]
        agree = "agrees" if got == expected else "DISAGREES"
        lines.append(
          f"- κ = {kappa_label(kappa)}, η·L = {eta:g}: re-derivation {expected}/5, measured {got}/5"
          f" ({agree})."
        )
  return lines


def logistic_verdicts(cells: list[dict]) -> list[str]:
  """One bullet per data set."""
  lines = []
  for name in dict.fromkeys(c["name"] for c in cells):
    mine = [c for c in cells if c["name"] == name]
    parts = []
    for c in mine:
      if c["win"]:
        what = "AM wins"
      elif c["tie"]:
        what = "tie (both solved)"
      else:
        what = f"AM loses to β={c['best_beta']:g}"
      ratio = c["am"][0.0] / c["best"] if c["best"] > 0 else np.inf
      parts.append(f"η·L = {c['eta']:g}: {what}, AM / best fixed gap = {_ratio(ratio)}")
    won = sum(c["win"] for c in mine)
    lines.append(
      f"- **{name}.** AM-MGD below every fixed β at {won} of {len(mine)} step sizes ("
      + "; ".join(parts)
      + ")."
    )
  return lines


def overall_verdict(cfg: Config, qcells: list[dict], lcells: list[dict]) -> str:
  """One paragraph, every number from the cells."""
  n = len(cfg.seeds)
  held = [c for c in qcells if c[0.0]["wins"] == n]
  failed = [c for c in qcells if c[0.0]["wins"] == 0]
  where = _join([f"(κ={kappa_label(c['kappa'])}, η·L={c['eta']:g})" for c in held])
  won = sum(c["win"] for c in lcells)
  text = (
    f"**Overall.** Quadratics: the claim held in {len(held)} of {len(qcells)} (κ, η·L) cells"
    f" ({where}), failed in every seed in {len(failed)}, and was mixed in"
    f" {len(qcells) - len(held) - len(failed)}."
  )
  tails = [c["beta_tail"] for c in qcells]
  if min(tails) >= 0.9:
    text += (
      f" In every quadratic cell AM's β_t ends near 1 (median over the last steps"
      f" {min(tails):.2f} to {max(tails):.2f}): AM-MGD ends close to a constant-direction"
      " method, whose gap falls far more slowly than the fixed β's where those converge fast"
      " (see the curves)."
    )
  if len(held) == len(qcells):
    text += " On these quadratics the measurements agree with the paper's figure 1."
  else:
    text += (
      " The paper's figure 1 shows adaptive memory below every fixed β; on these quadratics"
      " that is true only in the cells just listed, so it is not a property of AM-MGD on"
      " quadratics: it depends on the condition number and the step size (and, per the"
      " horizon table, on when one stops)."
    )
  text += (
    f" Logistic regression: AM-MGD ended below every fixed β in {won} of {len(lcells)}"
    " (data set, η·L) cells"
  )
  if won == len(lcells):
    return text + ", in line with the paper's figure 3 (on other data sets than the paper's)."
  return text + "; the paper's figure 3 shows it winning on every data set it plots."


def _versions() -> str:
  names = ("jax", "jaxlib", "numpy", "optax", "scikit-learn", "matplotlib")
  parts = [f"{name} {importlib.metadata.version(name)}" for name in names]
  return f"Python {platform.python_version()}, " + ", ".join(parts)


def _preamble(cfg: Config, argv: list[str], lam: dict) -> list[str]:
  """The title, the command and versions, the claim, what is compared, and lambda 0 vs 0.1."""
  command = " ".join(["python -m eval.experiments.am_claims", *argv])
  betas = ", ".join(f"{b:g}" for b in BETAS)
  return [
    "# Does adaptive memory beat every fixed momentum? (AM paper, figures 1 and 3)",
    "",
    f"Made by `{command}` (CPU, float64). {_versions()}.",
    "",
    f"Quadratic seeds: {', '.join(str(s) for s in cfg.seeds)} (numpy `default_rng(seed)`)."
    " Logistic regression has no randomness (w_0 = 0, full batch).",
    "",
    "**The claim.** Section 3.1 / figure 1: on a quadratic, a fixed momentum coefficient is"
    " 'consistently outperformed' by adaptive memory; section 4.1 / figure 3: AM-MGD"
    " 'consistently outperforms constant momentum' on logistic regression (λ = 0 there).",
    "",
    "**What is compared.** At the same step size η: AM-MGD (`rllc.am_mgd`, Algorithm 1,"
    " deterministic column: eq. 12 with f̂(x_t) = f(x_{t-1}), eq. 13, d_0 = g_0, β_t clipped to"
    " [0, 1]) against EMA momentum, eq. (5), d_{t+1} = β d_t + (1 − β) g_t,"
    f" x_{{t+1}} = x_t − η d_{{t+1}}, also from d_0 = g_0, for each fixed β ∈ {{{betas}}}."
    " **Primary: AM with λ = 0** (the paper's convex setting); λ = 0.1 (the paper's default"
    " elsewhere) is reported alongside. 'AM beat every β' means AM's final gap is strictly below"
    " the lowest final gap of the four fixed β on that same problem (so β is chosen per seed,"
    " after the fact); a diverged run (inf/NaN) loses.",
    "",
    f"**λ = 0 vs λ = 0.1.** The largest relative difference between their gaps, over every"
    f" step of every run here, is {lam['max_rel']:.1e}. That is an identity, not luck: by"
    " eq. (12)-(13) the coefficient AM-MGD puts on d_t, (β_t + λ)/(1 + λ), equals the unclipped"
    " β_t of λ = 0, so λ only lifts its lower clip from 0 to λ/(1 + λ) ="
    f" {lam['clip']:.3f}; the λ = 0 runs had β_t below that at {100 * lam['below']:.2f}% of"
    " their steps t ≥ 1. Every statement below about λ = 0 holds for λ = 0.1.",
    "",
  ]


def _quadratic_section(cfg: Config, qcells: list[dict]) -> list[str]:
  """The quadratics: the problem, the rule, and their three tables."""
  n_runs = len(cfg.kappas) * len(cfg.quad_etas) * len(cfg.seeds) * (len(BETAS) + len(AM_LAMS))
  return [
    "## Quadratics",
    "",
    f"f(x) = ½ xᵀAx − bᵀx + c in dimension {DIM}, A = Q diag(λ_i) Qᵀ with λ_i = L κ^(−i/(d−1)),"
    " i = 0..d−1 (geometrically spaced in [L/κ, L], L = 1), Q a Haar rotation, b = A x*;"
    " `default_rng(seed)` draws Q, then x* ~ N(0, I), then x_0 ~ N(0, I) (the same for every κ)."
    " The value AM sees, and the gap reported, is f − f* = ½ (x − x*)ᵀA(x − x*) (c = −f*: the"
    " paper's quadratic has a constant, and this form has no cancellation in float64)."
    f" T = {cfg.quad_steps} steps; {n_runs} runs. Final gaps f(x_T) − f*, medians over the"
    f" {len(cfg.seeds)} seeds. Gaps at or below {QUAD_TIE_REL:g} × (f(x_0) − f*) count as"
    " solved, and two solved runs tie ('solved ties': AM and the best fixed β both solved; not"
    " a win).",
    "",
    *quadratic_tables(cfg, qcells),
    "",
  ]


def _logistic_section(cfg: Config, logreg: dict, lcells: list[dict]) -> list[str]:
  """Logistic regression: the problem, the rule, its table and the reference minima."""
  minima = "; ".join(
    f"{name} f* = {r['f_star']:.12f} (Newton {r['f_ref']:.12f})" for name, r in logreg.items()
  )
  return [
    "## Logistic regression",
    "",
    f"mean log(1 + exp(−y xᵀw)) + ({L2:g}/2) ‖w‖², features standardized (scikit-learn"
    " `StandardScaler`) plus a constant column for the intercept (regularized too), y ∈ {−1, +1}:"
    " `load_breast_cancer` (benign +1) and `load_digits` as digits 0–4 (−1) vs 5–9 (+1); both"
    f" ship inside scikit-learn. L = 0.25 λ_max(XᵀX/n) + {L2:g} (the gradient's Lipschitz"
    f" constant); η·L ∈ {{{', '.join(f'{e:g}' for e in cfg.logreg_etas)}}};"
    f" T = {cfg.logreg_steps} steps from w_0 = 0. Reported: f(w_T) − f*, with f* the lowest of"
    " a reference minimum (damped Newton in float64 numpy, to ‖∇f‖ < 1e-14) and every loss any"
    f" run reached. Gaps at or below {LOGREG_TIE_ABS:g} count as solved (ties).",
    "",
    *logistic_table(cfg, logreg, lcells),
    "",
    f"Reference minima: {minima}.",
    "",
  ]


def _verdict_section(cfg: Config, qcells: list[dict], lcells: list[dict]) -> list[str]:
  """The verdicts per kappa and per data set, the re-derivation check, and the overall one."""
  lines = [
    "## Verdict",
    "",
    "Quadratics (AM-MGD λ = 0; λ = 0.1 is the same, above):",
    "",
    *quadratic_verdicts(cfg, qcells),
    "",
  ]
  check = rederivation_check(cfg, qcells)
  if check:
    lines += ["Against the earlier re-derivation (same setting, seeds 0..4):", "", *check, ""]
  return lines + [
    "Logistic regression (AM-MGD λ = 0, as in the paper's figure 3):",
    "",
    *logistic_verdicts(lcells),
    "",
    overall_verdict(cfg, qcells, lcells),
    "",
  ]


CAVEATS = [
  "## Caveats",
  "",
  "- A win is a final-gap comparison at one horizon T; the horizon tables and the curves in"
  " `am_claims.svg` show where the ordering changes during the run.",
  "- The fixed-β grid is coarse (four values), which favours AM: a finer grid can only lower"
  " the best fixed β's gap, so where AM loses here it loses to a finer grid too, and its wins"
  " are upper bounds.",
  "- Both methods share η; neither is tuned per method. The paper does not state the step"
  " size of figure 1, and its figure 3 uses LIBSVM data sets, not these.",
  "- The fixed-β runs start from d_0 = g_0 like AM (Algorithm 1); from d_0 = 0 the first"
  " steps of large-β runs would be shorter.",
  "",
]


def markdown(cfg: Config, argv: list[str], quad: dict, logreg: dict) -> str:
  """The whole report."""
  qcells = quadratic_cells(cfg, quad)
  lcells = logistic_cells(cfg, logreg)
  lines = [
    *_preamble(cfg, argv, lambda_equivalence(quad, logreg)),
    *_quadratic_section(cfg, qcells),
    *_logistic_section(cfg, logreg, lcells),
    *_verdict_section(cfg, qcells, lcells),
    *CAVEATS,
  ]
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
  """Runs the grid and writes am_claims.md and am_claims.svg into --out."""
  parser = argparse.ArgumentParser(
    prog="python -m eval.experiments.am_claims", description=__doc__.splitlines()[0]
  )
  parser.add_argument("--quick", action="store_true", help="a tiny grid (for the tests)")
  parser.add_argument("--out", default="reports", help="output directory (default: reports)")
  argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
  args = parser.parse_args(argv)
  cfg = QUICK if args.quick else FULL

  start = time.perf_counter()
  with jax.enable_x64(True):
    quad = run_quadratics(cfg)
    logreg = run_logistic(cfg)
  outputs = {
    "am_claims.md": markdown(cfg, argv, quad, logreg).encode(),
    "am_claims.svg": figure_file(cfg, quad, logreg),
  }
  os.makedirs(args.out, exist_ok=True)
  for name, data in outputs.items():
    store_lib.atomic_write(os.path.join(args.out, name), data)
    print(f"wrote {os.path.join(args.out, name)}")
  print(f"{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
  main()
