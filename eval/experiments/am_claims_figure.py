"""The figure of `python -m eval.experiments.am_claims`: win rates, gap ratios and curves."""

import io

import matplotlib
import numpy as np

from eval.experiments.am_experiments import AM_LAMS, BETAS, Config, logistic_cells, quadratic_cells

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)


def kappa_label(k: float) -> str:
  return f"{k:g}"


def _heatmap(ax, values, text, cfg: Config, cmap: str, vmin: float, vmax: float, title: str):
  ax.imshow(values, vmin=vmin, vmax=vmax, cmap=cmap, aspect="auto", origin="lower")
  for ki in range(len(cfg.kappas)):
    for ei in range(len(cfg.quad_etas)):
      ax.text(ei, ki, text[ki][ei], ha="center", va="center", fontsize=8)
  ax.set_xticks(range(len(cfg.quad_etas)), [f"{e:g}" for e in cfg.quad_etas])
  ax.set_yticks(range(len(cfg.kappas)), [kappa_label(k) for k in cfg.kappas])
  ax.set_xlabel("η·L")
  ax.set_ylabel("condition number κ")
  ax.set_title(title)


def _curves(ax, t, fixed, am, title: str, ylabel: str):
  for bi, b in enumerate(BETAS):
    ax.semilogy(t, fixed[bi], color=f"C{bi}", lw=1, label=f"β={b:g}")
  ax.semilogy(t, am[0], color="k", lw=1.6, label="AM-MGD λ=0")
  ax.semilogy(t, am[1], color="0.65", lw=0.8, ls="--", label="AM-MGD λ=0.1 (same)")
  ax.set_xlabel("step t")
  ax.set_ylabel(ylabel)
  ax.set_title(title)
  ax.legend(fontsize=6)


def _quadratic_maps(axes, cfg: Config, qcells: list[dict]):
  """Win counts and AM's median gap over the best fixed beta's, over (kappa, eta L)."""
  n = len(cfg.seeds)
  K, E = len(cfg.kappas), len(cfg.quad_etas)
  wins = np.array([c[0.0]["wins"] for c in qcells], float).reshape(K, E)
  text = [[f"{int(wins[k, e])}/{n}" for e in range(E)] for k in range(K)]
  title = f"Quadratics: seeds where AM-MGD beat every fixed β (T={cfg.quad_steps})"
  _heatmap(axes[0], wins / n, text, cfg, "RdYlGn", 0, 1, title)
  ratio = np.array([c["ratio"] for c in qcells]).reshape(K, E)
  logr = np.log10(np.clip(ratio, 1e-300, 1e300))
  short = lambda x: f"{x:.3g}x".replace("e+0", "e").replace("e+", "e")  # noqa: E731
  text = [[short(ratio[k, e]) for e in range(E)] for k in range(K)]
  title = "Quadratics: AM median gap / best fixed β median gap (color clipped to 1e±2)"
  _heatmap(axes[1], np.clip(logr, -2, 2), text, cfg, "RdYlGn_r", -2, 2, title)


def _logistic_ratios(ax, cfg: Config, logreg: dict, lcells: list[dict]):
  """Logistic: AM's final gap over the best fixed beta's, per data set and step size."""
  names = list(logreg)
  width = 0.8 / len(names)
  for j, name in enumerate(names):
    mine = [c for c in lcells if c["name"] == name]
    vals = [c["am"][0.0] / c["best"] if c["best"] > 0 else np.nan for c in mine]
    xs = np.arange(len(mine)) + (j - (len(names) - 1) / 2) * width
    ax.bar(xs, vals, width, color=f"C{j + 4}", label=name)
    for x, v in zip(xs, vals, strict=True):
      ax.text(x, v, f"{v:.2f}", ha="center", va="bottom", fontsize=7)
  ax.axhline(1.0, color="k", lw=0.8)
  ax.set_ylim(0, 1.3)
  ax.set_xticks(range(len(cfg.logreg_etas)), [f"{e:g}" for e in cfg.logreg_etas])
  ax.set_xlabel("η·L")
  ax.set_ylabel("AM gap / best fixed-β gap (below 1: AM wins)")
  ax.set_title(f"Logistic regression: final gap ratio (T={cfg.logreg_steps})")
  ax.legend(fontsize=7, loc="upper center", ncol=len(names))


def _logistic_curves(ax, cfg: Config, logreg: dict):
  """f(w_t) - f* of every optimizer on the data set and step size of `cfg.logreg_curve`."""
  name, eta = cfg.logreg_curve
  r = logreg[name]
  ei = cfg.logreg_etas.index(eta)
  floor = lambda v: np.maximum(v - r["f_star"], 1e-16)  # noqa: E731
  _curves(
    ax,
    np.arange(cfg.logreg_steps + 1),
    floor(r["fixed"][ei]),
    [floor(r["am"][lam][ei]) for lam in AM_LAMS],
    f"Logistic regression, {name}, η·L={eta:g}",
    "f(w_t) − f*",
  )


def _quadratic_curves(axes, cfg: Config, quad: dict):
  """f(x_t) - f* in each cell of `cfg.curve_cells` (first seed); AM's beta_t in the last axis."""
  t = np.arange(cfg.quad_steps + 1)
  beta_ax = axes[-1]
  for ci, (kappa, eta) in enumerate(cfg.curve_cells):
    ki, ei = cfg.kappas.index(kappa), cfg.quad_etas.index(eta)
    _curves(
      axes[ci],
      t,
      quad["fixed"][ki, ei, :, 0],
      [quad["am"][lam][ki, ei, 0] for lam in AM_LAMS],
      f"Quadratic κ={kappa_label(kappa)}, η·L={eta:g}, seed {cfg.seeds[0]}",
      "f(x_t) − f*",
    )
    beta_ax.plot(
      quad["beta"][0.0][ki, ei, 0],
      lw=0.6,
      color=("C0", "C3", "C2")[ci],
      label=f"κ={kappa_label(kappa)}, η·L={eta:g}",
    )
  for ax in axes[len(cfg.curve_cells) : -1]:
    ax.axis("off")
  beta_ax.set_ylim(-0.05, 1.05)
  beta_ax.set_xlabel("step t")
  beta_ax.set_ylabel("β_t")
  beta_ax.set_title(f"AM-MGD λ=0: β_t on the quadratics at left (seed {cfg.seeds[0]})")
  beta_ax.legend(fontsize=6, loc="lower right")


def figure(cfg: Config, quad: dict, logreg: dict) -> plt.Figure:
  """Win counts and gap ratios over (kappa, eta L), logistic ratios, and f - f* curves."""
  style = {"font.family": "DejaVu Sans", "font.size": 8, "axes.titlesize": 8, "axes.grid": False}
  with plt.rc_context(style):
    fig, axes = plt.subplots(2, 4, figsize=(17, 7.6))
    _quadratic_maps(axes[0, :2], cfg, quadratic_cells(cfg, quad))
    _logistic_ratios(axes[0, 2], cfg, logreg, logistic_cells(cfg, logreg))
    _logistic_curves(axes[0, 3], cfg, logreg)
    _quadratic_curves(axes[1], cfg, quad)
    fig.tight_layout()
  return fig


# ----------------------------------------------------------------------------- main


def figure_file(cfg: Config, quad: dict, logreg: dict) -> bytes:
  """The figure as SVG bytes (am_claims.svg), with no timestamps; text stays text."""
  fig = figure(cfg, quad, logreg)
  buf = io.BytesIO()
  with plt.rc_context({"svg.hashsalt": "am_claims", "svg.fonttype": "none"}):
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
  plt.close(fig)
  return buf.getvalue()
