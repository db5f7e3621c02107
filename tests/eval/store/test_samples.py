"""One (setting, seed) is one sample, in the summary, the report, the export and store show.

The stores are made by hand: the records of two seeds of one setting, made
twice, in two layouts (1 and 2 host devices) or on two machine classes, as
a store holds them after benches on two machines or with two device counts.
"""

import csv
import json

import pytest

from eval.cli import commands as cli
from eval.report import build as report_lib
from eval.report import selection, summary
from eval.run import bench
from eval.store import machine, samples
from eval.store import records as records_lib
from eval.store import store as store_lib

CLASS_A = {"arch": "x86_64", "cpu": "A", "class": "x86_64 avx2 #aaaaaaaa"}
CLASS_B = {"arch": "x86_64", "cpu": "B", "class": "x86_64 avx512 #bbbbbbbb"}


def _made(record: dict, *, devices: int, fingerprint: dict) -> dict:
  """`record` as made with `devices` host devices on a machine of `fingerprint`'s class."""
  env = {**record["environment"], "devices": devices, "machine": fingerprint}
  key = bench.record_key(records_lib.identity_of(record), env)
  return {**record, "environment": env, "key": key}


def _plan(store: store_lib.Store, records: list[dict]) -> None:
  store.write_plan([(records_lib.identity_of(r), r["key"]) for r in records], "valid_loss")


@pytest.fixture
def two_layouts(tmp_path, fake_record, fake_store):
  """Seeds 0 and 1 of one setting, each made with 1 and then 2 devices; the plan is the 2's."""
  runs = [
    fake_record("digits-mlp", "sgd", seed, lr=0.1, test_loss=0.2 + seed / 10, test_accuracy=0.9)
    for seed in (0, 1)
  ]
  one = [_made(r, devices=1, fingerprint=CLASS_A) for r in runs]
  two = [_made(r, devices=2, fingerprint=CLASS_A) for r in runs]
  store = fake_store(tmp_path / "store", one + two)
  _plan(store, two)
  return tmp_path / "store", one, two


def test_count_keeps_the_plan_s_record_of_each_seed(two_layouts):
  root, one, two = two_layouts
  store = store_lib.Store(root)
  count = samples.count(store.records(), store.read_plan())
  assert sorted(r["key"] for r in count.counted) == sorted(r["key"] for r in two)
  assert sorted(r["key"] for r in count.superseded) == sorted(r["key"] for r in one)
  assert count.duplicates == []


def test_without_a_plan_one_record_per_seed_counts_the_smallest_key(two_layouts):
  root, one, two = two_layouts
  count = samples.count(store_lib.Store(root).records(), {})
  for seed in (0, 1):
    keys = sorted(r["key"] for r in one + two if r["seed"] == seed)
    assert [r["key"] for r in count.counted if r["seed"] == seed] == keys[:1]
  assert len(count.duplicates) == 2


def test_the_summary_and_the_report_count_n_2_not_4(two_layouts):
  root, _, _ = two_layouts
  store = store_lib.Store(root)
  records = samples.count(store.records(), store.read_plan()).counted
  text = summary.text(selection.select(records), records)
  assert "n = 2" in text and "n = 4" not in text
  report = report_lib.build(root)
  [chosen] = [s for table in report.tables for s in table.selected.values()]
  assert chosen.seeds == 2 and len(report.frames.runs) == 2
  assert any("2 record(s) of runs that the latest plan keys otherwise" in m for m in report.missing)


def test_the_export_has_every_record_and_says_which_count(two_layouts, tmp_path, capsys):
  root, _, two = two_layouts
  out = tmp_path / "runs.csv"
  assert cli.main(["store", "export", str(root), "--out", str(out)]) == 0
  rows = list(csv.DictReader(out.open()))
  assert len(rows) == 4
  counted = {(r["seed"], r["layout.devices"]) for r in rows if r["counted"] == "True"}
  assert counted == {("0", "2"), ("1", "2")}
  assert {r["machine.class"] for r in rows} == {CLASS_A["class"]}
  assert len({(r["hp.learning_rate"], r["seed"], r["layout.devices"]) for r in rows}) == 4


def test_store_show_says_when_a_record_does_not_count(two_layouts, capsys):
  root, one, two = two_layouts
  assert cli.main(["store", "show", str(root), one[0]["key"]]) == 0
  assert "note: this record does not count" in capsys.readouterr().out
  assert cli.main(["store", "show", str(root), two[0]["key"]]) == 0
  assert "does not count" not in capsys.readouterr().out


@pytest.fixture
def two_machines(tmp_path, fake_record, fake_store):
  """Seed 0 made on machine class A, seed 1 on class B, one layout: both count."""
  runs = [
    fake_record("digits-mlp", "sgd", seed, lr=0.1, test_loss=0.2 + seed / 10, test_accuracy=0.9)
    for seed in (0, 1)
  ]
  made = [
    _made(runs[0], devices=2, fingerprint=CLASS_A),
    _made(runs[1], devices=2, fingerprint=CLASS_B),
  ]
  store = fake_store(tmp_path / "store", made)
  _plan(store, made)
  return tmp_path / "store", made


def test_a_cell_from_two_machine_classes_is_named_everywhere(two_machines, capsys):
  root, made = two_machines
  report = report_lib.build(root)
  [chosen] = [s for table in report.tables for s in table.selected.values()]
  assert chosen.seeds == 2
  [line] = [m for m in report.missing if "machine classes" in m]
  assert CLASS_A["class"] in line and CLASS_B["class"] in line
  assert any(CLASS_A["class"] in p and CLASS_B["class"] in p for p in report.provenance)
  assert cli.main(["store", "list", str(root)]) == 0
  assert "note: protocol quick, digits-mlp, sgd: its runs were made on 2 machine classes" in (
    capsys.readouterr().out
  )
  assert cli.main(["store", "show", str(root), made[0]["key"]]) == 0
  assert "2 machine classes" in capsys.readouterr().out


def test_a_record_without_a_fingerprint_is_of_an_unrecorded_class(fake_record):
  record = fake_record("digits-mlp", "sgd", 0, lr=0.1, test_loss=0.2, test_accuracy=0.9)
  assert machine.class_of(record) == machine.UNRECORDED


def test_this_machine_s_fingerprint_names_its_cpu_and_features():
  print_ = machine.fingerprint()
  assert print_["arch"] and print_["cpu"] and print_["class"].startswith(print_["arch"])
  assert json.loads(json.dumps(print_)) == print_  # a record holds it as JSON
  assert print_["class"] == machine.machine_class(print_)


def test_the_class_reads_the_features_xla_compiles_for():
  info = (
    "vendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 143\nmodel name\t: X\nflags\t\t: {}\n"
  )
  avx2 = machine.cpu(info.format("fpu sse sse2 avx avx2 fma ht"), "x86_64", ["L2 Unified 1M"])
  avx512 = machine.cpu(info.format("fpu sse sse2 avx avx2 fma avx512f ht"), "x86_64", [])
  assert avx2["isa"] == ["avx", "avx2", "fma", "sse", "sse2"]  # not fpu, ht: no codegen
  classes = [
    machine.machine_class({**c, "accelerator": None, "xla_flags": None}) for c in (avx2, avx512)
  ]
  assert classes[0].startswith("x86_64 avx2 #") and classes[1].startswith("x86_64 avx512 #")
  assert (avx2["vendor"], avx2["cpu_family"], avx2["cpu_model"]) == ("GenuineIntel", "6", "143")
  other_cache = {**avx2, "caches": ["L2 Unified 2M"], "accelerator": None, "xla_flags": None}
  assert machine.machine_class(other_cache) != classes[0]  # the GEMM blocking follows the caches
