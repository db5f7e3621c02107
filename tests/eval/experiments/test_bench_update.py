"""Tests of the optimizer-update benchmark (eval.experiments.bench_update).

No timing is asserted: the tests check the pass counter against programs whose
memory traffic is known by hand, and that the table is made as described.
"""

import subprocess

import jax
import jax.numpy as jnp
import optax
import pytest

import rllc
from eval.experiments import bench_update

TREE = {"w": jnp.ones((256, 64)), "b": jnp.ones((64,))}


def test_hlo_passes_of_a_copy_reads_and_writes_each_element_once():
  passes = bench_update.hlo_passes(lambda x: jax.tree.map(lambda v: v + 1.0, x), TREE)
  assert passes == 2.0


def test_hlo_passes_of_a_sum_reads_each_element_once():
  # One read per element; the two scalar results add 2 elements in 16,448.
  passes = bench_update.hlo_passes(lambda x: jax.tree.map(jnp.sum, x), TREE)
  assert passes == pytest.approx(1.0, abs=1e-3)


def test_hlo_passes_of_momentum_are_at_least_what_it_must_move():
  # Momentum must read g, m and write m and the update: 4 passes at the least.
  tx = optax.sgd(0.1, momentum=0.9)
  passes = bench_update.hlo_passes(tx.update, TREE, tx.init(TREE), TREE)
  assert passes >= 4.0


def test_am_adamw_update_keeps_its_preconditioner_out_of_memory():
  """AM-AdamW's step recomputes P rather than pass it from the sums' loop through memory.

  Sharing P made 26 passes against AdamW's 10 on jax 0.12.0.1 (v_t, sqrt and P
  written by the sums' loop and read by the step's two); the barriers make 19.
  """
  shapes = {"w1": (784, 1024), "b1": (1024,), "w2": (1024, 10)}
  params = {n: jnp.ones(s) for n, s in shapes.items()}
  grads = jax.tree.map(lambda p: 1e-2 * p, params)
  counts = {}
  for name, tx in (("adamw", optax.adamw(1e-3)), ("am-adamw", rllc.am_adamw(1e-3))):
    counts[name] = bench_update.hlo_passes(tx.update, grads, tx.init(params), params)
  assert counts["am-adamw"] < 2 * counts["adamw"], counts


def test_update_table_has_the_rows_asked_for_their_references_and_bounds(tmp_path, capsys):
  out = tmp_path / "bench.txt"
  bench_update.main(
    ["--repeats", "1", "--update-only", "--optimizers", "am-sgd", "--out", str(out)]
  )
  text = out.read_text()
  assert capsys.readouterr().out == text
  rows = {line.split()[0]: line.split() for line in text.splitlines()[3:]}
  assert set(rows) == {"momentum", "am-sgd"}
  # name, vs, update/vs, cpu, passes, bound, XLA passes, XLA bound, ...
  assert rows["am-sgd"][1] == "momentum"
  assert rows["am-sgd"][4:6] == ["6", "1.50"]  # (2 + 4) / 4 passes
  assert rows["momentum"][2:4] == ["1.00", "1.00"]
  xla_bound = float(rows["am-sgd"][6]) / float(rows["momentum"][6])
  assert float(rows["am-sgd"][7]) == pytest.approx(xla_bound, abs=0.01)
  assert rows["am-sgd"][-2:] == ["-", "-"]  # no scanned steps with --update-only


@pytest.mark.skipif(
  subprocess.run(["git", "cat-file", "-e", "379c067"], capture_output=True).returncode != 0,
  reason="a checkout without the history of 379c067",
)
def test_at_a_commit_adds_its_am_rows_with_their_own_pass_counts(capsys):
  """--at times AM as it was at a commit: 379c067's AM-AdamW made 26 XLA passes (see rllc)."""
  bench_update.main(
    ["--repeats", "1", "--update-only", "--optimizers", "am-adamw", "--at", "379c067"]
  )
  rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[3:]}
  assert set(rows) == {"adamw", "am-adamw", "am-adamw@379c067"}
  assert rows["am-adamw@379c067"][1] == "adamw"
  assert float(rows["am-adamw@379c067"][6]) > float(rows["am-adamw"][6])


@pytest.mark.parametrize(
  "argv, culprit",
  [
    (["--optimizers", "am-sgd,lion"], "lion"),
    (["--repeats", "0"], "--repeats"),
    (["--at", "no-such-commit"], "no-such-commit"),
  ],
)
def test_bad_arguments_exit_2_naming_the_culprit(argv, culprit, capsys):
  with pytest.raises(SystemExit) as exit_:
    bench_update.main(argv)
  assert exit_.value.code == 2
  assert culprit in capsys.readouterr().err
