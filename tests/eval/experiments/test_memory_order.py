"""eval.experiments.memory_order: the memoryless approximations' order of accuracy (Cor. 3.3)."""

import jax
import numpy as np
import pytest

from eval.experiments import memory_order as order
from rllc.analysis import corrections

# Small seeded problem: 30 breast cancer rows drawn by default_rng(1), 4 standardized features.
HORIZON, RATES = 0.5, (0.005, 0.0025, 0.00125)
FORMS = {
  "heavy_ball": lambda: corrections.heavy_ball_form(beta=0.5),
  "nesterov": lambda: corrections.nesterov_form(beta=0.5),
  "adamw": lambda: corrections.adamw_form(beta1=0.5, beta2=0.8, eps=0.1, lam=0.1),
  "lion_k": lambda: corrections.lion_k_form(
    rho1=0.5, rho2=0.8, eps=0.1, lam=0.1, bias_correction=True
  ),
}


@pytest.fixture(autouse=True)
def x64():
  """Every test in float64, restoring the flag afterwards."""
  with jax.enable_x64(True):
    yield


@pytest.mark.parametrize("name", list(FORMS))
def test_corrected_is_second_order_and_uncorrected_first_order(name):
  # The criterion: slopes >= 1.8 corrected, <= 1.2 uncorrected, on a seeded problem.
  loss, theta0 = order.breast_cancer_logistic(samples=30, features=4, seed=1)
  errors = order.global_errors(FORMS[name](), loss, theta0, HORIZON, RATES)
  uncorrected, corrected = order.slopes(RATES, errors)
  assert np.all(errors[:, 1] < 0.2 * errors[:, 0]), errors
  # measured (uncorrected, corrected): heavy ball 0.99, 1.98; Nesterov 0.99, 1.98;
  # AdamW 0.95, 1.91; Lion-K 0.98, 1.95 (on (0.01, 0.005, 0.0025) AdamW's was 1.80: too coarse)
  assert uncorrected <= 1.2 and corrected >= 1.8, (uncorrected, corrected)


def test_slopes_fit_powers_of_h():
  rates = np.array([0.1, 0.05, 0.025])
  errors = np.stack([3 * rates, 0.5 * rates**2], axis=1)
  np.testing.assert_allclose(order.slopes(rates, errors), [1.0, 2.0])


def test_report_is_written(tmp_path, monkeypatch):
  # The command end to end on a cut-down configuration: one optimizer, one sensitivity run.
  monkeypatch.setattr(order, "SAMPLES", 20)
  monkeypatch.setattr(order, "FEATURES", 3)
  monkeypatch.setattr(order, "RATES", (0.02, 0.01))
  monkeypatch.setattr(order, "OPTIMIZERS", {"adamw": order.OPTIMIZERS["adamw"]})
  monkeypatch.setattr(order, "SENSITIVITY", [(*order.SENSITIVITY[0][:3], (0.02, 0.01))])
  out = tmp_path / "memory_order.md"
  order.main(["--out", str(out)])
  text = out.read_text()
  assert text.startswith("# Order of accuracy")
  assert f"`python -m eval.experiments.memory_order --out {out}`" in text
  assert "| adamw | β1 = 0.5, β2 = 0.8, ε = 0.1, λ = 0.1 |" in text
  assert "**Measured vs claimed.**" in text
