"""The image data sets of the tasks: where they come from, their splits, their normalization.

`load(name)` looks for a data set in this order and never downloads unless asked:

1. the cache: `<cache_dir()>/<name>.npz` (the original train and test splits as
   uint8 NHWC images and uint8 labels) and `<name>.npz.sha256`, its checksum in
   sha256sum's format, checked on every load;
2. local files: the `data_dir` argument, else $RLLC_DATA_DIR, directly or in a
   subdirectory named like the data set (`DIR/mnist/`, `DIR/fashion-mnist/`,
   `DIR/cifar10/`, ...): MNIST and Fashion-MNIST as their four IDX files (.gz
   or uncompressed), CIFAR-10 as cifar-10-python.tar.gz, cifar-10-binary.tar.gz
   or their extracted folders. The first use parses, verifies and caches them;
3. known system locations, `SYSTEM_DIRS` (Debian's dataset-fashion-mnist);
4. tensorflow-datasets, only when $TFDS_DATA_DIR holds its prepared data or
   with `download=True`; it is never imported otherwise;
5. else a `DataError`, at once, listing the ways to provide the data set.

"digits" is scikit-learn's `load_digits`: always there and never cached.

Splits (RLLC paper, appendix A.5), each the same on every machine:

- MNIST, Fashion-MNIST: train = the first 54,000 images of the original
  training set, valid = its last 6,000; test = the original 10,000.
- CIFAR-10: train = the first 45,000 of data_batch_1..5 in order, valid = the
  last 5,000 (the second half of data_batch_5); test = test_batch.
- digits: `numpy.random.default_rng(0).permutation(1797)` split 1,197 train /
  300 valid / 300 test, in that order.

The valid split is a plain "last N" rather than a random draw: no generator
whose stream could change between library versions (its classes are balanced:
MNIST's last 6,000 hold 549..668 of each digit, Fashion-MNIST's 555..633).
From tensorflow-datasets, whose prepared files are not in the original order,
the same rule gives another 6,000 (5,000) valid images than an import of the
original files.

Images are float32 NHWC, (pixel / 255 - mean) / std per channel, with the
paper's constants: MNIST 0.1307 / 0.3081; Fashion-MNIST 0.3 / 0.3 (the paper's
values, although its training pixels have mean 0.2860 and std 0.3530);
CIFAR-10 (0.4914, 0.4822, 0.4465) / (0.2023, 0.1994, 0.2010). digits: pixel /
16, then its own train split's mean and std.
"""

import dataclasses
import hashlib
import io
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tasks import formats

DATASETS = ("mnist", "fashion_mnist", "cifar10", "digits")
# Known system locations, per data set: where a system package installs the files.
SYSTEM_DIRS: dict[str, tuple[Path, ...]] = {
  "fashion_mnist": (Path("/usr/share/datasets/fashion-mnist"),),
}
DIGITS_SPLIT = (1197, 300, 300)  # train, valid, test sizes of default_rng(0)'s permutation
_DEBIAN_PACKAGES = {"fashion_mnist": "dataset-fashion-mnist"}
# sha256 of the training labels (the 60,000 label bytes after the IDX header): MNIST
# and Fashion-MNIST files have the same names, this tells them apart.
_TRAIN_LABELS_SHA256 = {
  "mnist": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
  "fashion_mnist": "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7",
}


class DataError(ValueError):
  """A data set that is missing or whose files are corrupt; says which and what to do."""


@dataclasses.dataclass(frozen=True, eq=False)
class ImageData:
  """A data set's splits, ready for training.

  Attributes:
    name: one of DATASETS.
    train, valid, test: (images float32 (N, H, W, C) normalized, labels int32 (N,)).
    num_classes: 10 for all data sets here.
    mean, std: the per-channel constants the images were normalized with.
    source: "cache:<path>", "import:<path>", "system:<path>", "tfds" or "sklearn".
  """

  name: str
  train: tuple[np.ndarray, np.ndarray]
  valid: tuple[np.ndarray, np.ndarray]
  test: tuple[np.ndarray, np.ndarray]
  num_classes: int
  mean: tuple[float, ...]
  std: tuple[float, ...]
  source: str


@dataclasses.dataclass(frozen=True)
class _Spec:
  """How to find, read and split one file-based data set."""

  image_shape: tuple[int, int, int]
  counts: tuple[int, int]  # original train, test
  num_valid: int
  mean: tuple[float, ...]
  std: tuple[float, ...]
  subdirs: tuple[str, ...]  # where in a data directory its files may be
  files: str  # what a directory must hold, for messages
  locate: Callable[[Path], Path | None]  # a directory -> what `read` parses, if there
  read: Callable[[Path], formats.Raw]


def _locate_idx(directory: Path) -> Path | None:
  return directory if formats.idx_paths(directory) else None


def _locate_cifar(directory: Path) -> Path | None:
  return next(iter(formats.cifar_sources(directory)), None)


_IDX_FILES = "the four IDX files " + ", ".join(formats.IDX_FILES.values()) + " (.gz or not)"
_SPECS = {
  "mnist": _Spec(
    (28, 28, 1), formats.MNIST_COUNTS, 6_000, (0.1307,), (0.3081,),
    ("mnist", "MNIST", "MNIST/raw"), _IDX_FILES, _locate_idx, formats.read_mnist,
  ),
  "fashion_mnist": _Spec(
    (28, 28, 1), formats.MNIST_COUNTS, 6_000, (0.3,), (0.3,),
    ("fashion-mnist", "fashion_mnist", "FashionMNIST/raw"), _IDX_FILES, _locate_idx,
    formats.read_mnist,
  ),
  "cifar10": _Spec(
    (32, 32, 3), (50_000, 10_000), 5_000, (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010),
    ("cifar10", "cifar-10", "CIFAR10"),
    "cifar-10-python.tar.gz or cifar-10-binary.tar.gz, or their extracted "
    "cifar-10-batches-py/ or cifar-10-batches-bin/",
    _locate_cifar, formats.read_cifar10,
  ),
}  # fmt: skip


def cache_dir() -> Path:
  """Where imported data sets are cached: $RLLC_CACHE_DIR, else ~/.cache/rllc-suite."""
  return Path(os.environ.get("RLLC_CACHE_DIR") or Path.home() / ".cache" / "rllc-suite")


def _check_name(name: str) -> None:
  if name not in DATASETS:
    raise DataError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")


def _cache_paths(name: str) -> tuple[Path, Path]:
  path = cache_dir() / f"{name}.npz"
  return path, path.with_name(path.name + ".sha256")


def _ways(name: str) -> list[str]:
  """The ways to provide a data set, one line each."""
  spec = _SPECS[name]
  ways = [
    f"rllc data import {name} --from DIR, where DIR (or DIR/{spec.subdirs[0]}/) holds {spec.files}",
    f"RLLC_DATA_DIR=DIR or load(..., data_dir=DIR), such a DIR: imported into the cache "
    f"({cache_dir()}) on first use",
  ]
  if name in _DEBIAN_PACKAGES:
    ways.append(
      f"apt-get install {_DEBIAN_PACKAGES[name]} (installs "
      f"{', '.join(map(str, SYSTEM_DIRS[name]))})"
    )
  ways.append(
    f"TFDS_DATA_DIR=DIR holding tensorflow-datasets' prepared {name}, or load(..., "
    f"download=True) (--download) to let tensorflow-datasets download it"
  )
  return ways


def _verified(name: str, raw: formats.Raw, where: str) -> formats.Raw:
  """`raw` after the checks of its format and of which data set it is."""
  spec = _SPECS[name]
  try:
    formats.check_raw(raw, spec.image_shape, spec.counts, where)
  except formats.FormatError as err:
    raise DataError(f"{name}: {err}") from err
  digest = hashlib.sha256(raw.train_labels.tobytes()).hexdigest()
  for other, known in _TRAIN_LABELS_SHA256.items():
    if other != name and digest == known:
      raise DataError(
        f"{name}: {where} holds {other}, not {name} (its training labels are {other}'s); "
        f"put {name}'s files in a directory of their own, e.g. DIR/{spec.subdirs[0]}/"
      )
  return raw


def _read_cache(name: str) -> tuple[formats.Raw, Path] | None:
  """The cached data set, verified; None when there is no complete cache entry."""
  path, sha_path = _cache_paths(name)
  if not (path.is_file() and sha_path.is_file()):
    return None
  content = path.read_bytes()
  recorded = sha_path.read_text().split()
  if not recorded or hashlib.sha256(content).hexdigest() != recorded[0]:
    raise DataError(
      f"{name}: the cache {path} does not match its checksum in {sha_path} (damaged or changed "
      f"since it was written); import it again, which replaces it: rllc data import {name} "
      f"--from DIR"
    )
  with np.load(io.BytesIO(content)) as npz:
    raw = formats.Raw(**{field: npz[field] for field in formats.Raw._fields})
  return _verified(name, raw, str(path)), path


def _temporary(target: Path) -> Path:
  """A new empty file beside `target`, to be renamed over it."""
  fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
  os.close(fd)
  return Path(name)


def _write_cache(name: str, raw: formats.Raw) -> Path:
  """Writes the cache entry atomically: temporary files in the cache dir, then os.replace."""
  path, sha_path = _cache_paths(name)
  path.parent.mkdir(parents=True, exist_ok=True)
  npz_temporary, sha_temporary = _temporary(path), _temporary(sha_path)
  try:
    with open(npz_temporary, "wb") as stream:
      np.savez(stream, **raw._asdict())
    digest = hashlib.sha256(npz_temporary.read_bytes()).hexdigest()
    sha_temporary.write_text(f"{digest}  {path.name}\n")
    os.replace(npz_temporary, path)
    os.replace(sha_temporary, sha_path)
  finally:
    npz_temporary.unlink(missing_ok=True)
    sha_temporary.unlink(missing_ok=True)
  return path


def _parse(name: str, found: Path) -> formats.Raw:
  """Parses and verifies the files that `_SPECS[name].locate` found."""
  try:
    raw = _SPECS[name].read(found)
  except formats.FormatError as err:
    raise DataError(
      f"{name}: {err}. Nothing was cached; provide complete original files and import again: "
      f"rllc data import {name} --from DIR"
    ) from err
  return _verified(name, raw, str(found))


def _find(name: str, directory: Path) -> Path | None:
  """What to parse for `name` in `directory` or its subdirectories named like the data set."""
  spec = _SPECS[name]
  for candidate in (directory, *(directory / sub for sub in spec.subdirs)):
    found = spec.locate(candidate) if candidate.is_dir() else None
    if found is not None:
      return found
  return None


def _local(name: str, data_dir: str | None) -> tuple[str, Path] | None:
  """("import" or "system", what to parse) from the data directory or a system location."""
  if data_dir is not None:
    label, directory = "data_dir", data_dir
  else:
    label, directory = "RLLC_DATA_DIR", os.environ.get("RLLC_DATA_DIR")
  if directory:
    path = Path(directory).expanduser()
    if not path.is_dir():
      raise DataError(f"{name}: {label} {path} is not a directory")
    found = _find(name, path)
    if found is not None:
      return "import", found
  for system_dir in SYSTEM_DIRS.get(name, ()):
    found = _find(name, system_dir)
    if found is not None:
      return "system", found
  return None


def _tfds_prepared(name: str) -> Path | None:
  """$TFDS_DATA_DIR/<name>, if it holds a version of the data set that tfds prepared."""
  tfds_dir = os.environ.get("TFDS_DATA_DIR")
  if not tfds_dir:
    return None
  prepared = Path(tfds_dir) / name  # tfds's names: mnist, fashion_mnist, cifar10
  return prepared if any(prepared.glob("*/dataset_info.json")) else None


def _from_tfds(name: str, download: bool) -> formats.Raw:
  """The original splits from tensorflow-datasets (which may download with `download`)."""
  try:
    import tensorflow_datasets as tfds  # seconds to import: only on this path

    splits = tfds.load(
      name,
      split=["train", "test"],
      batch_size=-1,
      as_supervised=True,
      data_dir=os.environ.get("TFDS_DATA_DIR") or None,
      download=download,
    )
    (train_images, train_labels), (test_images, test_labels) = tfds.as_numpy(splits)
  # tfds fails in many ways (not installed, no network, partial preparation, versions).
  except Exception as err:
    raise DataError(f"{name}: tensorflow-datasets could not load it: {err}") from err
  raw = formats.Raw(
    *(np.asarray(a, np.uint8) for a in (train_images, train_labels, test_images, test_labels))
  )
  return _verified(name, raw, "tensorflow-datasets")


def _missing(name: str, data_dir: str | None) -> DataError:
  """The error for a data set found nowhere: where it looked, how to provide it."""
  directory = data_dir if data_dir is not None else os.environ.get("RLLC_DATA_DIR")
  looked = [f"the cache {_cache_paths(name)[0]}"]
  looked.append(
    f"{directory} and its subdirectories {', '.join(_SPECS[name].subdirs)}"
    if directory
    else "no data directory (data_dir / RLLC_DATA_DIR unset)"
  )
  looked += [str(path) for path in SYSTEM_DIRS.get(name, ())]
  looked.append(
    f"TFDS_DATA_DIR={os.environ['TFDS_DATA_DIR']}/{name}: not prepared there"
    if os.environ.get("TFDS_DATA_DIR")
    else "tensorflow-datasets not tried (TFDS_DATA_DIR unset, download=False)"
  )
  lines = [f"{name}: not found. Looked at: {'; '.join(looked)}.", "Ways to provide it:"]
  return DataError("\n".join(lines + [f"  - {way}" for way in _ways(name)]))


def _splits(name: str, raw: formats.Raw, source: str) -> ImageData:
  """Normalizes and splits the original train/test into ImageData."""
  spec = _SPECS[name]
  mean, std = np.float32(spec.mean), np.float32(spec.std)

  def normalized(images: np.ndarray) -> np.ndarray:
    out = images.astype(np.float32)
    out *= np.float32(1 / 255)
    out -= mean
    out /= std
    return out

  train_images, train_labels = normalized(raw.train_images), raw.train_labels.astype(np.int32)
  cut = len(train_labels) - spec.num_valid
  return ImageData(
    name=name,
    train=(train_images[:cut], train_labels[:cut]),
    valid=(train_images[cut:], train_labels[cut:]),
    test=(normalized(raw.test_images), raw.test_labels.astype(np.int32)),
    num_classes=formats.NUM_CLASSES,
    mean=spec.mean,
    std=spec.std,
    source=source,
  )


def _digits() -> ImageData:
  """scikit-learn's 8x8 digits: pixel / 16, the DIGITS_SPLIT of default_rng(0)'s permutation."""
  from sklearn.datasets import load_digits  # only this data set needs it

  digits = load_digits()
  images = (digits.images / 16.0).astype(np.float32)[..., None]
  labels = digits.target.astype(np.int32)
  order = np.random.default_rng(0).permutation(len(labels))
  parts = np.split(order, np.cumsum(DIGITS_SPLIT)[:-1])
  train = images[parts[0]]
  mean, std = float(train.mean(dtype=np.float64)), float(train.std(dtype=np.float64))
  train_valid_test = [((images[p] - np.float32(mean)) / np.float32(std), labels[p]) for p in parts]
  return ImageData(
    "digits", *train_valid_test, num_classes=10, mean=(mean,), std=(std,), source="sklearn"
  )


def load(name: str, *, data_dir: str | None = None, download: bool = False) -> ImageData:
  """The data set `name`, split and normalized (see the module docstring).

  Args:
    name: one of DATASETS.
    data_dir: a directory of the original files, used when the data set is not cached;
      default $RLLC_DATA_DIR.
    download: let tensorflow-datasets download it when it is found nowhere else.

  Returns:
    The ImageData; its `source` tells where it came from.

  Raises:
    DataError: unknown, found nowhere (the message lists the ways to provide it), or
      corrupt (the message names the file and the problem).
  """
  _check_name(name)
  if name == "digits":
    return _digits()
  cached = _read_cache(name)
  if cached is not None:
    raw, path = cached
    return _splits(name, raw, f"cache:{path}")
  local = _local(name, data_dir)
  if local is not None:
    kind, found = local
    raw, source = _parse(name, found), f"{kind}:{found}"
  elif download or _tfds_prepared(name) is not None:
    raw, source = _from_tfds(name, download), "tfds"
  else:
    raise _missing(name, data_dir)
  try:
    _write_cache(name, raw)
  except OSError as err:
    warnings.warn(
      f"{name}: not cached, so the next load parses the files again ({err}); set "
      f"RLLC_CACHE_DIR to a writable directory",
      stacklevel=2,
    )
  return _splits(name, raw, source)


def import_dataset(name: str, from_dir: str) -> str:
  """Parses and verifies the files of `name` in `from_dir` and writes them to the cache.

  Args:
    name: "mnist", "fashion_mnist" or "cifar10".
    from_dir: the directory of the files, or of a subdirectory named like the data set.

  Returns:
    The path of the cache file written (it replaces any earlier one).

  Raises:
    DataError: no such directory, no files, a corrupt file (nothing is written then), or
      the cache cannot be written.
  """
  _check_name(name)
  if name == "digits":
    raise DataError("digits: ships with scikit-learn, there is nothing to import")
  directory = Path(from_dir).expanduser()
  if not directory.is_dir():
    raise DataError(f"{name}: {directory} is not a directory; it should hold {_SPECS[name].files}")
  found = _find(name, directory)
  if found is None:
    raise DataError(
      f"{name}: no files of it in {directory} or its subdirectories "
      f"{', '.join(_SPECS[name].subdirs)}; expected {_SPECS[name].files}"
    )
  raw = _parse(name, found)
  try:
    return str(_write_cache(name, raw))
  except OSError as err:
    raise DataError(
      f"{name}: cannot write the cache in {cache_dir()} ({err}); set RLLC_CACHE_DIR to a "
      f"writable directory"
    ) from err


def _cache_problem(path: Path, sha_path: Path) -> str | None:
  """Why a cache entry fails its checksum (read in blocks), or None when it passes."""
  try:
    recorded = sha_path.read_text().split()
    h = hashlib.sha256()
    with open(path, "rb") as stream:
      for block in iter(lambda: stream.read(1 << 20), b""):
        h.update(block)
  except (OSError, UnicodeDecodeError) as err:
    return f"cannot be read ({err})"
  if not recorded or h.hexdigest() != recorded[0]:
    return f"does not match its checksum in {sha_path} (damaged or changed since it was written)"
  return None


def train_size(name: str) -> int:
  """Images in the train split of a data set (the module docstring's splits), without loading it."""
  _check_name(name)
  if name == "digits":
    return DIGITS_SPLIT[0]
  spec = _SPECS[name]
  return spec.counts[0] - spec.num_valid


def status(name: str, *, data_dir: str | None = None) -> str:
  """The state of a data set in one line; a cache entry is checked against its checksum.

  "cached (<path>)", "corrupt: ...", "importable from <path>", "available (...)" or
  "missing: ...".
  """
  _check_name(name)
  if name == "digits":
    return "available (scikit-learn's load_digits; never cached)"
  path, sha_path = _cache_paths(name)
  if path.is_file() and sha_path.is_file():
    problem = _cache_problem(path, sha_path)
    if problem:
      return (
        f"corrupt: the cache {path} {problem}; import it again, which replaces it: rllc data"
        f" import {name} --from DIR"
      )
    return f"cached ({path})"
  try:
    local = _local(name, data_dir)
  except DataError as err:
    return f"missing: {err}"
  if local is not None:
    return f"importable from {local[1]}"
  prepared = _tfds_prepared(name)
  if prepared is not None:
    return f"importable from {prepared} (tensorflow-datasets)"
  ways = [f"rllc data import {name} --from DIR", "RLLC_DATA_DIR=DIR"]
  ways += [f"apt-get install {_DEBIAN_PACKAGES[name]}"] if name in _DEBIAN_PACKAGES else []
  return "missing: " + ", or ".join([*ways, "TFDS_DATA_DIR / --download (tensorflow-datasets)"])
