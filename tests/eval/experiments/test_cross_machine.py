"""eval.experiments.cross_machine: two stores of the same keys, compared record by record."""

from eval.experiments import cross_machine


def _runs(fake_record) -> list[dict]:
  return [
    fake_record(
      "digits-mlp", "sgd", seed, lr=0.1, test_loss=0.2 + seed / 10, test_accuracy=0.9 + seed / 100
    )
    for seed in (0, 1)
  ]


def test_equal_and_shifted_records_are_counted_and_measured(tmp_path, fake_record, fake_store):
  reference = _runs(fake_record)
  rerun = [dict(r) for r in reference]
  rerun[1] = {**rerun[1], "final": {**rerun[1]["final"], "test_accuracy": 0.9 + 0.01 + 0.004}}
  fake_store(tmp_path / "a", reference)
  fake_store(tmp_path / "b", rerun)
  out = tmp_path / "cmp.md"
  assert cross_machine.main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out)]) == 0
  [row] = [line for line in out.read_text().splitlines() if line.startswith("| digits-mlp")]
  cells = [c.strip() for c in row.strip("|").split("|")]
  assert cells[:4] == ["digits-mlp", "sgd", "2", "1 of 2"]
  assert cells[4] == "0" and cells[5] == "0.40"  # 0.004 of accuracy = 0.40 points


def test_stores_without_a_shared_key_are_refused(tmp_path, fake_record, fake_store, capsys):
  fake_store(tmp_path / "a", _runs(fake_record)[:1])
  fake_store(tmp_path / "b", _runs(fake_record)[1:])
  assert cross_machine.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 2
  assert "share no key" in capsys.readouterr().err
