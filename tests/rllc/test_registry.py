"""The optimizer registry: names, recorded hyperparameters, and bad input."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rllc


@pytest.mark.parametrize(
  "name,hparams,key",
  [
    ("sgd", {"learning_rate": 0.1}, "SGD_lr0.1"),
    ("momentum", {"learning_rate": 0.01}, "Momentum_lr0.01_m0.9"),
    ("nesterov", {"learning_rate": 0.01, "momentum": 0.8}, "Nesterov_lr0.01_m0.8"),
    ("adam", {"learning_rate": 1e-3}, "Adam_lr0.001_b10.9_b20.999_eps1e-08"),
    (
      "M(0.9)+M(0)",
      {"learning_rate": 0.1, "law_learning_rate": 0.01},
      "RLLC[M(0.9)+M(0)]_lr0.1_law0.01",
    ),
    (
      "M(0.9) ⊕ CM(0.9i)",
      {"learning_rate": 0.1, "law_learning_rate": 0.01, "relative_eps": 0.1},
      "RLLC[M(0.9)+CM(0.9i)]_lr0.1_law0.01_releps0.1",
    ),
    (
      "lm:M(0.9)+M(0)",
      {"law": (0.9, 1.0), "learning_rate": 0.1},
      "LM[M(0.9)+M(0)]_law(0.9,1)_lr0.1",
    ),
  ],
)
def test_results_key_is_canonical(name, hparams, key):
  built = rllc.optimizer(name, **hparams)
  assert built.name == key
  assert built.lopt().name == key


def test_hparams_are_resolved_with_defaults():
  built = rllc.optimizer("M(0.9)", learning_rate=0.1, law_learning_rate=0.01)
  assert built.hparams == {
    "learning_rate": 0.1,
    "law_learning_rate": 0.01,
    "eps": rllc.memory.DEFAULT_EPS,
    "relative_eps": rllc.memory.DEFAULT_RELATIVE_EPS,
    "initial_law": rllc.memory.DEFAULT_INITIAL_LAW,
  }
  assert rllc.optimizer("adam", learning_rate=0.1).hparams["b2"] == 0.999


@pytest.mark.parametrize(
  "spec, choice, expected",
  [
    ("M(0.9)+M(0)", "ones", [1.0, 1.0]),
    ("M(0.9)+M(0)", "normalized", [1 / 11, 1 / 11]),  # w = (10, 1)
    ("M2(0.6)", "ones", [1.0, 1.0]),
    ("M2(0.6)", "normalized", None),
    ("CM(0.9i)", "ones", [1.0, 1.0]),
    ("CM(0.9i)", "normalized", None),
    ("M(0.9)+M(0)", (0.25, 2.0), [0.25, 2.0]),
  ],
)
def test_initial_law_conventions(spec, choice, expected):
  prop = rllc.parse_propagator(spec)
  if expected is None:  # normalized: 1 / ||(I - B^T)^{-1} a||_1, from a float64 solve
    b, a = np.asarray(prop.B, np.float64), np.asarray(prop.a, np.float64)
    w = np.linalg.solve(np.eye(prop.k) - b.T, a)
    expected = np.full(prop.k, 1.0 / np.abs(w).sum())
  law = rllc.resolve_initial_law(prop, choice)
  np.testing.assert_allclose(np.asarray(law), expected, rtol=1e-6)
  built = rllc.optimizer(spec, learning_rate=0.1, law_learning_rate=0.01, initial_law=choice)
  state = built.tx.init(jnp.zeros(3))
  np.testing.assert_allclose(np.asarray(state.law), expected, rtol=1e-6)


def test_initial_law_of_wrong_shape_or_unknown_name_is_refused():
  with pytest.raises(ValueError, match=r"shape \(2,\)"):
    rllc.optimizer("M(0.9)+M(0)", learning_rate=0.1, law_learning_rate=0.01, initial_law=(1.0,))
  with pytest.raises(ValueError, match="valid: ones, normalized"):
    rllc.optimizer("M(0.9)+M(0)", learning_rate=0.1, law_learning_rate=0.01, initial_law="unit")
  with pytest.raises(ValueError, match="valid: ones, normalized"):
    rllc.optimizer("M(0.9)+M(0)@unit", learning_rate=0.1, law_learning_rate=0.01)
  with pytest.raises(ValueError, match="two initial laws"):
    rllc.optimizer("M(0.9)@ones", learning_rate=0.1, law_learning_rate=0.01, initial_law="unit")
  # a record's name and hyperparameters build it again
  again = rllc.optimizer(
    "M(0.9)@ones", learning_rate=0.1, law_learning_rate=0.01, initial_law="ones"
  )
  assert again.hparams["initial_law"] == "ones"
  with pytest.raises(ValueError, match="fixed law"):
    rllc.optimizer("lm:M(0.9)@ones", law=(1.0,), learning_rate=0.1)


def test_initial_law_suffix_names_the_convention_and_changes_the_key():
  hp = {"learning_rate": 0.1, "law_learning_rate": 0.01}
  default = rllc.optimizer("M(0.9)+M(0)", **hp)
  ones = rllc.optimizer("M(0.9)+M(0)@ones", **hp)
  assert ones.name == rllc.optimizer("M(0.9)+M(0)", **hp, initial_law="ones").name
  assert ones.hparams["initial_law"] == "ones"
  other = "ones" if rllc.memory.DEFAULT_INITIAL_LAW == "normalized" else "normalized"
  assert rllc.optimizer("M(0.9)+M(0)", **hp, initial_law=other).name.endswith(f"_L0{other}")
  assert default.name != rllc.optimizer("M(0.9)+M(0)", **hp, initial_law=other).name
  vector = rllc.optimizer("M(0.9)+M(0)", **hp, initial_law=(1.0, 0.5))
  assert vector.name.endswith("_L0(1,0.5)")


def test_baselines_are_optax_own_optimizers():
  grads = {"w": jnp.array([1.0, -2.0])}
  params = {"w": jnp.zeros(2)}
  for name, reference in [
    ("sgd", optax.sgd(0.1)),
    ("momentum", optax.sgd(0.1, momentum=0.9)),
    ("nesterov", optax.sgd(0.1, momentum=0.9, nesterov=True)),
    ("adam", optax.adam(0.1)),
  ]:
    tx = rllc.optimizer(name, learning_rate=0.1).tx
    got, _ = tx.update(grads, tx.init(params), params)
    want, _ = reference.update(grads, reference.init(params), params)
    np.testing.assert_allclose(got["w"], want["w"], err_msg=name)


def test_unknown_name_lists_what_is_valid():
  with pytest.raises(ValueError) as err:
    rllc.optimizer("adamax", learning_rate=0.1)
  message = str(err.value)
  assert "'adamax'" in message
  for valid in ("sgd", "momentum", "nesterov", "adam", "M(0.9)+M(0)", "lm:"):
    assert valid in message


def test_bad_spec_reports_the_parser_error():
  with pytest.raises(ValueError, match=r"'X' at position 7"):
    rllc.optimizer("M(0.9)+X(2)", learning_rate=0.1, law_learning_rate=0.01)


@pytest.mark.parametrize(
  "name,hparams,culprit",
  [
    ("sgd", {"learning_rate": 0.1, "momentum": 0.9}, "unknown hyperparameter(s) momentum"),
    ("M(0.9)", {"learning_rate": 0.1}, "missing hyperparameter(s) law_learning_rate"),
    ("adam", {}, "missing hyperparameter(s) learning_rate"),
    ("lm:M(0.9)", {"learning_rate": 0.1, "lr": 1}, "unknown hyperparameter(s) lr"),
  ],
)
def test_bad_hyperparameters_name_the_culprit_and_the_valid_ones(name, hparams, culprit):
  with pytest.raises(ValueError) as err:
    rllc.optimizer(name, **hparams)
  assert culprit in str(err.value)
  assert "it takes" in str(err.value)
