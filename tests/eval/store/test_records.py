"""The typed run record (eval.store.records): built in one place, checked on every read."""

import json

import pytest

from eval.store import records
from eval.store import store as store_lib

IDENTITY = {
  "task": "digits-mlp",
  "optimizer": "sgd",
  "hparams": {"learning_rate": 0.1},
  "seed": 0,
  "protocol": {"protocol": "quick", "steps": 40},
}
MEMBER = {
  "name": "SGD_lr0.1",
  "status": "ok",
  "diverged_step": None,
  "final": {"test_accuracy": 0.9},
  "curves": {"step": [40]},
}
ENV = {"code": "c0de", "versions": {"jax": "0"}}


def _record(**changes):
  record = records.build(
    IDENTITY,
    key="k",
    family="baseline",
    member=MEMBER,
    memory={"param_bytes": 8, "state_bytes": 0},
    environment=ENV,
  )
  return {**record, **changes}


def test_build_writes_the_current_schema_and_every_field():
  record = _record()
  assert record["schema"] == records.SCHEMA_VERSION
  assert set(record) == set(records.RunRecord.__annotations__)
  assert records.identity_of(record) == IDENTITY


def test_group_and_protocol_name_read_the_protocol_field():
  record = _record()
  assert records.protocol_name(record) == "quick"
  assert records.group(record) == ("digits-mlp", "sgd", "quick")


def test_a_record_written_before_the_schema_field_reads_as_version_1():
  old = {k: v for k, v in _record().items() if k != "schema"}
  assert records.check(old) is old


@pytest.mark.parametrize(
  ("change", "message"),
  [
    ({"schema": records.SCHEMA_VERSION + 1}, "this code reads versions 1 to"),
    ({"status": "finished"}, "valid: ok, diverged"),
    ({"seed": "0"}, "'seed' is str"),
    ({"seed": True}, "'seed' is bool"),
    ({"protocol": {"steps": 40}}, "no protocol name"),
  ],
)
def test_check_names_what_is_wrong(change, message):
  with pytest.raises(ValueError, match=message):
    records.check(_record(**change))


def test_check_names_a_missing_field():
  record = _record()
  del record["curves"]
  with pytest.raises(ValueError, match="no field 'curves'"):
    records.check(record)


def test_the_store_treats_an_ill_typed_record_as_corrupt(tmp_path):
  store = store_lib.Store(tmp_path)
  store.create()
  store.put(_record(status="finished"))  # a valid checksum over a wrong record
  found, problems = store.inspect()
  assert found == []
  assert len(problems) == 1 and "record status 'finished'" in problems[0]
  assert json.loads(store.path("k").read_text())["status"] == "finished"  # inspect moves nothing


def test_the_dataframe_view_is_the_tidy_table():
  from eval.store import tidy

  two = [_record(key="a"), _record(key="b", seed=1, final={"test_accuracy": 0.8})]
  df = tidy.frame(two)
  table = tidy.rows(two)
  assert list(df.columns) == tidy.columns(table)
  assert df["key"].tolist() == [row["key"] for row in table]
  assert df["final.test_accuracy"].tolist() == [0.9, 0.8]
  assert df.groupby("name")["final.test_accuracy"].mean()["SGD_lr0.1"] == pytest.approx(0.85)
