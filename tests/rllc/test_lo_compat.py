"""Tests for rllc.compat.lo_compat: restoring removed JAX names for learned_optimization."""

import pathlib
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rllc.compat import lo_compat

_REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]

_RESTORABLE = (
  "jax.tree_map",
  "jax.tree_multimap",
  "jax.tree_leaves",
  "jax.tree_flatten",
  "jax.tree_unflatten",
  "jax.tree_structure",
  "jax.ShapedArray",
  "jax.lib.xla_client.Device",
)


def _lookup(dotted: str):
  """Resolves "jax.a.b" by attribute access, or returns None if missing."""
  obj = jax
  for part in dotted.split(".")[1:]:
    obj = getattr(obj, part, None)
    if obj is None:
      return None
  return obj


def _snapshot() -> dict:
  return {name: _lookup(name) for name in _RESTORABLE}


def test_load_restores_exactly_the_missing_names_in_a_fresh_interpreter():
  # A fresh process, because in this one another test may already have called
  # `load`; there we can see the names absent before and present after.
  script = textwrap.dedent(f"""
      import jax, jax.core, jax.lib
      names = {_RESTORABLE!r}
      def lookup(dotted):
        obj = jax
        for part in dotted.split(".")[1:]:
          obj = getattr(obj, part, None)
          if obj is None:
            return None
        return obj
      missing_before = {{n for n in names if lookup(n) is None}}
      from rllc.compat import lo_compat
      lo_compat.load("learned_optimization.optimizers.base")
      assert missing_before, "nothing to restore: this JAX still has the names"
      assert missing_before == set(lo_compat.RESTORED), (
          missing_before, set(lo_compat.RESTORED))
      assert all(lookup(n) is not None for n in names)
      assert jax.tree_map is jax.tree.map
      assert jax.tree_multimap is jax.tree.map
      assert jax.tree_leaves is jax.tree.leaves
      assert jax.tree_flatten is jax.tree.flatten
      assert jax.tree_unflatten is jax.tree.unflatten
      assert jax.tree_structure is jax.tree.structure
      assert jax.ShapedArray is jax.core.ShapedArray
      assert jax.lib.xla_client.Device is jax.Device
      print("OK")
      """)
  result = subprocess.run(
    [sys.executable, "-c", script],
    cwd=_REPO_ROOT,
    capture_output=True,
    text=True,
    timeout=300,
    check=False,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.strip().endswith("OK")


def test_restored_names_behave_like_their_modern_equivalents():
  lo_compat.load("learned_optimization.optimizers.base")
  tree = {"a": np.arange(3.0), "b": (np.float32(1.0), np.ones((2, 2)))}

  def double(x):
    return 2 * x

  jax.tree.map(
    np.testing.assert_array_equal, jax.tree_map(double, tree), jax.tree.map(double, tree)
  )
  jax.tree.map(
    np.testing.assert_array_equal,
    jax.tree_multimap(np.add, tree, tree),
    jax.tree.map(np.add, tree, tree),
  )
  old_leaves = jax.tree_leaves(tree)
  assert len(old_leaves) == 3
  for old, new in zip(old_leaves, jax.tree.leaves(tree), strict=True):
    assert old is new
  leaves, treedef = jax.tree_flatten(tree)
  assert treedef == jax.tree.flatten(tree)[1]
  assert jax.tree_structure(tree) == jax.tree.structure(tree)
  rebuilt = jax.tree_unflatten(treedef, leaves)
  assert jax.tree.structure(rebuilt) == jax.tree.structure(tree)

  aval = jax.ShapedArray((2, 3), jnp.float32)
  assert isinstance(aval, jax.core.ShapedArray)
  assert aval.shape == (2, 3) and aval.dtype == jnp.float32
  assert isinstance(jax.devices()[0], jax.lib.xla_client.Device)


def test_load_is_idempotent():
  first_module = lo_compat.load("learned_optimization.tree_utils")
  first = _snapshot()
  restored = dict(lo_compat.RESTORED)
  second_module = lo_compat.load("learned_optimization.tree_utils")
  assert second_module is first_module
  second = _snapshot()
  assert all(first[name] is second[name] for name in _RESTORABLE)
  assert restored == lo_compat.RESTORED


@pytest.mark.parametrize("module", ["numpy", "os.path", "learned_optimization_fake", "", "jax"])
def test_load_rejects_modules_outside_learned_optimization(module):
  with pytest.raises(ValueError, match="learned_optimization"):
    lo_compat.load(module)


@pytest.mark.parametrize(
  "module, attribute",
  [
    ("learned_optimization.optimizers.base", "Optimizer"),
    ("learned_optimization.tasks.base", "Task"),
    ("learned_optimization.training", "get_batches"),
    ("learned_optimization.eval_training", "single_task_training_curves"),
  ],
)
def test_load_imports_the_modules_the_project_uses(module, attribute):
  loaded = lo_compat.load(module)
  assert loaded.__name__ == module
  assert hasattr(loaded, attribute)


def test_learned_optimization_code_calling_removed_names_runs():
  tree_utils = lo_compat.load("learned_optimization.tree_utils")
  a = {"x": jnp.arange(3.0), "y": jnp.ones((2,))}
  # tree_add uses jax.tree_multimap; tree_zip_onp uses tree_flatten/unflatten.
  summed = tree_utils.tree_add(a, a)
  np.testing.assert_allclose(summed["x"], [0.0, 2.0, 4.0])
  zipped = tree_utils.tree_zip_onp([a, a, a])
  assert zipped["x"].shape == (3, 3) and zipped["y"].shape == (3, 2)
  # GradientClipOptimizer.update calls jax.tree_map.
  opt_base = lo_compat.load("learned_optimization.optimizers.base")
  clipped_sgd = opt_base.GradientClipOptimizer(opt_base.SGD(learning_rate=0.5), grad_clip=3.0)
  state = clipped_sgd.init({"w": jnp.ones(2)})
  state = clipped_sgd.update(state, {"w": jnp.array([5.0, -1.0])}, loss=jnp.asarray(1.0))
  np.testing.assert_allclose(clipped_sgd.get_params(state)["w"], [-0.5, 1.5])
