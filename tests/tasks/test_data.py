"""The data sets: real MNIST and Fashion-MNIST where shared, CIFAR-10 files written here, bad input.

Each test points RLLC_CACHE_DIR at its own temporary directory and clears
RLLC_DATA_DIR and TFDS_DATA_DIR, so nothing outside it is read or written.
"""

import dataclasses
import functools
import gzip
import io
import pickle
import sys
import tarfile
import time
import types
from pathlib import Path

import numpy as np
import pytest

from tasks import data, formats

SHARED = Path(__file__).resolve().parents[3] / "shared" / "datasets"
SHARED_DIRS = {"mnist": "mnist", "fashion_mnist": "fashion-mnist"}
# Facts of /work/shared/datasets/README.md: raw training pixel mean and std.
RAW_STATS = {"mnist": (0.1307, 0.3081), "fashion_mnist": (0.2860, 0.3530)}
PAPER_CONSTANTS = {"mnist": (0.1307, 0.3081), "fashion_mnist": (0.3, 0.3)}


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch) -> Path:
  """A fresh cache dir; no data dir, no tensorflow-datasets dir, no system locations."""
  cache = tmp_path / "cache"
  monkeypatch.setenv("RLLC_CACHE_DIR", str(cache))
  monkeypatch.delenv("RLLC_DATA_DIR", raising=False)
  monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
  monkeypatch.setattr(data, "SYSTEM_DIRS", {"fashion_mnist": (tmp_path / "usr-share",)})
  return cache


def cache_files(cache: Path) -> list[Path]:
  return sorted(cache.rglob("*")) if cache.exists() else []


def shared_dir(name: str) -> Path:
  directory = SHARED / SHARED_DIRS[name]
  if not directory.is_dir():
    pytest.skip(f"{directory} not found: the shared data sets are only on development machines")
  return directory


# --- Real MNIST and Fashion-MNIST ---------------------------------------------------------


@dataclasses.dataclass
class Imported:
  raw: formats.Raw  # the parse of the original files, before any split
  first: data.ImageData  # load() that imported
  second_source: str  # of the load() right after
  second_valid: tuple[np.ndarray, np.ndarray]
  cache: Path


@pytest.fixture(scope="module")
def shared_imports() -> dict[str, Imported]:
  """name -> the shared files loaded twice into a fresh cache, filled on first use."""
  return {}


@pytest.fixture(params=list(SHARED_DIRS))
def imported(request, shared_imports, tmp_path_factory) -> Imported:
  return import_shared(request.param, shared_imports, tmp_path_factory)


def import_shared(name: str, shared_imports, tmp_path_factory) -> Imported:
  """The shared files of `name` loaded through a data dir into a fresh cache, then again."""
  if name not in shared_imports:
    directory = shared_dir(name)
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
      patch.setenv("RLLC_CACHE_DIR", str(cache))
      first = data.load(name, data_dir=str(directory.parent))
      second = data.load(name)
    raw = formats.read_mnist(directory)
    shared_imports[name] = Imported(raw, first, second.source, second.valid, cache)
  return shared_imports[name]


def test_real_data_splits_are_54k_6k_10k_of_28x28x1_float32_and_int32(imported):
  d = imported.first
  assert d.name in SHARED_DIRS and d.num_classes == 10
  for (images, labels), n in zip((d.train, d.valid, d.test), (54_000, 6_000, 10_000), strict=True):
    assert images.shape == (n, 28, 28, 1) and images.dtype == np.float32
    assert labels.shape == (n,) and labels.dtype == np.int32


def test_raw_train_pixel_mean_and_std_are_the_readme_facts(imported):
  counts = np.bincount(imported.raw.train_images.ravel(), minlength=256)
  values = np.arange(256) / 255.0
  mean = (counts * values).sum() / counts.sum()
  std = np.sqrt((counts * (values - mean) ** 2).sum() / counts.sum())
  assert (mean, std) == pytest.approx(RAW_STATS[imported.first.name], abs=5e-4)


def test_normalization_uses_the_paper_constants(imported):
  d, raw = imported.first, imported.raw
  mean, std = PAPER_CONSTANTS[d.name]
  assert d.mean == (mean,) and d.std == (std,)
  np.testing.assert_allclose(d.test[0], (raw.test_images / 255.0 - mean) / std, atol=1e-5)


def test_train_and_valid_partition_the_original_train_set_first_54k_then_last_6k(imported):
  d, raw = imported.first, imported.raw
  np.testing.assert_array_equal(np.concatenate([d.train[1], d.valid[1]]), raw.train_labels)
  np.testing.assert_array_equal(d.test[1], raw.test_labels)
  # Images: every 97th of the original train set, and the two either side of the cut.
  picks = sorted({*range(0, 60_000, 97), 53_999, 54_000, 59_999})
  split = [(d.train[0], i) if i < 54_000 else (d.valid[0], i - 54_000) for i in picks]
  images = np.stack([part[i] for part, i in split]) * d.std[0] + d.mean[0]
  np.testing.assert_allclose(images, raw.train_images[picks] / 255.0, atol=1e-5)


def test_mnist_first_labels_are_the_readme_facts(shared_imports, tmp_path_factory):
  mnist = import_shared("mnist", shared_imports, tmp_path_factory)
  assert list(mnist.raw.train_labels[:5]) == [5, 0, 4, 1, 9]  # before the split
  assert list(mnist.first.train[1][:5]) == [5, 0, 4, 1, 9]  # train starts at index 0
  assert list(mnist.first.test[1][:5]) == [7, 2, 1, 0, 4]


def test_fashion_mnist_has_1000_test_images_per_class(shared_imports, tmp_path_factory):
  fashion = import_shared("fashion_mnist", shared_imports, tmp_path_factory)
  assert list(np.bincount(fashion.first.test[1])) == [1000] * 10


def test_first_load_imports_and_second_comes_from_the_cache(imported):
  name = imported.first.name
  assert imported.first.source == f"import:{SHARED / SHARED_DIRS[name]}"
  assert imported.second_source == f"cache:{imported.cache / name}.npz"
  for a, b in zip(imported.first.valid, imported.second_valid, strict=True):
    np.testing.assert_array_equal(a, b)


def test_a_flipped_byte_in_the_cache_is_a_data_error_that_says_import_again(imported, isolated):
  name = imported.first.name
  isolated.mkdir()
  for suffix in (".npz", ".npz.sha256"):
    (isolated / f"{name}{suffix}").write_bytes((imported.cache / f"{name}{suffix}").read_bytes())
  assert data.status(name) == f"cached ({isolated / name}.npz)"
  npz = isolated / f"{name}.npz"
  content = bytearray(npz.read_bytes())
  content[len(content) // 2] ^= 0xFF
  npz.write_bytes(bytes(content))
  with pytest.raises(data.DataError, match=f"{name}: the cache .* checksum") as err:
    data.load(name, data_dir=str(SHARED))
  assert f"rllc data import {name} --from DIR" in str(err.value)


def test_mnist_files_are_refused_as_fashion_mnist(isolated):
  mnist = shared_dir("mnist")
  with pytest.raises(data.DataError, match="holds mnist, not fashion_mnist"):
    data.import_dataset("fashion_mnist", str(mnist))
  assert cache_files(isolated) == []


# --- IDX files written here ---------------------------------------------------------------


def write_idx(path: Path, array: np.ndarray, magic: int) -> None:
  """An IDX file of uint8 `array` (gzip-compressed when `path` ends with .gz)."""
  content = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
  content += array.astype(np.uint8).tobytes()
  path.write_bytes(gzip.compress(content, compresslevel=1) if path.suffix == ".gz" else content)


def write_mnist_like(directory: Path) -> None:
  """Four valid IDX files of the real sizes: images of the label's value, labels i % 10."""
  directory.mkdir(parents=True)
  for split, count, suffix in (("train", 60_000, ""), ("t10k", 10_000, ".gz")):
    labels = np.arange(count) % 10
    images = np.broadcast_to(labels[:, None, None], (count, 28, 28))
    write_idx(directory / f"{split}-images-idx3-ubyte{suffix}", images, formats.IDX_IMAGES_MAGIC)
    write_idx(directory / f"{split}-labels-idx1-ubyte{suffix}", labels, formats.IDX_LABELS_MAGIC)


def test_idx_files_in_a_subdirectory_of_rllc_data_dir_are_imported_on_first_load(
  tmp_path, monkeypatch, isolated
):
  write_mnist_like(tmp_path / "files" / "mnist")
  monkeypatch.setenv("RLLC_DATA_DIR", str(tmp_path / "files"))
  assert data.status("mnist") == f"importable from {tmp_path / 'files' / 'mnist'}"
  d = data.load("mnist")
  assert d.source == f"import:{tmp_path / 'files' / 'mnist'}"
  assert [p.name for p in cache_files(isolated)] == ["mnist.npz", "mnist.npz.sha256"]
  assert list(d.valid[1][:3]) == [0, 1, 2]  # index 54,000 of the original train set
  np.testing.assert_allclose(d.test[0][7], (7 / 255 - 0.1307) / 0.3081, rtol=1e-6)


def test_a_missing_directory_is_a_data_error_naming_it(tmp_path, isolated):
  missing = tmp_path / "no-such-dir"
  with pytest.raises(data.DataError, match=f"mnist: {missing} is not a directory"):
    data.import_dataset("mnist", str(missing))
  with pytest.raises(data.DataError, match=f"mnist: data_dir {missing} is not a directory"):
    data.load("mnist", data_dir=str(missing))
  assert cache_files(isolated) == []


@pytest.mark.parametrize(
  ("file", "damage", "message"),
  [
    ("train-images-idx3-ubyte", lambda b: b[: len(b) // 2], "bytes where its header promises"),
    ("t10k-labels-idx1-ubyte.gz", lambda b: b[: len(b) // 2], "cannot be read"),
    ("train-labels-idx1-ubyte", lambda b: (2051).to_bytes(4, "big") + b[4:], "magic number 2051"),
  ],
  ids=["truncated", "truncated-gzip", "wrong-magic"],
)
def test_a_damaged_idx_file_is_a_data_error_naming_it_and_nothing_is_cached(
  tmp_path, isolated, file, damage, message
):
  write_mnist_like(tmp_path / "files")
  path = tmp_path / "files" / file
  path.write_bytes(damage(path.read_bytes()))
  with pytest.raises(data.DataError, match=f"mnist: {path}: .*{message}"):
    data.import_dataset("mnist", str(tmp_path / "files"))
  assert cache_files(isolated) == []


# --- CIFAR-10 files written here ----------------------------------------------------------

RECORDS = 2  # per batch file, for the files written here


def cifar_batches() -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """Six batches of RECORDS random NHWC images with labels, by python batch name."""
  rng = np.random.default_rng(1)
  return {
    name: (rng.integers(0, 256, (RECORDS, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, RECORDS))
    for name in formats.CIFAR_PYTHON_BATCHES
  }


def rows(images: np.ndarray) -> np.ndarray:
  """NHWC -> the files' rows: 1024 red, then green, then blue, each row-major."""
  return images.transpose(0, 3, 1, 2).reshape(len(images), formats.CIFAR_PIXELS)


def python_batch(images: np.ndarray, labels: np.ndarray) -> bytes:
  """A batch as the files of cifar-10-python.tar.gz hold it, opcode by opcode.

  Python 2's cPickle, protocol 2: strings as (SHORT_)BINSTRING, which Python 3 reads
  as bytes with encoding="bytes", and numpy 1's global numpy.core.multiarray.
  """

  def string(b: bytes) -> bytes:
    return (b"U" + bytes([len(b)]) if len(b) < 256 else b"T" + len(b).to_bytes(4, "little")) + b

  def integer(i: int) -> bytes:
    return b"K" + bytes([i]) if 0 <= i < 256 else b"J" + i.to_bytes(4, "little", signed=True)

  data = rows(images)
  dtype = b"cnumpy\ndtype\n" + string(b"u1") + integer(0) + integer(1) + b"\x87R("
  dtype += integer(3) + string(b"|") + b"NNN" + integer(-1) + integer(-1) + integer(0) + b"tb"
  array = b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + integer(0) + b"\x85"
  array += string(b"b") + b"\x87R(" + integer(1) + integer(len(data)) + integer(data.shape[1])
  array += b"\x86" + dtype + b"\x89" + string(data.tobytes()) + b"tb"
  labels_list = b"](" + b"".join(integer(int(v)) for v in labels) + b"e"
  return (
    b"\x80\x02}(" + string(b"batch_label") + string(b"training batch 1 of 5")
    + string(b"labels") + labels_list + string(b"data") + array + b"u."
  )  # fmt: skip


def binary_batch(images: np.ndarray, labels: np.ndarray) -> bytes:
  return np.concatenate([labels[:, None].astype(np.uint8), rows(images)], axis=1).tobytes()


def write_cifar(directory: Path, fmt: str, batches, packed: bool = True) -> Path:
  """The batches as cifar-10-{fmt}.tar.gz in `directory`, or as its extracted folder."""
  folder = f"cifar-10-batches-{'py' if fmt == 'python' else 'bin'}"
  suffix, encode = ("", python_batch) if fmt == "python" else (".bin", binary_batch)
  files = {f"{folder}/{name}{suffix}": encode(*batch) for name, batch in batches.items()}
  directory.mkdir(parents=True, exist_ok=True)
  if not packed:
    (directory / folder).mkdir()
    for name, content in files.items():
      (directory / name).write_bytes(content)
    return directory / folder
  tarball = directory / f"cifar-10-{fmt}.tar.gz"
  with tarfile.open(tarball, "w:gz") as tar:
    for name, content in files.items():
      info = tarfile.TarInfo(name)
      info.size = len(content)
      tar.addfile(info, io.BytesIO(content))
  return tarball


@pytest.mark.parametrize("packed", [True, False], ids=["tarball", "extracted"])
@pytest.mark.parametrize("fmt", ["python", "binary"])
def test_cifar10_files_parse_to_nhwc_images_and_labels_in_batch_order(tmp_path, fmt, packed):
  batches = cifar_batches()
  source = write_cifar(tmp_path, fmt, batches, packed)
  assert formats.cifar_sources(tmp_path) == [source]
  raw = formats.read_cifar10(source, records_per_batch=RECORDS)
  train = list(batches.values())[:5]
  np.testing.assert_array_equal(raw.train_images, np.concatenate([x for x, _ in train]))
  np.testing.assert_array_equal(raw.train_labels, np.concatenate([y for _, y in train]))
  np.testing.assert_array_equal(raw.test_images, batches["test_batch"][0])
  np.testing.assert_array_equal(raw.test_labels, batches["test_batch"][1])
  assert raw.train_images.shape == (5 * RECORDS, 32, 32, 3) and raw.train_labels.dtype == np.uint8


@pytest.mark.parametrize("fmt", ["python", "binary"])
def test_cifar10_channel_planes_land_in_the_last_axis(fmt):
  row = np.zeros((1, formats.CIFAR_PIXELS), np.uint8)
  row[0, 0 * 1024 + 2 * 32 + 3] = 11  # red at row 2, column 3
  row[0, 1 * 1024 + 2 * 32 + 3] = 22  # green there
  row[0, 2 * 1024 + 31 * 32 + 0] = 33  # blue at row 31, column 0
  if fmt == "python":  # as Python 3 pickles a batch again: numpy._core, _codecs for bytes
    content = pickle.dumps({b"data": row, b"labels": [7]}, protocol=2)
    images, labels = formats.parse_cifar_python_batch(content, "batch", records=1)
  else:
    content = bytes([7]) + row.tobytes()
    images, labels = formats.parse_cifar_binary_batch(content, "batch", records=1)
  assert images.shape == (1, 32, 32, 3) and list(labels) == [7]
  assert list(images[0, 2, 3]) == [11, 22, 0] and images[0, 31, 0, 2] == 33
  assert images.sum() == 66


@pytest.fixture
def small_cifar10(monkeypatch) -> None:
  """CIFAR-10 of RECORDS images per batch file in place of 10,000: 10 train, 2 test, 1 valid."""
  spec = dataclasses.replace(
    data._SPECS["cifar10"],
    counts=(5 * RECORDS, RECORDS),
    num_valid=1,
    read=functools.partial(formats.read_cifar10, records_per_batch=RECORDS),
  )
  monkeypatch.setitem(data._SPECS, "cifar10", spec)


def test_cifar10_load_normalizes_each_channel_and_caches(tmp_path, small_cifar10):
  batches = cifar_batches()
  tarball = write_cifar(tmp_path / "files" / "cifar10", "binary", batches)
  d = data.load("cifar10", data_dir=str(tmp_path / "files"))
  assert d.source == f"import:{tarball}"
  assert [len(y) for _, y in (d.train, d.valid, d.test)] == [9, 1, 2]
  mean, std = np.array([0.4914, 0.4822, 0.4465]), np.array([0.2023, 0.1994, 0.2010])
  assert d.mean == tuple(mean) and d.std == tuple(std)
  expected = (batches["data_batch_5"][0][-1] / 255.0 - mean) / std
  np.testing.assert_allclose(d.valid[0][0], expected, atol=1e-5)
  again = data.load("cifar10")
  assert again.source.startswith("cache:")
  np.testing.assert_array_equal(again.train[0], d.train[0])


def truncate_member(tarball: Path, member: str) -> None:
  """Rewrites `tarball` with the last byte of `member` cut off."""
  with tarfile.open(tarball) as tar:
    files = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
  files[member] = files[member][:-1]
  with tarfile.open(tarball, "w:gz") as tar:
    for name, content in files.items():
      info = tarfile.TarInfo(name)
      info.size = len(content)
      tar.addfile(info, io.BytesIO(content))


@pytest.mark.parametrize(
  ("fmt", "member", "message"),
  [
    ("python", "cifar-10-batches-py/data_batch_3", "not a readable CIFAR-10 pickle"),
    (
      "binary",
      "cifar-10-batches-bin/test_batch.bin",
      r"6145 bytes, expected 2 records .*truncated",
    ),
    ("binary", None, "not a readable tar archive"),
  ],
  ids=["python-batch", "binary-batch", "tarball-itself"],
)
def test_a_truncated_cifar10_tarball_is_a_data_error_naming_the_file_and_nothing_is_cached(
  tmp_path, isolated, small_cifar10, fmt, member, message
):
  tarball = write_cifar(tmp_path / "files", fmt, cifar_batches())
  if member is None:
    tarball.write_bytes(tarball.read_bytes()[:-100])
  else:
    truncate_member(tarball, member)
  where = f"{tarball}:{member}" if member else str(tarball)
  with pytest.raises(data.DataError, match=f"cifar10: {where}: {message}"):
    data.import_dataset("cifar10", str(tmp_path / "files"))
  assert cache_files(isolated) == []


def test_an_interrupted_cache_write_leaves_no_file(tmp_path, monkeypatch, isolated, small_cifar10):
  write_cifar(tmp_path / "files", "python", cifar_batches())

  def interrupted(stream, **arrays):
    stream.write(b"PK partial")
    raise KeyboardInterrupt

  monkeypatch.setattr(np, "savez", interrupted)
  with pytest.raises(KeyboardInterrupt):
    data.import_dataset("cifar10", str(tmp_path / "files"))
  assert cache_files(isolated) == []


def test_an_unwritable_cache_fails_an_import_but_a_load_only_warns(tmp_path, monkeypatch):
  write_mnist_like(tmp_path / "files")
  (tmp_path / "a-file").write_text("")
  monkeypatch.setenv("RLLC_CACHE_DIR", str(tmp_path / "a-file"))
  with pytest.raises(data.DataError, match="mnist: cannot write the cache .*RLLC_CACHE_DIR"):
    data.import_dataset("mnist", str(tmp_path / "files"))
  with pytest.warns(UserWarning, match="mnist: not cached"):
    d = data.load("mnist", data_dir=str(tmp_path / "files"))
  assert d.source == f"import:{tmp_path / 'files'}"


# --- No data anywhere ---------------------------------------------------------------------


def test_with_no_data_anywhere_load_fails_within_a_second_and_lists_the_ways(
  tmp_path, monkeypatch, isolated
):
  (tmp_path / "empty").mkdir()
  monkeypatch.setenv("RLLC_DATA_DIR", str(tmp_path / "empty"))
  start = time.monotonic()
  with pytest.raises(data.DataError) as err:
    data.load("cifar10")
  assert time.monotonic() - start < 1.0
  message = str(err.value)
  assert message.startswith("cifar10: not found.")
  for way in ("rllc data import cifar10 --from DIR", "RLLC_DATA_DIR=DIR", "TFDS_DATA_DIR=DIR",
              "download=True"):  # fmt: skip
    assert way in message
  assert data.status("cifar10").startswith("missing: rllc data import cifar10 --from DIR")
  assert cache_files(isolated) == []


def test_fashion_mnist_missing_names_the_debian_package_and_its_location(tmp_path):
  with pytest.raises(data.DataError) as err:
    data.load("fashion_mnist")
  assert f"apt-get install dataset-fashion-mnist (installs {tmp_path / 'usr-share'})" in str(
    err.value
  )
  assert "apt-get install dataset-fashion-mnist" in data.status("fashion_mnist")


def test_the_system_location_is_used_when_no_data_dir_has_the_files(tmp_path):
  write_mnist_like(tmp_path / "usr-share")
  d = data.load("fashion_mnist")
  assert d.source == f"system:{tmp_path / 'usr-share'}"
  assert d.mean == (0.3,) and d.std == (0.3,)


def test_an_unprepared_tfds_dir_is_not_tried(tmp_path, monkeypatch):
  (tmp_path / "tfds" / "cifar10").mkdir(parents=True)
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
  monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # import fails
  with pytest.raises(data.DataError, match="not prepared there"):
    data.load("cifar10")


@pytest.mark.parametrize("prepared", [True, False], ids=["TFDS_DATA_DIR", "download"])
def test_tensorflow_datasets_is_used_when_prepared_or_asked_to_download(
  tmp_path, monkeypatch, prepared
):
  calls = []

  def fake_load(name, **kwargs):
    calls.append((name, kwargs))
    labels = [np.arange(n) % 10 for n in formats.MNIST_COUNTS]
    return [(np.zeros((len(y), 28, 28, 1), np.uint8), y) for y in labels]

  fake = types.SimpleNamespace(load=fake_load, as_numpy=lambda tree: tree)
  monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)
  if prepared:
    (tmp_path / "tfds" / "mnist" / "3.0.1").mkdir(parents=True)
    (tmp_path / "tfds" / "mnist" / "3.0.1" / "dataset_info.json").write_text("{}")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    assert (
      data.status("mnist") == f"importable from {tmp_path / 'tfds' / 'mnist'} (tensorflow-datasets)"
    )
  d = data.load("mnist", download=not prepared)
  assert d.source == "tfds" and len(d.train[1]) == 54_000
  assert calls[0][0] == "mnist" and calls[0][1]["download"] is not prepared
  assert calls[0][1]["data_dir"] == (str(tmp_path / "tfds") if prepared else None)
  assert data.load("mnist").source.startswith("cache:") and len(calls) == 1


# --- digits and names ---------------------------------------------------------------------


def test_digits_is_a_fixed_1197_300_300_split_of_sklearn_digits(isolated):
  from sklearn.datasets import load_digits

  first, second = data.load("digits"), data.load("digits")
  assert first.source == "sklearn" and first.num_classes == 10
  order = np.random.default_rng(0).permutation(1797)
  assert list(order[:5]) == [360, 1773, 1482, 600, 850]  # the documented rule, pinned
  target = load_digits().target
  bounds = [(0, 1197), (1197, 1497), (1497, 1797)]
  for split, again, (lo, hi) in zip(
    (first.train, first.valid, first.test), (second.train, second.valid, second.test), bounds,
    strict=True,
  ):  # fmt: skip
    assert split[0].shape == (hi - lo, 8, 8, 1) and split[0].dtype == np.float32
    np.testing.assert_array_equal(split[1], target[order[lo:hi]])
    np.testing.assert_array_equal(split[0], again[0])
  assert set(order[:1197]).isdisjoint(order[1197:]) and set(order[1197:1497]).isdisjoint(
    order[1497:]
  )
  assert sorted(np.unique(first.train[1])) == list(range(10))
  assert float(first.train[0].mean()) == pytest.approx(0, abs=1e-5)
  assert float(first.train[0].std()) == pytest.approx(1, abs=1e-4)
  assert cache_files(isolated) == []


def test_an_unknown_name_is_a_data_error_listing_the_known():
  with pytest.raises(data.DataError, match="unknown data set 'svhn'; known: mnist, fashion_mnist"):
    data.load("svhn")
