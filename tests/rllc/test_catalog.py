"""The optimizer catalog (rllc/catalog.py): results names, declared facts, defaults, scopes."""

import pytest

import rllc

# One results name per catalog entry (and the name rules' conditional parts),
# written by hand from rllc/registry.py's factories as they stood at 8ee4162,
# before the catalog: results keys must never change.
PINNED_NAMES = [
  ("sgd", {"learning_rate": 0.1}, "SGD_lr0.1"),
  ("momentum", {"learning_rate": 0.01}, "Momentum_lr0.01_m0.9"),
  ("nesterov", {"learning_rate": 0.01, "momentum": 0.8}, "Nesterov_lr0.01_m0.8"),
  ("adam", {"learning_rate": 1e-3}, "Adam_lr0.001_b10.9_b20.999_eps1e-08"),
  ("adamw", {"learning_rate": 3e-4}, "AdamW_lr0.0003_b10.9_b20.999_eps1e-08_wd0.0001"),
  ("nadam", {"learning_rate": 1e-3, "b2": 0.99}, "NAdam_lr0.001_b10.9_b20.99_eps1e-08"),
  (
    "nadamw",
    {"learning_rate": 1e-3, "weight_decay": 0.0},
    "NAdamW_lr0.001_b10.9_b20.999_eps1e-08_wd0",
  ),
  ("lion", {"learning_rate": 1e-4}, "Lion_lr0.0001_b10.9_b20.99_wd0"),
  ("lion-k", {"learning_rate": 1e-4}, "LionK[l1_smooth]_lr0.0001_b10.9_b20.99_wd0_eps1e-08"),
  ("lion-k", {"learning_rate": 1e-4, "kernel": "l2"}, "LionK[l2]_lr0.0001_b10.9_b20.99_wd0"),
  ("signum", {"learning_rate": 3e-4}, "Signum_lr0.0003_m0.9_wd0"),
  (
    "ademamix",
    {"learning_rate": 1e-3},
    "AdEMAMix_lr0.001_b10.9_b20.999_b30.9999_alpha5_eps1e-08_wd0",
  ),
  ("muon", {"learning_rate": 0.02}, "Muon_lr0.02_beta0.95_ns5_wd0"),
  ("precond-momentum", {"learning_rate": 1e-3, "b2": 0.99}, "PrecondMomentum[adam]_lr0.001_m0.9"),
  ("delta-momentum", {"learning_rate": 0.01}, "DeltaMomentum[identity]_lr0.01_m0.9_delta1"),
  ("ns-momentum", {"learning_rate": 0.01, "ns_steps": 3}, "NSMomentum_lr0.01_m0.95_ns3"),
  ("deep-momentum", {"learning_rate": 0.01}, "DeepMomentum[identity]_lr0.01_m0.9_h16_rate1"),
  (
    "deep-momentum",
    {"learning_rate": 0.01, "sigma": "newton_schulz", "normalize": False, "hidden": 8},
    "DeepMomentum[newton_schulz]_lr0.01_m0.9_h8_rate1_raw_ns5",
  ),
  ("am-sgd", {"learning_rate": 0.1}, "AM-SGD_lr0.1_lam0.1_bmax0.9"),
  (
    "am-sgd",
    {"learning_rate": 0.1, "per_leaf": True, "beta_min": 0.2},
    "AM-SGD_lr0.1_lam0.1_bmax0.9_bmin0.2_perleaf",
  ),
  ("am-sgd-clip", {"learning_rate": 0.1}, "AM-SGD_lr0.1_lam0.1_bmax0.9_bmin0.5"),
  ("am-sgd-reset", {"learning_rate": 0.1}, "AM-SGD_lr0.1_lam0.1_bmax0.9_theta0.7"),
  ("am-mgd", {"learning_rate": 0.1}, "AM-MGD_lr0.1_lam0.1"),
  (
    "am-adamw",
    {"learning_rate": 1e-3},
    "AM-AdamW_lr0.001_lam0.1_bmax0.9_b10.9_b20.999_eps1e-08_wd0.0001",
  ),
  (
    "am-adamw",
    {"learning_rate": 1e-3, "per_leaf": True},
    "AM-AdamW_lr0.001_lam0.1_bmax0.9_b10.9_b20.999_eps1e-08_wd0.0001_perleaf",
  ),
  (
    "am-adamw-clip",
    {"learning_rate": 1e-3},
    "AM-AdamW_lr0.001_lam0.1_bmax0.9_bmin0.5_b10.9_b20.999_eps1e-08_wd0.0001",
  ),
  (
    "am-adamw-reset",
    {"learning_rate": 1e-3},
    "AM-AdamW_lr0.001_lam0.1_bmax0.9_theta0.7_b10.9_b20.999_eps1e-08_wd0.0001",
  ),
  (
    "M(0.9)+M(0)",
    {"learning_rate": 0.1, "law_learning_rate": 0.01},
    "RLLC[M(0.9)+M(0)]_lr0.1_law0.01",
  ),
  (
    "M(0.9)+M2(0.6)",
    {
      "learning_rate": 0.1,
      "law_learning_rate": 0.01,
      "eps": 1e-6,
      "relative_eps": 0.1,
      "initial_law": "normalized",
    },
    "RLLC[M(0.9)+M2(0.6)]_lr0.1_law0.01_eps1e-06_releps0.1_L0normalized",
  ),
  (
    "M(0.9)+M(0)@ones",
    {"learning_rate": 0.1, "law_learning_rate": 0.01},
    "RLLC[M(0.9)+M(0)]_lr0.1_law0.01",
  ),
  (
    "M(0.9)+M(0)@normalized",
    {"learning_rate": 0.1, "law_learning_rate": 0.01},
    "RLLC[M(0.9)+M(0)]_lr0.1_law0.01_L0normalized",
  ),
  (
    "M(0.9)+M(0)",
    {"learning_rate": 0.1, "law_learning_rate": 0.01, "initial_law": (1.0, 0.5)},
    "RLLC[M(0.9)+M(0)]_lr0.1_law0.01_L0(1,0.5)",
  ),
  ("lm:M(0.9)+M(0)", {"law": (0.9, 1.0)}, "LM[M(0.9)+M(0)]_law(0.9,1)_lr1"),
]


@pytest.mark.parametrize(
  "name,hparams,expected", PINNED_NAMES, ids=[expected for _, _, expected in PINNED_NAMES]
)
def test_results_names_are_pinned(name, hparams, expected):
  assert rllc.optimizer(name, **hparams).name == expected
