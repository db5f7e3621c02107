"""The path the README's "Adding an optimizer" promises: a transformation and one catalog entry.

A toy optimizer is declared in a catalog local to this test (rllc.catalog's
`extended` and `using`: nothing of it outlives the test) and goes through the
command line as any optimizer does: `rllc optimizers` lists it, `rllc bench`
trains its default quick grid (its entry's: 2 learning rates) on digits-mlp
for 20 steps, and `rllc report` reports it, under its declared family.
"""

import inspect
import json

import optax

from eval.cli import commands as cli
from eval.store import store as store_lib
from rllc import catalog


def damped_sgd(learning_rate, damping: float = 0.5) -> optax.GradientTransformation:
  """x <- x - learning_rate * damping * g: SGD with a fixed factor, the toy of this test."""
  return optax.chain(optax.scale(damping), optax.scale_by_learning_rate(learning_rate))


TOY = catalog.Entry(
  name="damped-sgd",
  factory=damped_sgd,
  family="toy",
  label="DampedSGD",
  hyperparameters=(
    catalog.Hyperparameter("learning_rate", "float or schedule"),
    catalog.Hyperparameter("damping", "float", 0.5),
  ),
  key=(catalog.Key("lr", "learning_rate"), catalog.Key("damping", "damping", catalog.DIFFERS)),
  buffer_count=0,
  quick={"learning_rate": (0.1, 0.3)},
  paper={"learning_rate": catalog.PAPER_LR},
)
TOYS = catalog.Family("toy", ours=True, about="this test's")


def test_a_toy_entry_runs_through_bench_and_report(tmp_path, capsys):
  defaults = {p.name: p.default for p in inspect.signature(damped_sgd).parameters.values()}
  assert TOY.defaults() == {"damping": defaults["damping"]}  # the entry's are the factory's
  store, out = tmp_path / "store", tmp_path / "report"
  with catalog.using(catalog.DEFAULT.extended(TOY, families=[TOYS])):
    assert cli.main(["optimizers"]) == 0
    listed = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["damped-sgd", "toy", "0", "quick:", "learning_rate", "{0.1,", "0.3}", "(2)"] in listed
    argv = ["bench", "digits-mlp", "--optimizers", "damped-sgd", "--steps", "20", "--seeds", "1"]
    assert cli.main([*argv, "--out", str(store), "--quiet"]) == 0
    assert cli.main(["report", str(store), "--format", "md", "--out", str(out)]) == 0
  records = store_lib.Store(store).records()
  assert sorted((r["name"], r["family"], r["status"]) for r in records) == [
    ("DampedSGD_lr0.1", "toy", "ok"),
    ("DampedSGD_lr0.3", "toy", "ok"),
  ]
  table = [json.loads(line) for line in (store / "results.jsonl").read_text().splitlines()]
  assert {(row["optimizer"], row["family"]) for row in table} == {("damped-sgd", "toy")}
  report = (out / "report.md").read_text()
  rows = [line for line in report.splitlines() if line.startswith("| damped-sgd")]
  assert rows, report
  assert catalog.active() is catalog.DEFAULT
