"""learned_optimization's task names, read from its source: what runs here, on which data."""

import subprocess
import sys
from pathlib import Path

import pytest

from tasks import data as data_lib
from tasks import lo_names

PROJECT = Path(__file__).resolve().parents[2]


def test_fixed_tasks_come_from_the_source_with_their_data_set():
  known = lo_names.known()
  mnist = known["lo:ImageMLP_Mnist_128x128x128_Relu"]
  assert mnist.module == "learned_optimization.tasks.fixed.image_mlp"
  assert mnist.attribute == "ImageMLP_Mnist_128x128x128_Relu"
  assert mnist.dataset == "mnist" and mnist.needs is None
  assert known["lo:Conv_Cifar10_32x64x64"].dataset == "cifar10"
  assert known["lo:ImageMLP_FashionMnist_Relu128x128"].dataset == "fashion_mnist"
  assert "imagenet16_datasets" in known["lo:ImageMLP_Imagenet16_Relu256x256x256"].needs
  assert "image_size=(8, 8)" in known["lo:ImageMLP_FashionMnist8_Relu32"].needs
  # ES-wrapped tasks build no data set of their own: not tasks of this list.
  assert not any(name.startswith("lo:ESWrapped") for name in known)


def test_a_fixed_tasks_batch_size_is_its_factorys_and_the_others_have_none():
  # image_mlp.py: ImageMLP_Cifar10_128x128x128_Tanh_bs64 calls cifar10_datasets(batch_size=64).
  assert lo_names.batch_size_of("lo:ImageMLP_Cifar10_128x128x128_Tanh_bs64") == 64
  assert lo_names.batch_size_of("lo:ImageMLP_Mnist_128x128x128_Relu") == 128
  assert lo_names.batch_size_of("lo:QuadraticTask") is None
  assert lo_names.batch_size_of("my_tasks:Tiny") is None


def test_runnable_tasks_are_the_known_ones_this_suite_has_data_for():
  runnable = {t.name for t in lo_names.runnable()}
  assert {"lo:QuadraticTask", "lo:SumQuadraticTask", "lo:FixedDimQuadraticFamily@0"} <= runnable
  assert "lo:ImageMLP_Mnist_128x128x128_Relu" in runnable
  assert "lo:ImageMLP_Imagenet16_Relu256x256x256" not in runnable
  assert all(t.dataset in (None, *lo_names.SUITE_DATA.values()) for t in lo_names.runnable())


def test_listing_imports_neither_jax_nor_tensorflow_nor_learned_optimization():
  code = (
    "import sys; from tasks import lo_names; assert lo_names.runnable();"
    " print(sorted({m.partition('.')[0] for m in sys.modules}"
    " & {'jax', 'tensorflow', 'learned_optimization'}))"
  )
  done = subprocess.run(
    [sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT, check=True
  )
  assert done.stdout.strip() == "[]"


def test_an_unknown_name_fails_listing_the_runnable_ones():
  with pytest.raises(lo_names.UnknownTaskError) as err:
    lo_names.lookup("lo:ImageMLP_Mnist")
  message = str(err.value)
  assert "unknown learned_optimization task 'lo:ImageMLP_Mnist'" in message
  assert "lo:ImageMLP_Mnist_128x128x128_Relu" in message and "lo:QuadraticTask" in message
  assert "\n" not in message


def test_a_task_on_data_not_here_fails_naming_the_data():
  with pytest.raises(data_lib.DataError, match="needs imagenet16_datasets"):
    lo_names.lookup("lo:ImageMLP_Imagenet16_Relu256x256x256")


def test_a_family_takes_any_seed_and_a_user_task_is_no_lo_name():
  sample = lo_names.lookup("lo:FixedDimQuadraticFamily@7")
  assert (sample.attribute, sample.sample) == ("FixedDimQuadraticFamily", 7)
  with pytest.raises(lo_names.UnknownTaskError):
    lo_names.lookup("lo:FixedDimQuadraticFamily@x")
  assert lo_names.is_user("my_tasks:Tiny") and not lo_names.is_user("lo:QuadraticTask")
  assert lo_names.dataset_of("my_tasks:Tiny") is None
  assert lo_names.dataset_of("lo:ImageMLP_Mnist_128x128x128_Relu") == "mnist"
