"""Per-leaf maps with several outputs, for the transformations written here.

optax's `optax.tree` helpers map a function with one output over pytrees; a
transformation's step usually computes several things per leaf at once (the
update and each new buffer), from one read of the leaf. `map_leaves` is that
map: jax.tree.map, then jax.tree.transpose of the tree of tuples into a tuple
of trees.
"""

import jax


def map_leaves(fn, tree, *rest):
  """fn over the leaves of `tree` (and the matching subtrees of `rest`), transposed.

  Args:
    fn: (leaf, *matching) -> a tuple (or any fixed pytree) of outputs.
    tree: the pytree whose leaves are mapped; it must have at least one leaf.
    *rest: pytrees with `tree`'s structure as a prefix, as in jax.tree.map.

  Returns:
    fn's output structure with a tree like `tree` in place of each output:
    `updates, memory = map_leaves(fn, grads, state.memory)`.
  """
  treedef = jax.tree.structure(tree)
  return jax.tree.transpose(treedef, None, jax.tree.map(fn, tree, *rest))
