"""The optimizer catalog (rllc/catalog.py): results names, declared facts, defaults, scopes."""

import dataclasses
import inspect
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rllc
from rllc import catalog

ROOT = Path(__file__).resolve().parents[2]

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


ENTRIES = [*catalog.DEFAULT.values(), catalog.RLLC, catalog.FIXED_LAW]
IS_TYPE = {
  "float": lambda v: isinstance(v, float),
  "float or schedule": lambda v: isinstance(v, float),
  "float or None": lambda v: v is None or isinstance(v, float),
  "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
  "bool": lambda v: isinstance(v, bool),
  "str": lambda v: isinstance(v, str),
  "str or vector": lambda v: isinstance(v, (str, tuple)),
  "vector": lambda v: isinstance(v, tuple),
}


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_defaults_are_the_factorys_unless_an_override_says_why(entry):
  parameters = list(inspect.signature(entry.function()).parameters.values())
  if entry.buffer_count == catalog.UNITS:  # a spec template: the propagator comes first
    parameters = parameters[1:]
  factory = {p.name: p.default for p in parameters}
  for h in entry.hyperparameters:
    assert h.name in factory, f"{entry.name}: the factory takes no {h.name}"
    own = catalog.REQUIRED if factory[h.name] is inspect.Parameter.empty else factory[h.name]
    if h.override:  # a declared choice of ours: it must really differ (else it is stale)
      assert h.default != own, f"{entry.name}: {h.name}'s override equals the factory's default"
    else:
      assert h.default == own, f"{entry.name}: {h.name} = {h.default!r}, the factory's {own!r}"
    assert h.type in IS_TYPE, f"{entry.name}: {h.name} has an unknown type {h.type!r}"
    assert h.default is catalog.REQUIRED or IS_TYPE[h.type](h.default), (entry.name, h.name)
  assert set(entry.fixed) <= set(factory)
  for key in entry.key:
    assert key.hparam in {h.name for h in entry.hyperparameters}, (entry.name, key.short)


def test_am_adamw_decays_by_default_as_optax_adamw_and_the_catalog_do():
  default = inspect.signature(rllc.am_adamw).parameters["weight_decay"].default
  assert default == inspect.signature(optax.adamw).parameters["weight_decay"].default == 1e-4
  assert rllc.optimizer("am-adamw", learning_rate=0.1).hparams["weight_decay"] == default


def test_families_are_declared_and_ours_are_rllc_fixed_laws_and_adaptive_memory():
  families = {name: catalog.DEFAULT.family(name) for name in catalog.DEFAULT}
  assert families == {
    **dict.fromkeys(
      ["sgd", "momentum", "nesterov", "adam", "adamw", "nadam", "nadamw", "ema-momentum"],
      "baseline",
    ),
    **dict.fromkeys(["lion", "lion-k", "signum"], "sign"),
    "ademamix": "mixture",
    "muon": "orthogonal",
    **dict.fromkeys(
      ["precond-momentum", "delta-momentum", "ns-momentum", "deep-momentum"], "nested"
    ),
    **dict.fromkeys(
      [
        "am-sgd",
        "am-sgd-clip",
        "am-sgd-reset",
        "am-mgd",
        "am-adamw",
        "am-adamw-clip",
        "am-adamw-reset",
      ],
      "adaptive-memory",
    ),
  }
  assert catalog.DEFAULT.family("M(0.9)+M2(0.6)@ones") == "rllc"
  assert catalog.DEFAULT.family("lm:M(0.9)") == "fixed-law"
  ours = {f.name for f in catalog.FAMILIES if catalog.DEFAULT.is_ours(f.name)}
  assert ours == {"rllc", "fixed-law", "adaptive-memory"}
  assert not catalog.DEFAULT.is_ours("undeclared")


def test_initial_law_conventions_are_memorys():
  assert catalog.INITIAL_LAWS == rllc.memory.INITIAL_LAWS


def test_variants_differ_from_their_base_only_in_the_declared_defaults():
  for base, variant, changed in [
    ("am-sgd", "am-sgd-clip", {"beta_min": 0.5}),
    ("am-sgd", "am-sgd-reset", {"reset_threshold": 0.7}),
    ("am-adamw", "am-adamw-clip", {"beta_min": 0.5}),
    ("am-adamw", "am-adamw-reset", {"reset_threshold": 0.7}),
  ]:
    a, b = catalog.DEFAULT[base], catalog.DEFAULT[variant]
    assert {k: v for k, v in b.defaults().items() if a.defaults()[k] != v} == changed
    same = dataclasses.replace(b, name=a.name, hyperparameters=a.hyperparameters)
    assert same == a


def test_catalog_imports_without_jax_or_optax():
  code = (
    "import sys; from rllc import catalog;"
    " entry = catalog.lookup('am-adamw-clip');"
    " name = entry.result_name(entry.resolve({'learning_rate': 0.1}));"
    " print(name, entry.buffers(entry.resolve({'learning_rate': 0.1})));"
    " print(sorted(m for m in ('jax', 'optax', 'numpy') if m in sys.modules))"
  )
  out = subprocess.run(
    [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
  ).stdout
  assert out.splitlines() == [
    "AM-AdamW_lr0.1_lam0.1_bmax0.9_bmin0.5_b10.9_b20.999_eps1e-08_wd0.0001 2",
    "[]",
  ]


@pytest.mark.parametrize(
  "name,fixed,traced",
  [
    ("am-sgd", {"learning_rate": 0.1}, {"beta_min": 0.5}),
    ("M(0.9)+M(0)", {"learning_rate": 0.1, "law_learning_rate": 0.01}, {"eps": 1e-3}),
    ("deep-momentum", {"sigma": "newton_schulz"}, {"learning_rate": 0.01, "mlp_rate": 0.5}),
  ],
)
def test_transformation_builds_from_traced_hyperparameters(name, fixed, traced):
  """The names' conditional fields (bmin, eps, ns) are never read from a tracer."""
  entry = catalog.lookup(name)
  params = {"w": jnp.arange(6.0).reshape(2, 3) / 7, "b": jnp.ones(3)}
  grads = jax.tree.map(lambda p: jnp.cos(p) - 0.3, params)

  def step(hp):
    tx = optax.with_extra_args_support(entry.transformation(**fixed, **hp))
    state = tx.init(params)
    for _ in range(2):
      updates, state = tx.update(grads, state, params, value=jnp.float32(1.0))
    return updates

  got = jax.jit(step)({k: jnp.float32(v) for k, v in traced.items()})
  want = step(traced)
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
    np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-7)


def _toy() -> catalog.Entry:
  return dataclasses.replace(catalog.DEFAULT["sgd"], name="toy", label="Toy", family="toy")


def test_using_scopes_a_catalog_and_restores_the_previous_one():
  toy = _toy()
  local = catalog.DEFAULT.extended(toy, families=[catalog.Family("toy", False, "a test's")])
  with catalog.using(local):
    assert rllc.optimizer("toy", learning_rate=0.1).name == "Toy_lr0.1"
    assert catalog.active().family("toy") == "toy"
    with pytest.raises(RuntimeError), catalog.using(catalog.DEFAULT):
      raise RuntimeError
    assert catalog.active() is local
  assert catalog.active() is catalog.DEFAULT
  with pytest.raises(ValueError, match="unknown optimizer 'toy'"):
    rllc.optimizer("toy", learning_rate=0.1)


def test_a_catalog_refuses_an_undeclared_family_a_twice_declared_name_and_a_spec_name():
  with pytest.raises(ValueError, match="family 'toy' is not declared; declared: baseline"):
    catalog.DEFAULT.extended(_toy())
  twice = dataclasses.replace(catalog.DEFAULT["adam"], name="sgd")
  with pytest.raises(ValueError, match="'sgd' is declared twice"):
    catalog.Catalog([catalog.DEFAULT["sgd"], twice], rllc=catalog.RLLC, fixed_law=catalog.FIXED_LAW)
  spec = dataclasses.replace(catalog.DEFAULT["adam"], name="M(0.9)")
  with pytest.raises(ValueError, match="must not read as a spec"):
    catalog.DEFAULT.extended(spec)


def test_lookup_binds_a_spec_to_its_template():
  entry = catalog.lookup("M(0.90) ⊕ M2(0.6)@normalized")
  assert (entry.family, entry.propagator.k, entry.convention) == ("rllc", 3, "normalized")
  resolved = entry.resolve({"learning_rate": 0.1, "law_learning_rate": 0.01})
  assert resolved["initial_law"] == "normalized"
  assert entry.buffers(resolved) == 3
  assert entry.result_name(resolved) == "RLLC[M(0.9)+M2(0.6)]_lr0.1_law0.01_L0normalized"
  fixed = catalog.lookup("lm:CM(0.9i)")
  assert (fixed.family, fixed.buffers(fixed.resolve({"law": (1.0, 0.5)}))) == ("fixed-law", 2)
  assert catalog.lookup("adam") is catalog.DEFAULT["adam"]


def test_a_schedule_is_named_schedule():
  entry = catalog.lookup("lion")
  resolved = entry.resolve({"learning_rate": optax.constant_schedule(1e-4)})
  assert entry.result_name(resolved) == "Lion_lrschedule_b10.9_b20.99_wd0"
